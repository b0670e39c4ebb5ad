"""FAU-KL statistics against scipy and slow reference loops."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import rel_entr
from scipy.stats import entropy, false_discovery_control, mannwhitneyu

from captum_fau.concept.statistics import (
    auroc,
    benjamini_hochberg,
    bin_codes,
    fau_kl_statistics,
    histogram_edges,
    kl_from_counts,
    permutation_sources,
)
from captum_fau.errors import ConfigError, LabelError, StatisticsError


def _data(seed: int = 0, m: int = 120, c: int = 5, j: int = 4):
    rng = np.random.default_rng(seed)
    aus = rng.random((m, j)) < 0.3
    acts = rng.normal(size=(m, c))
    acts[:, 0] += 1.5 * aus[:, 1]
    return acts, aus


def test_kl_matches_scipy_entropy():
    acts, aus = _data()
    st = fau_kl_statistics(acts, aus, bins=6, smoothing=0.5, n_permutations=0, n_bootstrap=0)
    codes = bin_codes(acts, st.bin_edges)
    for c in range(acts.shape[1]):
        for j in range(aus.shape[1]):
            qc = np.bincount(codes[aus[:, j], c], minlength=6) + 0.5
            rc = np.bincount(codes[~aus[:, j], c], minlength=6) + 0.5
            assert st.kl[c, j] == pytest.approx(entropy(qc, rc), rel=1e-9)
            qp = np.bincount(codes[aus[:, j], c], minlength=6)
            rp = np.bincount(codes[~aus[:, j], c], minlength=6)
            assert st.kl_plain[c, j] == pytest.approx(entropy(qp, rp), rel=1e-9)  # inf included
    assert int(np.argmax(st.kl[0])) == 1


def test_uniform_edges_and_codes():
    acts = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [4.0]])
    edges = histogram_edges(acts, bins=4)
    np.testing.assert_allclose(edges[0], [0, 1, 2, 3, 4])
    assert bin_codes(acts, edges)[:, 0].tolist() == [0, 1, 2, 3, 3, 3]
    q = histogram_edges(acts, bins=2, binning="quantile")
    assert q.shape == (1, 3)


def test_kl_from_counts_direction():
    q, r = np.array([8.0, 2.0]), np.array([2.0, 8.0])
    assert kl_from_counts(q, np.array([5.0, 5.0]), 0) == pytest.approx(entropy(q, [5, 5]))
    assert kl_from_counts(np.array([9.0, 1.0]), r, 0) != pytest.approx(kl_from_counts(r, np.array([9.0, 1.0]), 0))


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(1).random((7, 9)) ** 2
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p.ravel()).reshape(p.shape))
    mask = np.zeros_like(p, bool)
    mask[:3] = True
    q = benjamini_hochberg(p, mask)
    np.testing.assert_allclose(q[:3].ravel(), false_discovery_control(p[:3].ravel()))
    assert (q[3:] == 1).all()


def test_q_values_are_scipys_bh_over_the_testable_pairs():
    acts, aus = _data(7)
    aus[:, 3] = False  # untestable AU
    acts[:, 2] = 1.0  # dead filter
    st = fau_kl_statistics(acts, aus, n_permutations=80, n_bootstrap=0, seed=2)
    np.testing.assert_array_equal(st.q[st.testable], false_discovery_control(st.p[st.testable]))
    assert (st.q[~st.testable] == 1).all() and st.testable.sum() == 4 * 3


def test_benjamini_hochberg_leaves_nan_out_and_refuses_out_of_range():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.5])
    q = benjamini_hochberg(p)
    assert np.isnan(q[1])
    np.testing.assert_array_equal(q[[0, 2, 3, 4]], false_discovery_control(p[[0, 2, 3, 4]]))
    assert (benjamini_hochberg(p, np.zeros(5, bool)) == 1).all()
    with pytest.raises(StatisticsError, match=r"\[0, 1\]"):
        benjamini_hochberg(np.array([0.2, 1.5]))


@pytest.mark.parametrize("smoothing", [0.0, 0.5, 1.3])
def test_kl_from_counts_is_a_sum_of_rel_entr(smoothing):
    rng = np.random.default_rng(3)
    present = rng.integers(0, 6, size=(4, 7, 3)).astype(float)
    absent = rng.integers(0, 6, size=(4, 7, 3)).astype(float)
    absent[0, 2, 0] = 0.0
    present[0, 2, 0] = 4.0  # q > 0 where r = 0: inf without smoothing
    k = present.shape[1]
    q = (present + smoothing) / (present.sum(axis=1, keepdims=True) + k * smoothing)
    r = (absent + smoothing) / (absent.sum(axis=1, keepdims=True) + k * smoothing)
    expected = rel_entr(q, r).sum(axis=1)
    np.testing.assert_allclose(kl_from_counts(present, absent, smoothing, axis=1), expected, rtol=1e-12)
    assert np.isinf(expected[0, 0]) == (smoothing == 0)
    # the float32 working precision of the resampling loops agrees to float32 rounding
    np.testing.assert_allclose(kl_from_counts(present, absent, smoothing, axis=1, dtype=np.float32), expected,
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_null_mean_is_the_mean_kl_of_the_permuted_labels():
    acts, aus = _data(8, m=60, c=3, j=2)
    groups = np.repeat(np.arange(20), 3)
    st = fau_kl_statistics(acts, aus, groups=groups, bins=4, n_permutations=25, n_bootstrap=0, seed=4)
    codes = bin_codes(acts, st.bin_edges)
    for c in range(3):
        for j in range(2):
            kls = []
            for src in permutation_sources(groups, 60, 25, seed=4):
                lab = aus[src, j]
                qc = np.bincount(codes[lab, c], minlength=4) + 0.5
                rc = np.bincount(codes[~lab, c], minlength=4) + 0.5
                kls.append(rel_entr(qc / qc.sum(), rc / rc.sum()).sum())
            assert st.kl_null_mean[c, j] == pytest.approx(np.mean(kls), rel=1e-6)


def test_auroc_matches_mannwhitney():
    acts, aus = _data(2)
    acts = np.round(acts, 1)  # ties
    a = auroc(acts, aus)
    for c in range(acts.shape[1]):
        for j in range(aus.shape[1]):
            u = mannwhitneyu(acts[aus[:, j], c], acts[~aus[:, j], c]).statistic
            assert a[c, j] == pytest.approx(u / (aus[:, j].sum() * (~aus[:, j]).sum()))


def _reference_p(acts, aus, groups, n_perm, seed, bins, smoothing):
    """Slow loop: same permutations, pair by pair, scipy statistics."""
    edges = histogram_edges(acts, bins)
    codes = bin_codes(acts, edges)
    sources = permutation_sources(groups, len(acts), n_perm, seed)
    p_kl = np.zeros((acts.shape[1], aus.shape[1]))
    p_auc = np.zeros_like(p_kl)
    for c in range(acts.shape[1]):
        for j in range(aus.shape[1]):

            def stats(lab):
                qc = np.bincount(codes[lab, c], minlength=bins) + smoothing
                rc = np.bincount(codes[~lab, c], minlength=bins) + smoothing
                u = mannwhitneyu(acts[lab, c], acts[~lab, c]).statistic / (lab.sum() * (~lab).sum())
                return entropy(qc, rc), abs(u - 0.5)

            kl0, a0 = stats(aus[:, j])
            perm = [stats(aus[src, j]) for src in sources]
            p_kl[c, j] = (1 + sum(k >= kl0 - 1e-5 * max(1, kl0) for k, _ in perm)) / (1 + n_perm)
            p_auc[c, j] = (1 + sum(a >= a0 - 1e-6 for _, a in perm)) / (1 + n_perm)
    return p_kl, p_auc


@pytest.mark.parametrize("grouped", [False, True])
def test_permutation_p_values_match_reference_loop(grouped):
    acts, aus = _data(3, m=60, c=3, j=3)
    groups = np.repeat(np.arange(15), 4) if grouped else None
    if grouped:  # frames of one group share labels, except a neutral first frame
        aus = np.repeat(aus[::4], 4, axis=0)
        aus[::4] = False
    st = fau_kl_statistics(
        acts, aus, groups=groups, bins=4, n_permutations=60, max_permutations=0, n_bootstrap=0, seed=5
    )
    p_kl, p_auc = _reference_p(acts, aus, groups, 60, 5, 4, 0.5)
    np.testing.assert_allclose(st.p_kl, p_kl)
    np.testing.assert_allclose(st.p_auroc, p_auc)
    np.testing.assert_allclose(st.p, p_auc)


def test_group_permutations_keep_blocks():
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 4, 4])
    src = permutation_sources(groups, 9, 50, seed=0)
    for row in src:
        assert sorted(row.tolist()) == list(range(9))
        assert row[6] == 6  # the only group of size 1 cannot move
        # pairs stay pairs, first frame maps to a first frame
        firsts = {0, 2, 4, 7}
        for g in (0, 2, 4, 7):
            assert row[g] in firsts and row[g + 1] == row[g] + 1


def test_null_corrected_and_ci_and_reproducible():
    acts, aus = _data(4)
    a = fau_kl_statistics(acts, aus, n_permutations=100, max_permutations=0, n_bootstrap=50, seed=1)
    b = fau_kl_statistics(acts, aus, n_permutations=100, max_permutations=0, n_bootstrap=50, seed=1)
    np.testing.assert_array_equal(a.p, b.p)
    np.testing.assert_array_equal(a.ci, b.ci)
    np.testing.assert_allclose(a.kl_corrected, a.kl - a.kl_null_mean)
    assert (a.kl_null_mean > 0).all()
    assert (a.ci[..., 0] <= a.ci[..., 1]).all()
    assert a.p[0, 1] == pytest.approx(1 / 101) and a.kl_corrected[0, 1] > 0.2


def test_untestable_au_and_dead_filter_are_flagged_not_nan():
    acts, aus = _data(5)
    aus[:, 2] = False
    aus[:, 3] = True
    acts[:, 4] = 3.0
    st = fau_kl_statistics(acts, aus, n_permutations=50, n_bootstrap=20)
    for arr in (st.kl, st.p, st.q, st.ci, st.auroc, st.kl_corrected):  # kl_plain may be inf by design
        assert np.isfinite(arr).all()
    assert st.testable_aus.tolist() == [True, True, False, False]
    assert st.dead_filters.tolist() == [False, False, False, False, True]
    assert (st.p[:, 2:] == 1).all() and (st.kl[4] == 0).all() and (st.auroc[4] == 0.5).all()
    assert any("untestable" in n for n in st.notes) and any("dead" in n for n in st.notes)


def test_bad_input():
    acts, aus = _data()
    with pytest.raises(LabelError, match="aligned"):
        fau_kl_statistics(acts, aus[:-1], n_permutations=0, n_bootstrap=0)
    with pytest.raises(LabelError):
        fau_kl_statistics(acts, aus, groups=np.arange(5), n_permutations=0, n_bootstrap=0)
    with pytest.raises(StatisticsError, match="too few"):
        fau_kl_statistics(acts[:15], aus[:15], bins=10, n_permutations=0, n_bootstrap=0)
    with pytest.raises(StatisticsError):
        fau_kl_statistics(np.full((20, 2), np.nan), aus[:20], bins=2)
    with pytest.raises(ConfigError):
        fau_kl_statistics(acts, aus, test_statistic="t")
    with pytest.raises(ConfigError):
        fau_kl_statistics(acts, aus, binning="log")


def test_bootstrap_resamples_subjects_not_images():
    from captum_fau.concept.statistics import bootstrap_weights

    subjects = np.repeat(np.array(["s1", "s2", "s3", "s4"]), 20)
    weights = bootstrap_weights(subjects, 80, 50, seed=0)
    assert weights.shape == (50, 80)
    for row in weights:  # one multiplicity per subject, and 4 subjects drawn in all
        assert all(len(np.unique(row[k * 20 : (k + 1) * 20])) == 1 for k in range(4))
        assert row.sum() == 80
    acts, aus = _data(6, m=80)
    by_image = fau_kl_statistics(acts, aus, n_permutations=0, n_bootstrap=40, bins=4)
    by_subject = fau_kl_statistics(acts, aus, n_permutations=0, n_bootstrap=40, bins=4, bootstrap_groups=subjects)
    assert not np.allclose(by_image.ci, by_subject.ci)
    np.testing.assert_array_equal(by_image.kl, by_subject.kl)
    assert by_subject.config["bootstrap_grouped"] and not by_image.config["bootstrap_grouped"]
