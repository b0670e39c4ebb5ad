"""FAU-KL statistics that mean what they say: top-AU rule, AUROC intervals, permutation units, strata.

All data come from the planted generator the benchmark uses (captum_fau.concept.simulate).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from captum_fau.concept import FAUKL
from captum_fau.concept.faukl import design_from_labels
from captum_fau.concept.kernels import auroc, auroc_interval
from captum_fau.concept.resampling import group_codes, permutation_sources
from captum_fau.concept.result import FAUKLResult
from captum_fau.concept.simulate import CKPLUS_AU_COUNTS, planted_faces
from captum_fau.concept.statistics import NO_GROUPS_NOTE, fau_kl_statistics
from captum_fau.errors import ConfigError, LabelError

AUS = tuple(CKPLUS_AU_COUNTS)


def test_planted_faces_has_subject_sequence_frame_structure():
    data = planted_faces(3, n_subjects=12, sequences=3, frames=4, n_filters=5, emotions=6)
    assert data["acts"].shape == (144, 5) and data["presence"].shape == (144, 20)
    assert np.bincount(data["subjects"]).tolist() == [12] * 12
    assert not data["presence"][::4].any()  # neutral first frames
    # the frames after the first share their sequence's AUs
    peaks = data["presence"].reshape(36, 4, 20)[:, 1:]
    assert (peaks == peaks[:, :1]).all()
    # every sequence of a subject poses a different emotion; neutral frames get their own label
    emo = data["emotion"].reshape(12, 3, 4)
    assert (emo[:, :, 0] == 6).all() and all(len(set(e[:, 1])) == 3 for e in emo)


def _null_result(seed: int = 0) -> tuple[FAUKLResult, np.ndarray]:
    data = planted_faces(seed, n_subjects=60, n_filters=48, d=0.0)
    st = fau_kl_statistics(data["acts"], data["presence"], groups=data["subjects"], n_permutations=200, n_bootstrap=0)
    return FAUKLResult(layers={"x": st}, au_ids=AUS, n_images=len(data["acts"])), data["presence"]


def test_default_top_au_does_not_favour_rare_aus_under_the_null():
    result, _ = _null_result()
    st = result.stats()
    testable = np.flatnonzero(st.testable_aus)
    rare = set(testable[np.argsort(st.n_present[testable])[:3]].tolist())
    chance = 3 / len(testable)
    share = lambda by: np.mean([result.au_ids.index(a) in rare for a in result.top_aus(by=by)])  # noqa: E731
    assert share("kl") > 2.5 * chance  # the paper's rule: the defect the default fixes
    assert share("test") < 2.0 * chance and share("z") < 2.0 * chance and share("p") < 2.0 * chance
    # the default AU is the filter's smallest-p AU of the main test: its q is the row's q
    for f in range(5):
        j = result.au_ids.index(result.top_au(f))
        assert st.p[f, j] == np.nanmin(st.p[f, st.tested_aus])


def test_untestable_aus_are_never_the_strongest():
    data = planted_faces(1, n_subjects=20, n_filters=6, d=0.0)
    presence = data["presence"].copy()
    presence[:, 7] = False  # AU10: no image with it
    acts = data["acts"].copy()
    st = fau_kl_statistics(acts, presence, groups=data["subjects"], n_permutations=50, n_bootstrap=0)
    result = FAUKLResult(layers={"x": st}, au_ids=AUS, n_images=len(acts))
    for by in ("test", "z", "p", "kl", "kl_corrected", "auroc"):
        assert "AU10" not in result.top_aus(by=by)
    assert np.isnan(st.kl_z[:, 7]).all() and (st.q_kl[:, 7] == 1).all()


def test_table_shows_each_statistic_with_its_own_test():
    result, _ = _null_result(2)
    st = result.stats()
    row = result.table_rows([0])[0]
    j = AUS.index(row["au"])
    assert row["q_kl"] == pytest.approx(st.q_kl[0, j]) and row["q_auroc"] == pytest.approx(st.q_auroc[0, j])
    assert row["rule"].startswith("smallest p of the main test") and row["q"] == pytest.approx(st.q[0, j])
    assert result.table_rows([0], by="kl")[0]["rule"] == "paper's rule (argmax KL)"
    text = result.table([0, 1])
    assert "q (KL)" in text and "q (AUROC)" in text


def _obuchowski_reference(x: np.ndarray, y: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """Obuchowski (1997) clustered AUROC variance by brute force over all pairs."""
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    psi = (x[pos][:, None] > x[neg][None, :]) + 0.5 * (x[pos][:, None] == x[neg][None, :])
    theta = psi.mean()
    ids = np.unique(clusters)
    v10 = np.array([psi[clusters[pos] == k].mean(axis=1).sum() for k in ids])
    v01 = np.array([psi[:, clusters[neg] == k].mean(axis=0).sum() for k in ids])
    m = np.array([(clusters[pos] == k).sum() for k in ids])
    n = np.array([(clusters[neg] == k).sum() for k in ids])
    big_i, big_m, big_n = len(ids), len(pos), len(neg)
    s10 = big_i / ((big_i - 1) * big_m) * ((v10 - m * theta) ** 2).sum()
    s01 = big_i / ((big_i - 1) * big_n) * ((v01 - n * theta) ** 2).sum()
    s11 = big_i / (big_i - 1) * ((v10 - m * theta) * (v01 - n * theta)).sum()
    return theta, float(np.sqrt(s10 / big_m + s01 / big_n + 2 * s11 / (big_m * big_n)))


def _clustered_case(seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """25 clusters of 6 images, ties on purpose; the AU lives in only some clusters."""
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(25), 6)
    x = np.round(rng.normal(size=150) + rng.normal(size=25)[clusters], 1)
    carrier = (rng.random(25) < 0.4)[clusters]
    y = carrier & (rng.random(150) < 0.6)
    x = x + 0.7 * y
    return x, y, clusters


def _jackknife_reference(x: np.ndarray, y: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """AUROC and its delete-one-cluster jackknife SE by brute force (scipy's Mann-Whitney U per subset)."""
    from scipy.stats import mannwhitneyu

    def area(keep: np.ndarray) -> float:
        pos, neg = x[keep & y], x[keep & ~y]
        return mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))

    ids = np.unique(clusters)
    leave = np.array([area(clusters != k) for k in ids])
    return area(np.ones(len(x), bool)), float(np.sqrt((len(ids) - 1) / len(ids) * ((leave - leave.mean()) ** 2).sum()))


