"""Causal probes against planted ground truth: counterfactual AU probes, ablation importance, FACS table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from captum_fau import InputSpec, errors
from captum_fau.synthfacs import render
from captum_fau.probes import AUProbe, AUProbeResult, FilterImportance, ImportanceResult, ProbeOptions, facs_table
from captum_fau.probes._stats import sign_flip_test
from captum_fau.probes.planted import (
    MOUTH_AUS,
    brow_masked_net,
    exclusive_masks,
    planted_decision_net,
    region_filter_net,
)

SPEC = InputSpec(size=96)
FAST = ProbeOptions(n_faces=16, prototypes=False, batch_size=64)


def _association(net: nn.Module, aus: tuple[str, ...]) -> np.ndarray:
    """Standardised mean difference (present - absent) of each filter's activation, on happy and neutral faces."""
    batch = render(160, seed=5, mode="prototype")
    keep = np.isin(batch.emotions, [0, 5])
    x = SPEC.apply(torch.from_numpy(batch.images[keep])[:, None])
    with torch.no_grad():
        acts = net(x).amax((2, 3)).numpy()
    from captum_fau.synthfacs.geometry import AU_INDEX

    present = batch.aus[keep] > 0
    out = np.empty((acts.shape[1], len(aus)))
    for j, au in enumerate(aus):
        p = present[:, AU_INDEX[au]]
        out[:, j] = (acts[p].mean(0) - acts[~p].mean(0)) / acts.std(0)
    return out


def test_planted_lip_corner_and_cheek_filters_are_separated_by_the_probe_not_the_association() -> None:
    masks = exclusive_masks(0, FAST.n_faces, 96, ("AU12", "AU6"))
    net, planted = region_filter_net(masks, feature="brightness")
    assert planted == ("AU12", "AU6")  # filter 0 sees the lip corners, filter 1 the cheeks
    assoc = _association(net, ("AU6", "AU12"))
    # in posed happiness AU6 and AU12 come together: the association cannot tell the filters apart
    np.testing.assert_allclose(assoc[:, 0], assoc[:, 1])
    result = AUProbe(net.eval(), "1", SPEC, aus=("AU6", "AU12"), options=FAST).probe(progress=False)
    j6, j12 = result.aus.index("AU6"), result.aus.index("AU12")
    assert result.top_au == ["AU12", "AU6"]
    assert result.diff[0, j6] == 0 and result.diff[1, j12] == 0
    assert result.q[0, j12] < 0.05 and result.q[1, j6] < 0.05
    agreement = result.agreement(["AU12", "AU12"])
    assert agreement["agreement"] == 0.5 and agreement["per_filter"][1]["equal"] is False


def test_no_effect_control_has_exactly_zero_mouth_effects_and_reports_none() -> None:
    net = brow_masked_net(0, FAST.n_faces, 96).eval()
    result = AUProbe(net, "body.2", SPEC, options=FAST).probe(progress=False)
    mouth = [result.aus.index(a) for a in MOUTH_AUS]
    assert np.all(result.diff[:, mouth] == 0) and np.all(result.effect[:, mouth] == 0)
    assert not result.significant[:, mouth].any()
    assert all(au not in MOUTH_AUS for au in result.top_au)
    assert np.all(result.p[:, mouth] == 1.0)


