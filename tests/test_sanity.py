"""Model-randomisation sanity check of TopNDeconv: SSIM against a hand computation, the check's
behaviour on weight-dependent and weight-independent rules, determinism, and the trained model untouched."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from captum_fau.attr import TopNDeconv
from captum_fau.attr.sanity import SanityCheckResult, randomised_copy, ssim, weighted_layers
from captum_fau.errors import ConfigError


class Small(nn.Module):
    """Three convs with ReLUs and a pool, then a linear head (which must never be randomised)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 5, padding=2)
        self.conv3 = nn.Conv2d(16, 16, 5, padding=2)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return self.head(x.mean((2, 3)))


@pytest.fixture(scope="module")
def setup() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = Small().eval()
    images = torch.rand(12, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    return model, images


def _manual_ssim(x: np.ndarray, y: np.ndarray, sigma: float = 1.5, r: float = 1.0) -> float:
    """One gaussian window covering the whole (odd-sized) image: the textbook formula."""
    size = x.shape[0]
    c = np.arange(size) - (size - 1) / 2
    g = np.exp(-(c**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    return float((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))


def test_ssim_identity_and_hand_computation() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, 20, 20, generator=gen)
    np.testing.assert_allclose(ssim(x, x).numpy(), [1.0, 1.0], atol=1e-6)
    a = torch.tensor([[0.1, 0.5, 0.9], [0.3, 0.2, 0.8], [0.0, 0.6, 0.4]])
    b = torch.tensor([[0.2, 0.4, 0.7], [0.5, 0.1, 0.9], [0.1, 0.3, 0.6]])
    assert float(ssim(a, b)) == pytest.approx(_manual_ssim(a.numpy(), b.numpy()), abs=1e-6)
    # Over an 11x11 window sliding on a 13x13 image: the mean of the 9 windows' values.
    big_a, big_b = torch.rand(13, 13, generator=gen), torch.rand(13, 13, generator=gen)
    windows = [_manual_ssim(big_a[i : i + 11, j : j + 11].numpy(), big_b[i : i + 11, j : j + 11].numpy())
               for i in range(3) for j in range(3)]  # fmt: skip
    assert float(ssim(big_a, big_b)) == pytest.approx(np.mean(windows), abs=1e-6)
    # Channels are averaged.
    two = torch.stack([big_a, a.new_zeros(13, 13)]), torch.stack([big_b, a.new_zeros(13, 13)])
    assert float(ssim(*two)) == pytest.approx((np.mean(windows) + 1.0) / 2, abs=1e-6)
    with pytest.raises(ConfigError, match="same shape"):
        ssim(a, big_a)


def test_weighted_layers_stop_at_the_analysed_layer(setup) -> None:
    model, images = setup
    assert weighted_layers(model, model.conv2, images[:1]) == ["conv1", "conv2"]
    clone = randomised_copy(model, ["conv2"], 0, ["conv1", "conv2"])
    assert torch.equal(clone.conv1.weight, model.conv1.weight) and not torch.equal(
        clone.conv2.weight, model.conv2.weight
    )
    # The scale is kept: same mean and sd up to sampling error.
    assert float(clone.conv2.weight.detach().std()) == pytest.approx(float(model.conv2.weight.detach().std()), rel=0.1)


@pytest.mark.filterwarnings("ignore:.*dead units")
def test_gradient_depends_on_weights_more_than_guided(setup) -> None:
    model, images = setup
    state = copy.deepcopy(model.state_dict())
    medians = {}
    for rule in ("guided", "gradient"):
        topn = TopNDeconv(model, "conv3", rule=rule)
        top = topn.top_n(images, n=3, filters=list(range(6)), progress=False)
        check = topn.sanity_check(top, images, n=3, seed=0, progress=False)
        assert [s["randomised"] for s in check.steps] == [
            ["conv3"],
            ["conv3", "conv2"],
            ["conv3", "conv2", "conv1"],
            ["conv2"],
            ["conv1"],
        ]
        assert check.ssim.shape == check.spearman.shape == (5, 6, 3)
        medians[rule] = check.summary()[2]["ssim_median"]  # everything below the unit randomised
        assert rule.replace("guided", "guided backpropagation") in check.interpretation.lower()
        assert np.nanmax(np.abs(check.spearman)) <= 1.0
    assert medians["gradient"] < medians["guided"] - 0.2, medians
    for key, value in model.state_dict().items():  # the trained model is unchanged
        assert torch.equal(value, state[key])


def test_scan_as_source_and_self_similarity(setup) -> None:
    """A scan with kept inputs works as the source; the first conv has a single step."""
    from captum_fau.stats.scan import scan

    model, images = setup
    topn = TopNDeconv(model, "conv1", rule="gradient")
    result = scan(model, "conv1", images, top_n=2, keep_inputs=True, progress=False)
    check = topn.sanity_check(result, n=2, filters=[0, 3], progress=False)
    assert check.layers == ["conv1"] and len(check.steps) == 1 and check.ssim.shape == (1, 2, 2)
    top = topn.from_scan(result, filters=[0, 3], progress=False)
    # The trained reconstruction compared with itself: SSIM 1 and Spearman 1.
    patch = top.patches[0, 0]
    assert float(ssim(patch, patch)) == pytest.approx(1.0, abs=1e-6)
    assert spearmanr(patch.abs().flatten(), patch.abs().flatten())[0] == pytest.approx(1.0)


def test_seeded_and_serialisable(setup, tmp_path) -> None:
    model, images = setup
    topn = TopNDeconv(model, "conv2", rule="guided")
    top = topn.top_n(images, n=2, filters=[0, 1, 2], progress=False)
    first = topn.sanity_check(top, images, seed=5, progress=False)
    again = topn.sanity_check(top, images, seed=5, progress=False)
    other = topn.sanity_check(top, images, seed=6, progress=False)
    np.testing.assert_array_equal(first.ssim, again.ssim)
    np.testing.assert_array_equal(first.spearman, again.spearman)
    assert not np.allclose(first.ssim, other.ssim)
    loaded = SanityCheckResult.load(first.save(tmp_path / "sanity.json"))
    np.testing.assert_allclose(loaded.ssim, first.ssim, atol=1e-4)
    assert loaded.summary() == first.summary() and loaded.interpretation == first.interpretation


def test_bad_input(setup) -> None:
    model, images = setup
    topn = TopNDeconv(model, "conv2", rule="guided")
    top = topn.top_n(images, n=2, filters=[0], progress=False)
    with pytest.raises(ConfigError, match="data="):
        topn.sanity_check(top, progress=False)
    with pytest.raises(ConfigError, match="rule"):
        TopNDeconv(model, "conv2", rule="deconv").sanity_check(top, images, progress=False)
    with pytest.raises(ConfigError, match="TopNResult"):
        topn.sanity_check(images, images, progress=False)
    with pytest.raises(ConfigError, match="n must be"):
        topn.sanity_check(top, images, n=0, progress=False)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*dead units")
def test_analyze_runs_the_check_by_default_and_caches_it(tmp_path, monkeypatch) -> None:
    """On by default; changing only the sanity options reruns only the check and the report; switching it off
    says so in the notes and results.json."""
    import captum_fau.analyze as analyze_module
    from captum_fau import ZeroBiasCNN
    from captum_fau.analyze import analyze
    from captum_fau.concept import FAUKL
    from captum_fau.data.synthfacs import load_synthfacs

    torch.manual_seed(0)
    model = ZeroBiasCNN(num_classes=8).eval()
    state = copy.deepcopy(model.state_dict())
    faces = load_synthfacs(24, seed=3)
    options = dict(layer="conv1", out=tmp_path, n=2, permutations=20, bootstrap=0, progress=False, n_featured=2)
    result = analyze(model, faces, **options)
    stored = SanityCheckResult.load(tmp_path / "sanity.json")
    assert result.sanity is not None and stored.summary() == result.sanity.summary()
    assert [s["randomised"] for s in stored.steps] == [["conv1"]] and stored.ssim.shape == (1, 32, 2)
    assert stored.filters[:2].tolist() == result.featured[:2] and stored.meta["selection"]["max_filters"] == 32
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["sanity_check"]["interpretation"] == result.sanity.interpretation
    assert results["sanity_check"]["filters_checked"] == 32 and results["sanity_check"]["cascade_order"] == ["conv1"]
    assert "(32 of 64 filters checked, top 2 images each)" in results["summary"]["Sanity check"]
    page = (tmp_path / "index.html").read_text()
    assert "Sanity check: reconstructions with randomised weights" in page and "sanity.png" in page
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])
    keys = json.loads((tmp_path / "analysis.json").read_text())["steps"]

    def refuse(*_args, **_kwargs):
        raise AssertionError("a step other than the sanity check and the report was recomputed")

    monkeypatch.setattr(analyze_module, "_run_scan", refuse)
    monkeypatch.setattr(FAUKL, "interpret_activations", refuse)
    again = analyze(model, faces, **options, sanity_filters=5)
    assert len(again.sanity.filters) == 5 and SanityCheckResult.load(tmp_path / "sanity.json").ssim.shape == (1, 5, 2)
    new_keys = json.loads((tmp_path / "analysis.json").read_text())["steps"]
    assert new_keys["scan"] == keys["scan"] and new_keys["faukl"] == keys["faukl"]
    assert new_keys["sanity"]["key"] != keys["sanity"]["key"] and new_keys["report"]["key"] != keys["report"]["key"]
    import captum_fau.attr.sanity as sanity_module

    monkeypatch.setattr(sanity_module, "sanity_check", refuse)
    same = analyze(model, faces, **options, sanity_filters=5)  # nothing changed: the check is reused
    assert same.sanity.summary() == again.sanity.summary()
    off = analyze(model, faces, **options, sanity_check=False)
    assert off.sanity is None and any(n.startswith("Sanity check skipped") for n in off.notes)
    results = json.loads((tmp_path / "results.json").read_text())
    assert "sanity_check" not in results and any("Sanity check skipped" in n for n in results["notes"])
    assert "Sanity check skipped" in (tmp_path / "index.html").read_text()


