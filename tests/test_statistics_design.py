"""Permutation units that respect the design, untested pairs, adaptive permutations, the one-test top AU."""

from __future__ import annotations

import numpy as np
import pytest

from captum_fau.concept import FAUKLResult, StatisticsOptions
from captum_fau.concept.designs import DESIGN_AUS, design_faces
from captum_fau.concept.resampling import PermutationScheme
from captum_fau.concept.statistics import fau_kl_statistics


def test_units_with_constant_sequence_labels_trade_sequence_by_sequence():
    # subjects: A = sequences [3, 1], B = [1, 3], C = [2, 2]; labels constant within each sequence
    subjects = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    sequences = np.array([0, 0, 0, 1, 2, 3, 3, 3, 4, 4, 5, 5])
    labels = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0], bool)[:, None]
    scheme = PermutationScheme(subjects, 12, sequences, labels=labels)
    assert scheme.hierarchical and scheme.n_exchangeable == 3 and scheme.n_classes == 1
    for row in scheme.sources(40, seed=1):
        moved = labels[row, 0]
        for s in range(6):  # every receiving sequence gets one constant label
            assert len(set(moved[sequences == s].tolist())) == 1


def test_units_whose_labels_vary_within_a_sequence_trade_only_with_the_same_signature():
    subjects = np.repeat(np.arange(4), 4)
    sequences = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    labels = np.tile([0, 1, 1, 1], 4).astype(bool)[:, None]  # neutral first frame (CK+)
    scheme = PermutationScheme(subjects, 16, sequences, labels=labels)
    assert not scheme.hierarchical and scheme.n_classes == 2  # [4] x 2 and [2, 2] x 2
    for row in scheme.sources(30, seed=0):
        assert set(row[:4].tolist()) <= set(range(8)) and set(row[8:].tolist()) <= set(range(8, 16))
        assert labels[row, 0][0] == labels[0, 0]  # a first frame receives a first frame


def test_an_au_with_too_few_arrangements_is_untested_not_p_one():
    data = design_faces("balanced", 3, n_filters=6, n_subjects=40)
    presence = data["presence"].copy()
    presence[:, 9] = data["subjects"] == 0  # one subject carries it
    presence[data["sequences"] % 3 != 0, 9] &= False
    st = fau_kl_statistics(
        data["acts"], presence, groups=data["subjects"], sequences=data["sequences"], n_permutations=100, n_bootstrap=0
    )
    assert not st.tested_aus[9] and st.testable_aus[9]
    assert np.isnan(st.p[:, 9]).all() and np.isnan(st.q[:, 9]).all()
    assert 9 in st.config["untested_aus"] and any("untested" in n for n in st.notes)
    assert st.config["permutation_unit"] == "group"
    result = FAUKLResult(layers={"x": st}, au_ids=DESIGN_AUS, n_images=len(presence))
    assert "AU26" not in result.top_aus()


def test_refinement_takes_a_planted_pair_below_the_floor_and_leaves_null_pairs_alone():
    data = design_faces("unbalanced", 5, planted=True, n_filters=12)
    options = StatisticsOptions(n_permutations=200, intervals=False)
    st = fau_kl_statistics(
        data["acts"], data["presence"], options, groups=data["subjects"], sequences=data["sequences"]
    )
    assert st.config["max_permutations"] >= 2 * st.tested.sum() / 0.05
    strong = data["planted"] & (st.permutations_used > 200)
    assert strong.any() and (st.p[strong] < 1 / 201).any()
    # pairs far from the floor keep the first 200 permutations and their p
    plain = fau_kl_statistics(
        data["acts"],
        data["presence"],
        options.replace(max_permutations=0),
        groups=data["subjects"],
        sequences=data["sequences"],
    )
    far = st.tested & (plain.p > 0.1)
    np.testing.assert_array_equal(st.p[far], plain.p[far])
    assert st.config["min_attainable_q"] <= 0.05 / 2 + 1e-12