def test_region_filters_recover_their_own_au() -> None:
    aus = ("AU1", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17")
    hits, pairs = 0, 0
    for seed in (1, 2):
        net, planted = region_filter_net(exclusive_masks(seed, 12, 96, aus))
        options = ProbeOptions(n_faces=12, seed=seed, prototypes=False)
        result = AUProbe(net.eval(), "1", SPEC, aus=aus, options=options).probe(progress=False)
        hits += sum(top == au for top, au in zip(result.top_au, planted))
        pairs += len(planted)
        own = np.array([[result.aus[j] == au for j in range(len(result.aus))] for au in planted])
        assert not result.significant[~own].any() and np.all(result.diff[~own] == 0)
    assert pairs >= 10 and hits / pairs >= 0.9


def test_probe_curves_shapes_save_load_and_resume(tmp_path) -> None:
    net = brow_masked_net(0, 4, 96).eval()
    options = ProbeOptions(n_faces=4, prototypes=True, batch_size=32)
    probe = AUProbe(net, "body.2", SPEC, aus=["AU12", "4"], options=options)
    first = probe.probe(cache_dir=tmp_path / "cache", progress=False)
    assert first.median.shape == (2, 8, 2, 6) and first.aus == ("AU4", "AU12")
    assert np.isfinite(first.median[1]).all()  # both AUs belong to prototypes
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # one archive per AU
    again = probe.probe(cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(first.effect, again.effect)
    path = first.save(tmp_path / "probe.npz")
    loaded = AUProbeResult.load(path)
    np.testing.assert_array_equal(loaded.q, first.q)
    assert loaded.to_dict()["filters"] == first.to_dict()["filters"]


@pytest.mark.parametrize("planted", [3, 11])
def test_ablation_ranks_the_planted_happy_filter_first(planted: int, tmp_path) -> None:
    net = planted_decision_net(planted, seed=planted)
    batch = render(96, seed=2)
    x = SPEC.apply(torch.from_numpy(batch.images)[:, None])
    names = ("neutral", "angry", "contempt", "disgusted", "fearful", "happiness", "sad", "surprised")  # by name
    result = FilterImportance(net, "conv").run(
        x, batch.emotions, names, units=batch.subjects, progress=False, cache_dir=tmp_path / "cache"
    )
    for mode in ("zero", "mean"):
        assert result.ranking(mode)["happiness"][0] == planted
    resumed = FilterImportance(net, "conv").run(
        x, batch.emotions, names, units=batch.subjects, progress=False, cache_dir=tmp_path / "cache"
    )
    np.testing.assert_array_equal(resumed.logprob_drop, result.logprob_drop)
    assert len(list((tmp_path / "cache").glob("importance-activations-*.npz"))) == 1
    assert result.meta["unit"].startswith("subject")
    loaded = ImportanceResult.load(result.save(tmp_path / "importance.npz"))
    assert loaded.ranking() == result.ranking()


def test_ablation_matches_captum_layer_feature_ablation() -> None:
    net = planted_decision_net(2, seed=0)
    x = SPEC.apply(torch.from_numpy(render(24, seed=3).images)[:, None])
    report = FilterImportance(net, "conv").compare_with_captum(x, np.full(24, 5), [0, 2, 7])
    assert report["max_abs_err"] < 1e-5


def test_ablation_maps_classes_by_name_not_index() -> None:
    net = planted_decision_net(4, seed=1)
    batch = render(64, seed=4)
    x = SPEC.apply(torch.from_numpy(batch.images)[:, None])
    order = np.array([5, 0, 1, 2, 3, 4, 6, 7])  # the data lists happy first
    names = tuple(np.array(["neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"])[order])
    labels = np.argsort(order)[batch.emotions]
    result = FilterImportance(net, "conv").run(x, labels, names, units=batch.subjects, progress=False)
    assert result.ranking()["happy"][0] == 4


def test_sign_flip_test_matches_scipy_exact_permutation_test() -> None:
    rng = np.random.default_rng(0)
    d = rng.standard_t(3, size=(10, 4)) + np.array([0.0, 0.3, 1.0, -0.8])
    ours = sign_flip_test(d)
    for j in range(4):
        ref = sps.permutation_test((d[:, j],), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
        assert ours[j] == pytest.approx(ref, rel=1e-9)


def test_facs_table_scores_against_emfacs_prototypes() -> None:
    aus = ["AU12", "AU6", "AU4", None, "AU1", "AU15", "AU9", "AU2"]
    table = facs_table({"happiness": [0, 1, 2, 3], "sad": [4, 5, 6, 7]}, {"causal": aus}, top_k=2, n_permutations=200)
    rows = {r["emotion"]: r for r in table.rows}
    assert rows["happy"]["score"] == 1.0 and rows["happy"]["aus"] == ["AU12", "AU6"]
    assert rows["sadness"]["score"] == 1.0 and rows["sadness"]["baseline"] < 1.0
    assert table.score("causal") == 1.0


class _Skip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 8)
        self.class_names = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        return self.fc((a + x).amax((2, 3)))


@pytest.mark.parametrize(
    "call, error, keyword",
    [
        (lambda: AUProbe(brow_masked_net(0, 2, 96), "body.2", SPEC, aus=["AU16"]), errors.ConfigError, "cannot draw"),
        (lambda: AUProbe(brow_masked_net(0, 2, 96), "body.2", InputSpec(size=(96, 64))), errors.ConfigError, "square"),
        (lambda: AUProbe(brow_masked_net(0, 2, 96), "body.2", InputSpec(size=16)), errors.ConfigError, "32..1024"),
        (
            lambda: (
                AUProbe(brow_masked_net(0, 2, 96), "body.2", SPEC, options=ProbeOptions(style="photo"))
                if "style" not in __import__("inspect").signature(render.__globals__["render_with_aus"]).parameters
                else (_ for _ in ()).throw(errors.ConfigError("renderer takes styles"))
            ),
            errors.ConfigError,
            "style",
        ),
        (lambda: ProbeOptions(intensities=(1, 5)), errors.ConfigError, "from 0"),
        (
            lambda: FilterImportance(planted_decision_net(0), "fc").run(
                torch.rand(4, 1, 96, 96), [0] * 4, ("happy",), progress=False
            ),
            errors.LayerError,
            "[B, C, H, W]",
        ),
        (
            lambda: FilterImportance(_Skip(), "conv").run(
                torch.rand(4, 1, 16, 16), [0] * 4, ("happy",), progress=False
            ),
            errors.LayerError,
            "plain chain",
        ),
        (lambda: FilterImportance(nn.Sequential(nn.Conv2d(1, 2, 3)), "0"), errors.ConfigError, "class_names"),
    ],
)
def test_bad_input(call, error, keyword) -> None:
    with pytest.raises(error, match=None) as info:
        call()
    assert keyword.lower() in str(info.value).lower()


def test_figures_render_from_results(tmp_path) -> None:
    from captum_fau.viz.causal import plot_causal_vs_association, plot_facs_table, plot_importance, plot_tuning_curves

    net = brow_masked_net(0, 4, 96).eval()
    options = ProbeOptions(n_faces=4)
    probe = AUProbe(net, "body.2", SPEC, aus=["AU1", "AU2", "AU12"], options=options).probe(progress=False)
    plot_tuning_curves(probe, [0, 1], path=tmp_path / "curves.png")
    plot_causal_vs_association(probe, ["AU1"] * 8, path=tmp_path / "agree.png")
    batch = render(48, seed=2)
    x = SPEC.apply(torch.from_numpy(batch.images)[:, None])
    names = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    importance = FilterImportance(planted_decision_net(1), "conv").run(
        x, batch.emotions, names, units=batch.subjects, progress=False
    )
    plot_importance(importance, path=tmp_path / "importance.png")
    table = facs_table(importance.ranking(), {"causal": ["AU12", "AU6"] * 8}, top_k=3, n_permutations=50)
    plot_facs_table(table, path=tmp_path / "facs.png")
    for name in ("curves", "agree", "importance", "facs"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