def test_cli_sanity_options() -> None:
    import argparse

    from captum_fau.cli import analyze as cli_analyze

    parser = argparse.ArgumentParser()
    cli_analyze._analysis_options(parser, "out")
    default = cli_analyze.analysis_config(parser.parse_args([]))
    assert default.sanity_check is True and default.sanity_filters == 32
    off = cli_analyze.analysis_config(parser.parse_args(["--no-sanity-check"]))
    every = cli_analyze.analysis_config(parser.parse_args(["--sanity-filters", "0"]))
    assert off.sanity_check is False and every.sanity_filters == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--sanity-filters", "-1"])


def test_cli_topn_sanity_check(tmp_path, capsys) -> None:
    from captum_fau.cli import main

    out = tmp_path / "topn"
    assert main(["topn", "--model", "zerobias-synthfacs-8class", "--layer", "conv1", "--data", "synthfacs:8",
                 "--n", "2", "--filters", "0-3", "--featured", "2", "--sanity-check", "--out", str(out), "-q"]) == 0  # fmt: skip
    check = SanityCheckResult.load(out / "sanity.json")
    assert check.layers == ["conv1"] and check.ssim.shape == (1, 4, 2)
    assert "sanity check:" in capsys.readouterr().out


def _captum_window(
    ref_model: nn.Module, image: torch.Tensor, f: int, h: int, w: int, value: float, box: list[int], rule: str
) -> torch.Tensor:
    """Captum's neuron attribution of unit (f, h, w) of conv3 on the full image, times ``value``, cropped to ``box``."""
    import warnings

    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    cls = NeuronGuidedBackprop if rule == "guided" else NeuronDeconvolution
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = cls(ref_model, ref_model.conv3).attribute(image[None], neuron_selector=(f, h, w))[0] * value
    y0, x0, y1, x1 = box
    return full[:, y0:y1, x0:x1]