def test_auroc_interval_matches_a_brute_force_cluster_jackknife():
    x, y, clusters = _clustered_case()
    theta, se_ref = _jackknife_reference(x, y, clusters)
    ci, se = auroc_interval(x[:, None], y[:, None], clusters)
    assert se[0, 0] == pytest.approx(se_ref, rel=1e-9)
    assert ci[0, 0, 0] < theta < ci[0, 0, 1]
    # the jackknife is the small-sample corrected variance: not below the clustered DeLong sandwich here
    assert se[0, 0] >= _obuchowski_reference(x, y, clusters)[1] * 0.95


def test_auroc_interval_is_logit_scale_with_the_degrees_of_freedom_of_the_clusters_carrying_the_au():
    from scipy.stats import t as t_dist

    x, y, clusters = _clustered_case()
    theta, se_ref = _jackknife_reference(x, y, clusters)
    k_with = len(np.unique(clusters[y]))
    assert k_with < 25  # the case the degrees of freedom are about
    half = t_dist.ppf(0.975, k_with - 1) * se_ref / (theta * (1 - theta))
    expected = 1 / (1 + np.exp(-(np.log(theta / (1 - theta)) + np.array([-half, half]))))
    ci, _ = auroc_interval(x[:, None], y[:, None], clusters)
    np.testing.assert_allclose(ci[0, 0], expected, rtol=1e-9)