def test_top_au_is_the_smallest_p_au_robust_to_one_outlier_and_none_for_a_dead_filter():
    data = design_faces("correlated", 2, planted=True, n_filters=12)
    acts = data["acts"].copy()
    acts[:, 11] = 0.0  # a dead filter
    options = StatisticsOptions(n_permutations=300, intervals=False)
    st = fau_kl_statistics(acts, data["presence"], options, groups=data["subjects"], sequences=data["sequences"])
    result = FAUKLResult(layers={"x": st}, au_ids=DESIGN_AUS, n_images=len(acts))
    assert result.top_au(11) is None and result.table_rows([11])[0]["au"] is None
    assert "dead filter" in result.table([11])
    shown = result.top_aus()
    outlier = acts.copy()
    outlier[np.argmax(acts[:, 5]), 5] *= 1000  # one activation far out
    st2 = fau_kl_statistics(outlier, data["presence"], options, groups=data["subjects"], sequences=data["sequences"])
    result2 = FAUKLResult(layers={"x": st2}, au_ids=DESIGN_AUS, n_images=len(acts))
    assert result2.top_aus() == shown  # ranks do not move
    assert result.top_au(5) == "AU12"
    # AU6 comes with AU12: when it is significant and nearly as strong, the row names it
    row = result.table_rows([5])[0]
    assert row["also"] == result.nearly_as_strong(5)
    assert all(result.stats().q[5, DESIGN_AUS.index(a)] < 0.05 for a in row["also"])


@pytest.mark.parametrize("design", ["unbalanced", "heavy_tailed"])
def test_default_statistics_hold_their_level_on_a_null_design(design):
    rates = []
    for seed in range(3):
        data = design_faces(design, 50 + seed, n_filters=16)
        st = fau_kl_statistics(
            data["acts"],
            data["presence"],
            StatisticsOptions(n_permutations=200, intervals=False),
            groups=data["subjects"],
            sequences=data["sequences"],
            seed=seed,
        )
        rates.append(float((st.p[st.tested] < 0.05).mean()))
    assert 0.015 <= np.mean(rates) <= 0.09  # 480 pairs: about +-0.02 of 0.05 at two SE


def test_population_auroc_is_exact_and_agrees_with_a_large_draw():
    from scipy.stats import norm

    from captum_fau.concept.designs import design_truth, population_auroc, shifted_auroc

    assert shifted_auroc("unbalanced") == pytest.approx(norm.cdf(0.75 / np.sqrt(2)))
    exact = population_auroc("correlated", n_filters=12)
    assert exact[0, 1] > 0.6 and exact[1, 0] > 0.6 and exact[3, 5] > 0.6 and exact[0, 2] == 0.5  # AU2 beside AU1
    for name in ("correlated", "heavy_tailed"):
        draw = design_truth(name, n_filters=24, n_subjects=6000)
        assert np.abs(population_auroc(name, n_filters=24) - draw).max() < 0.03, name
    assert population_auroc("emotion") is None


def test_with_strata_the_main_test_is_the_within_strata_test_on_within_stratum_ranks():
    from captum_fau.concept.strata import within_stratum_ranks

    data = design_faces("emotion", 20_003, planted=True, n_filters=12)
    st = fau_kl_statistics(data["acts"], data["presence"], StatisticsOptions(n_permutations=200, intervals=False),
                           groups=data["subjects"], sequences=data["sequences"], strata=data["emotion"])  # fmt: skip
    ok = st.testable
    assert np.allclose(st.p[ok], st.p_auroc_within[ok]) and np.allclose(st.q[ok], st.q_auroc_within[ok], equal_nan=True)
    assert st.config["main_test"] == "auroc within strata"
    # every filter responds to the emotion and the AUs follow it: the pooled AUROC of an unplanted pair is far
    # from 1/2, the within-stratum one is not
    ranks = within_stratum_ranks(data["acts"].astype(np.float64), data["emotion"])
    assert np.allclose(ranks.mean(axis=0), (len(ranks) + 1) / 2)
    unplanted = ~data["planted"] & ok
    assert np.median(st.p_auroc_within[unplanted]) > 0.2 > np.median(st.p_auroc[unplanted])


def test_an_interval_on_a_nearly_dead_filter_is_marked_approximate_whatever_the_subject_count():
    data = design_faces("heavy_tailed", 20_001, planted=True)  # filters 40-43: 98% exact zeros; 44-47 dead
    st = fau_kl_statistics(data["acts"], data["presence"], StatisticsOptions(n_permutations=20, max_permutations=0),
                           groups=data["subjects"], sequences=data["sequences"])  # fmt: skip
    assert st.ci_approximate.shape == st.auroc.shape
    assert st.ci_approximate[40:44].all() and (st.ci_clusters[40:44] < 10).all()
    assert (st.ci_clusters[:40] <= st.clusters_side[None, :]).all()
    common = st.clusters_side >= 20
    assert not st.ci_approximate[:10][:, common].any()
    rows = FAUKLResult(layers={"x": st}, au_ids=DESIGN_AUS).table_rows([41])
    assert rows[0]["au"] is None or rows[0]["ci_approximate"]