@pytest.mark.parametrize("rule", ["guided", "deconv"])
def test_randomised_reconstructions_equal_captum_on_the_same_random_weights(rule: str) -> None:
    """Every step's reconstruction equals Captum's NeuronGuidedBackprop / NeuronDeconvolution on a copy randomised
    by randomised_copy with the same seed (times the trained unit value), and the stored SSIM / Spearman are
    those of these pictures."""
    from captum_fau import ZeroBiasCNN
    from captum_fau.attr.sanity import _display

    torch.manual_seed(4)
    model = ZeroBiasCNN(img_size=32).eval()
    images = torch.randn(8, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    topn = TopNDeconv(model, "conv3", rule=rule)
    top = topn.top_n(images, n=2, filters=[1, 5], progress=False)
    check = topn.sanity_check(top, images, n=2, seed=3, progress=False, keep_reconstructions=True)
    assert check.layers == ["conv1", "conv2", "conv3"] and len(check.steps) == 5
    for s, step in enumerate(check.steps):
        ref_model = randomised_copy(model, step["randomised"], 3, check.layers)
        for k, f in enumerate([1, 5]):
            for r in range(2):
                h, w = top.positions[k, r].tolist()
                i = int(top.indices[k, r])
                expected = _captum_window(
                    ref_model, images[i], f, h, w, float(top.values[k, r]), top.boxes[k, r].tolist(), rule
                )
                got = check.reconstructions[s, k, r]
                assert float((got - expected).abs().max()) <= 1e-4 * float(expected.abs().max()), (step, f, r)
                trained = top.patches[k, r]
                assert float(ssim(_display(trained), _display(expected))) == pytest.approx(
                    check.ssim[s, k, r], abs=1e-4
                )
                rho = spearmanr(trained.abs().flatten().numpy(), expected.abs().flatten().numpy())[0]
                assert rho == pytest.approx(check.spearman[s, k, r], abs=1e-3)
    # Randomising conv3 alone leaves the units' input, hence the pictures, closer to the trained ones than all three.
    per = check.per_filter("ssim")
    assert np.all(per[0] > per[2])


def test_ssim_against_skimage() -> None:
    skimage_metrics = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(8)
    a, b = torch.rand(23, 19, generator=gen), torch.rand(23, 19, generator=gen)
    b = 0.6 * a + 0.4 * b
    expected = skimage_metrics.structural_similarity(a.double().numpy(), b.double().numpy(), gaussian_weights=True,
                                                     sigma=1.5, use_sample_covariance=False, data_range=1.0)  # fmt: skip
    assert float(ssim(a, b)) == pytest.approx(expected, abs=1e-5)


def test_spearman_abs_equals_scipy_with_ties_and_constant_maps() -> None:
    from captum_fau.attr.sanity import spearman_abs

    gen = torch.Generator().manual_seed(5)
    a = torch.randn(6, 1, 7, 7, generator=gen)
    b = a + 0.8 * torch.randn(6, 1, 7, 7, generator=gen)
    a[0, 0, :3] = 0.0  # ties
    b[1] = -b[1]  # the sign does not matter: |r|
    got = spearman_abs(a, b)
    for p in range(6):
        assert got[p] == pytest.approx(spearmanr(a[p].abs().flatten(), b[p].abs().flatten())[0], abs=1e-12)
    constant = spearman_abs(torch.zeros(1, 1, 4, 4), torch.rand(1, 1, 4, 4))
    assert np.isnan(constant[0])


@pytest.mark.filterwarnings("ignore:.*dead units")
def test_layers_above_cannot_change_the_reconstruction(setup) -> None:
    """Why the cascade starts at the analysed layer: randomising the head leaves a conv3 unit's picture exactly."""
    from captum_fau.attr.sanity import layers_above

    model, images = setup
    below = weighted_layers(model, model.conv3, images[:1])
    assert layers_above(model, below) == ["head"]
    headless = randomised_copy(model, ["head"], 0, ["head"])
    assert not torch.equal(headless.head.weight, model.head.weight)
    trained = TopNDeconv(model, "conv3", rule="guided").attribute(images[:3], filters=[0, 2])
    random_head = TopNDeconv(headless, "conv3", rule="guided").attribute(images[:3], filters=[0, 2])
    assert torch.equal(trained, random_head)
    check = TopNDeconv(model, "conv3").sanity_check(
        TopNDeconv(model, "conv3").top_n(images, n=2, filters=[0, 1], progress=False), images, progress=False
    )
    assert check.above == ["head"] and all("head" not in s["randomised"] for s in check.steps)


def test_in_place_randomisation_equals_fresh_copies(setup) -> None:
    from captum_fau.attr.sanity import _RandomisedModel, cascade_steps

    model, images = setup
    layers = weighted_layers(model, model.conv3, images[:1])
    copy_ = _RandomisedModel(model, layers, seed=7)
    for step in cascade_steps(layers) + [{"mode": "cascade", "randomised": []}]:
        copy_.set(step["randomised"])
        fresh = randomised_copy(model, step["randomised"], 7, layers)
        for (name, a), b in zip(copy_.model.state_dict().items(), fresh.state_dict().values()):
            assert torch.equal(a, b), (step, name)


@pytest.mark.filterwarnings("ignore:.*dead units")
def test_filter_selection_featured_then_seeded_sample(setup) -> None:
    from captum_fau.attr.sanity import select_filters

    model, images = setup
    topn = TopNDeconv(model, "conv3", rule="guided")
    top = topn.top_n(images, n=2, progress=False)
    live = [int(f) for f, v in zip(top.filters.tolist(), top.values[:, 0].tolist()) if v > 0]
    chosen, info = select_filters(top, max_filters=6, featured=[live[-1], live[0], 999], seed=1)
    assert chosen[:2] == [live[-1], live[0]] and len(chosen) == len(set(chosen)) == 6 and set(chosen) <= set(live)
    assert (
        info["rule"] == "featured + seeded sample" and info["featured"] == chosen[:2] and info["sampled"] == chosen[2:]
    )
    assert info["filters_in_layer"] == 16 and info["live_filters"] == len(live)
    assert select_filters(top, 6, [live[-1], live[0]], seed=1)[0] == chosen
    assert select_filters(top, 6, [live[-1], live[0]], seed=2)[0][2:] != chosen[2:] or len(live) <= 7
    assert select_filters(top, 100)[0] == live and select_filters(top, 100)[1]["rule"] == "all live"
    assert select_filters(top)[0] == top.filters.tolist()
    check = topn.sanity_check(top, images, max_filters=4, featured=[live[0]], seed=1, progress=False)
    assert check.filters.tolist()[0] == live[0] and len(check.filters) == 4
    assert check.meta["selection"]["featured"] == [live[0]] and check.images.shape == (4, 2)
    np.testing.assert_array_equal(check.images, top.indices[[top.row(f) for f in check.filters]].numpy())
    with pytest.raises(ConfigError, match="max_filters"):
        topn.sanity_check(top, images, max_filters=0, progress=False)


@pytest.mark.filterwarnings("ignore:.*dead units")
def test_report_states_what_was_checked(setup, tmp_path) -> None:
    from captum_fau.viz.analysis_report import sanity_figure, sanity_results, sanity_section
    from captum_fau.viz.report import write_report

    model, images = setup
    topn = TopNDeconv(model, "conv3", rule="guided")
    top = topn.top_n(images, n=3, filters=list(range(8)), progress=False)
    assert top.dead == [1]
    check = topn.sanity_check(top, images, max_filters=5, featured=[3, 1, 2], seed=0, progress=False,
                              keep_reconstructions=True)  # fmt: skip
    assert check.meta["selection"]["featured_dead"] == [1]
    res = sanity_results(check)
    assert res["cascade_order"][:3] == ["conv3", "conv3 + conv2", "conv3 + conv2 + conv1"]
    assert res["layers_above_not_randomised"] == ["head"] and res["filters_checked"] == 5
    assert [r["filter"] for r in res["per_filter"]][:2] == [3, 2] and res["per_filter"][0]["chosen_as"] == "featured"
    assert res["per_filter"][0]["images"] == top.indices[top.row(3), :3].tolist()
    assert res["per_filter"][0]["ssim"]["conv3"] == pytest.approx(float(np.nanmean(check.ssim[0, 0])), abs=1e-4)
    json.dumps(res)  # JSON-ready
    figure = sanity_figure(tmp_path / "sanity.png", check, top, [3, 1, 2])
    assert figure is not None and figure.stat().st_size > 1000
    page = write_report(tmp_path, "t", [sanity_section(check, figure)]).read_text()
    for text in (
        "the layers above conv3 (head) do not change",
        "conv3 → conv3 + conv2 → conv3 + conv2 + conv1",
        "2 featured filters, then 3 drawn at random (seed 0)",
        "featured filters 1 never respond",
        check.interpretation.split(":")[0],
        "sanity.png",
    ):
        assert text in page, text


def test_report_labels_sampled_filters(setup) -> None:
    from captum_fau.viz.analysis_report import sanity_results

    model, images = setup
    topn = TopNDeconv(model, "conv2", rule="guided")
    top = topn.top_n(images, n=2, progress=False)
    check = topn.sanity_check(top, images, max_filters=3, featured=[0], progress=False)
    assert [r["chosen_as"] for r in sanity_results(check)["per_filter"]] == [
        "featured",
        "seeded sample",
        "seeded sample",
    ]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*dead units")
def test_analyze_notes_when_there_is_nothing_to_randomise(tmp_path) -> None:
    """A layer with no weights below it: the analysis finishes and says why the check is missing."""
    from captum_fau.analyze import analyze

    model = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3)).eval()
    images = torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    model(images[:1])
    result = analyze(model, images, layer="0", out=tmp_path, n=2, progress=False, n_featured=1)
    assert result.sanity is None
    assert any(n.startswith("Sanity check skipped: No layer with weights runs before '0'") for n in result.notes)