def test_auroc_standard_error_agrees_with_a_subject_level_scipy_bootstrap():
    from scipy.stats import bootstrap

    data = planted_faces(8, n_subjects=60, n_filters=1, d=0.8, planted=np.eye(1, 20, dtype=bool))
    x, y, subjects = data["acts"][:, 0].astype(np.float64), data["presence"][:, 0], data["subjects"]
    rows = [np.flatnonzero(subjects == k) for k in range(60)]

    def statistic(ids: np.ndarray) -> float:
        idx = np.concatenate([rows[int(k)] for k in ids])
        return float(auroc(x[idx], y[idx])[0, 0])

    boot = bootstrap(
        (np.arange(60),),
        statistic,
        vectorized=False,
        n_resamples=1500,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    _, se = auroc_interval(x[:, None], y[:, None], subjects)
    assert se[0, 0] == pytest.approx(boot.standard_error, rel=0.1)


def test_true_auroc_matches_a_large_simulation():
    from captum_fau.concept.simulate import ckplus_prevalences, true_auroc

    planted = np.zeros((3, 20), bool)
    planted[0, 0] = planted[1, [2, 13]] = True  # a filter with two planted AUs
    big = planted_faces(7, n_subjects=6000, n_filters=3, d=0.8, planted=planted)
    common = ckplus_prevalences() >= 0.15
    np.testing.assert_allclose(
        auroc(big["acts"], big["presence"])[:, common], true_auroc(planted, 0.8)[:, common], atol=0.012
    )
    assert true_auroc(planted, 0.8)[2] == pytest.approx(0.5)  # no planted AU: no association anywhere


def test_auroc_interval_covers_on_planted_subject_data_and_contains_its_estimate():
    from captum_fau.concept.simulate import true_auroc

    n_filters, d = 4, 0.8
    planted = np.zeros((n_filters, 20), bool)
    planted[np.arange(n_filters), [0, 2, 16, 17]] = True
    truth = true_auroc(planted, d)
    hits, null_hits, inside = [], [], []
    for seed in range(20):
        data = planted_faces(500 + seed, n_subjects=60, n_filters=n_filters, d=d, planted=planted)
        st = fau_kl_statistics(data["acts"], data["presence"], groups=data["subjects"], n_permutations=0)
        lo, hi = st.auroc_ci[..., 0], st.auroc_ci[..., 1]
        covered = (lo <= truth) & (truth <= hi)
        hits.append(covered[st.testable & planted])
        null_hits.append(covered[st.testable & ~planted])
        inside.append(((lo <= st.auroc) & (st.auroc <= hi)).all())
    assert np.concatenate(hits).mean() >= 0.85 and np.concatenate(null_hits).mean() >= 0.92
    assert all(inside)


def test_point_estimate_inside_its_interval_in_degenerate_cases():
    x = np.array([0.0, 0, 0, 1, 1, 1, 2, 2])
    y = np.array([[0, 1], [0, 0], [0, 1], [0, 0], [1, 1], [1, 0], [1, 1], [1, 0]], bool)  # perfect split, ties
    st = fau_kl_statistics(np.stack([x, -x], 1), y, groups=np.arange(8) // 2, bins=2, n_permutations=20)
    assert ((st.auroc_ci[..., 0] <= st.auroc) & (st.auroc <= st.auroc_ci[..., 1])).all()


def test_groups_auto_prefers_subjects_and_missing_ids_warn_loudly():
    labels = {"sequence": np.arange(6), "subject": np.array([0, 0, 1, 1, 2, 2])}
    assert design_from_labels(labels).groups.tolist() == [0, 0, 1, 1, 2, 2]
    assert design_from_labels({"sequence": np.arange(6)}).groups.tolist() == list(range(6))
    data = planted_faces(0, n_subjects=10, n_filters=3)
    model = nn.Sequential(nn.Conv2d(1, 3, 1))
    fau = FAUKL(model, ["0"], n_permutations=20, n_bootstrap=0, progress=False)
    with pytest.warns(UserWarning, match="no subject or sequence ids"):
        result = fau.interpret_activations(data["acts"], data["presence"], au_ids=AUS)
    assert NO_GROUPS_NOTE in result.stats().notes and "WARNING" in result.table([0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fau.interpret_activations(data["acts"], data["presence"], au_ids=AUS, groups=data["subjects"])


def test_sequence_permutations_are_anti_conservative_when_aus_cluster_by_subject():
    rates = {"subjects": [], "sequences": []}
    for seed in range(2):
        data = planted_faces(100 + seed, n_subjects=60, n_filters=40, d=0.0, clustering=2.0, subject_var=0.5)
        for unit in rates:
            st = fau_kl_statistics(data["acts"], data["presence"], groups=data[unit], n_permutations=200, n_bootstrap=0,
                                   seed=seed)  # fmt: skip
            rates[unit].append((st.p_auroc[st.testable] < 0.05).mean())
    assert np.mean(rates["subjects"]) < 0.08
    assert np.mean(rates["sequences"]) > np.mean(rates["subjects"])


def test_stratified_permutations_stay_in_their_stratum_and_move_whole_cells():
    groups = np.repeat(np.arange(6), 4)
    strata = np.tile([0, 1, 1, 1], 6)  # a neutral frame and three peak frames per sequence
    src = permutation_sources(groups, 24, 30, seed=1, strata=strata)
    assert (strata[src] == strata[None, :]).all()
    cells = group_codes(groups, 24) * 2 + strata
    for row in src:
        for c in np.unique(cells):
            assert len(np.unique(cells[row[cells == c]])) == 1


def test_stratify_removes_the_emotion_confound():
    data = planted_faces(400, n_subjects=80, n_filters=24, emotions=6, d=0.0)
    st = fau_kl_statistics(data["acts"], data["presence"], groups=data["subjects"], strata=data["emotion"],
                           n_permutations=200, n_bootstrap=0)  # fmt: skip
    ok = st.testable
    assert (st.p_auroc[ok] < 0.05).mean() > 0.15  # filters follow the emotion, so AUs look associated
    assert (st.p_auroc_within[ok] < 0.05).mean() < 0.08
    assert st.stratified and st.q_kl_within.shape == st.kl.shape


def test_stratify_bad_input():
    data = planted_faces(0, n_subjects=10, n_filters=3, emotions=6)
    acts, presence = data["acts"], data["presence"]
    with pytest.raises(ConfigError, match="single level"):
        fau_kl_statistics(acts, presence, strata=np.zeros(len(acts)), n_permutations=10)
    with pytest.raises(ConfigError, match="needs permutations"):
        fau_kl_statistics(acts, presence, strata=data["emotion"], n_permutations=0)
    # strata = the AU column itself: it never varies inside a stratum
    with pytest.warns(UserWarning, match="never vary inside any stratum"):
        st = fau_kl_statistics(acts, presence[:, :2], strata=presence[:, 0], groups=data["subjects"], n_permutations=20)
    assert (st.p_kl_within[:, 0] == 1).all() and (st.q_auroc_within[:, 0] == 1).all()
    with pytest.raises(ConfigError):
        FAUKL(nn.Sequential(nn.Conv2d(1, 3, 1)), ["0"], stratify="")


def test_all_dead_layer_warns():
    with pytest.warns(UserWarning, match="all-dead layer"):
        st = fau_kl_statistics(np.zeros((40, 3)), np.arange(40)[:, None] % 2 == 0, groups=np.arange(40) // 2,
                               bins=4, n_permutations=10)  # fmt: skip
    assert st.dead_filters.all() and (st.q == 1).all()


class _Faces(torch.utils.data.Dataset):
    au_ids = ("AU1", "AU12")

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.aus = (rng.random((40, 2)) < 0.5).astype(np.float32)
        self.images = torch.from_numpy(rng.normal(size=(40, 1, 6, 6)).astype(np.float32))

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "aus": torch.from_numpy(self.aus[i]), "subject": i // 4, "emotion": i % 3}


def test_faukl_stratify_by_an_item_label_and_missing_column():
    model = nn.Sequential(nn.Conv2d(1, 3, 3)).eval()
    result = FAUKL(
        model, ["0"], bins=4, n_permutations=20, n_bootstrap=10, stratify="emotion", progress=False
    ).interpret(_Faces())
    st = result.stats()
    assert st.stratified and "q (KL, within strata)" in result.table([0])
    assert any("Permutation unit" in n for n in st.notes) and NO_GROUPS_NOTE not in st.notes  # subjects were used
    with pytest.raises(LabelError, match="no such per-image label"):
        FAUKL(model, ["0"], bins=4, n_permutations=20, stratify="pose", progress=False).interpret(_Faces())


def test_stratified_result_round_trips(tmp_path):
    data = planted_faces(0, n_subjects=12, n_filters=3, emotions=6)
    st = fau_kl_statistics(data["acts"], data["presence"], groups=data["subjects"], strata=data["emotion"],
                           n_permutations=20)  # fmt: skip
    result = FAUKLResult(layers={"x": st}, au_ids=AUS, n_images=len(data["acts"]))
    loaded = FAUKLResult.load(result.save(tmp_path / "r.safetensors"))
    np.testing.assert_array_equal(loaded.stats().q_auroc_within, st.q_auroc_within)
    np.testing.assert_array_equal(loaded.stats().kl_z, st.kl_z)
    assert loaded.top_aus() == result.top_aus()


def test_cli_options_take_stratify():
    from captum_fau.cli import build_parser

    args = build_parser().parse_args(
        ["fau-kl", "--model", "m", "--data", "synthfacs:64", "--out", "o", "--stratify", "emotion"]
    )
    assert args.stratify == "emotion"
    args = build_parser().parse_args(["analyze", "--model", "m", "--data", "synthfacs:64", "--stratify", "emotion"])
    from captum_fau.cli.analyze import analysis_config

    assert analysis_config(args).statistics.stratify == "emotion"


@pytest.mark.slow
def test_benchmark_quick_json_meets_the_targets():
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_faukl.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--json"], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for key in (
        "null_p05",
        "type1_001_worst",
        "bh_fwer_worst",
        "fdr",
        "power",
        "planted_named_first",
        "null_top_au_rarest_ratio",
        "ci_coverage",
        "type1_clustered",
        "stratified_type1",
        "designs",
        "speedup_vs_vectorised",
    ):
        assert key in report
    for design, row in report["designs"].items():  # every figure per design, with its Monte-Carlo SE and count
        assert {"type1_05", "type1_001", "bh_fwer", "fdr", "power", "coverage_by_subjects"} <= set(row), design
        assert row["dead_filters_named"] == 0 and row["ci_inside"] == 1.0
        assert 0.0 <= row["type1_05"][0] <= 0.12
    recovery = report["localisation_recovery_mean"]
    assert report["localisation_rule"] == "nested" and recovery["nested"] > max(recovery["lift"], recovery["energy"])


def test_planted_design_object_equals_the_keywords() -> None:
    from captum_fau.concept.simulate import PlantedDesign
    from captum_fau.errors import ConfigError

    by_keywords = planted_faces(3, n_subjects=12, n_filters=5, d=0.8, emotions=4)
    by_design = planted_faces(3, PlantedDesign(n_subjects=12, n_filters=5, d=0.8, emotions=4))
    overridden = planted_faces(3, PlantedDesign(n_subjects=40, d=0.8), n_subjects=12, n_filters=5, emotions=4)
    for other in (by_design, overridden):
        assert all(np.array_equal(other[k], by_keywords[k]) for k in by_keywords)
    assert by_keywords["acts"].shape == (12 * 3 * 4, 5)
    with pytest.raises(ConfigError, match="not PlantedDesign fields"):
        planted_faces(3, subjects=12)