def test_baseline_is_the_ssim_between_different_filters_at_the_same_unit(setup) -> None:
    """The verdict reads the randomised SSIM against two different trained filters' pictures at the same unit."""
    from captum_fau.attr.sanity import SanityOptions, sanity_check

    model, images = setup
    topn = TopNDeconv(model, "conv2", rule="guided")
    trained = topn.top_n(images, n=2, progress=False)
    live = [int(f) for f, v in zip(trained.filters.tolist(), trained.values[:, 0].tolist()) if v > 0][:3]
    check = sanity_check(topn, trained, images, SanityOptions(n=1, filters=live), progress=False)
    assert check.baseline_ssim.shape == (3, 1) and np.isfinite(check.baseline_ssim).all()
    assert (check.baseline_ssim < 1 - 1e-6).all() and (check.baseline_ssim > -1).all()  # other filters differ
    baseline_row = [r for r in check.summary() if r["mode"] == "baseline"]
    assert baseline_row and baseline_row[0]["pairs"] == 3
    assert "Baseline: two different trained filters' reconstructions" in check.interpretation
    assert SanityCheckResult.from_dict(check.to_dict()).baseline_ssim.tolist() == check.baseline_ssim.tolist()
    # the old keywords still work, mapped onto the options
    assert sanity_check(topn, trained, images, n=1, filters=live[:1], progress=False).baseline_ssim is None


def test_normalisation_layers_are_named_as_not_randomised() -> None:
    from captum_fau.attr.randomise import normalisation_layers

    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.GroupNorm(2, 4))
    assert normalisation_layers(net) == ["1", "4"]


def test_sanity_options_object_equals_the_keywords() -> None:
    from captum_fau import ZeroBiasCNN
    from captum_fau.attr import SanityOptions

    torch.manual_seed(2)
    model = ZeroBiasCNN(img_size=32).eval()
    images = torch.randn(6, 1, 32, 32)
    topn = TopNDeconv(model, "conv2")
    top = topn.top_n(images, n=2, filters=[0, 1, 2], progress=False)
    by_keywords = topn.sanity_check(top, images, n=2, seed=4, independent=False, progress=False)
    by_options = topn.sanity_check(top, images, SanityOptions(n=2, seed=4, independent=False), progress=False)
    assert np.array_equal(by_keywords.ssim, by_options.ssim, equal_nan=True)
    assert [s["randomised"] for s in by_options.steps] == [["conv2"], ["conv2", "conv1"]]
    with pytest.raises(ConfigError, match="not sanity-check options"):
        topn.sanity_check(top, images, ranks=2, progress=False)
