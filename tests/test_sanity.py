"""Model-randomisation sanity check of TopNDeconv: SSIM against a hand computation, the check's
behaviour on weight-dependent and weight-independent rules, determinism, and the trained model untouched."""

from __future__ import annotations

import copy

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
    assert torch.equal(clone.conv1.weight, model.conv1.weight) and not torch.equal(clone.conv2.weight, model.conv2.weight)
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
            ["conv3"], ["conv3", "conv2"], ["conv3", "conv2", "conv1"], ["conv2"], ["conv1"]
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
def test_analyze_stores_and_reports_the_check(tmp_path) -> None:
    import json

    from captum_fau import ZeroBiasCNN
    from captum_fau.analyze import analyze
    from captum_fau.data.synthfacs import load_synthfacs

    torch.manual_seed(0)
    model = ZeroBiasCNN(num_classes=8).eval()
    state = copy.deepcopy(model.state_dict())
    faces = load_synthfacs(24, seed=3)
    result = analyze(model, faces, layer="conv1", out=tmp_path, n=2, permutations=20, bootstrap=0, progress=False,
                     n_featured=2, sanity_check=True)  # fmt: skip
    stored = SanityCheckResult.load(tmp_path / "sanity.json")
    assert result.sanity is not None and stored.summary() == result.sanity.summary()
    assert [s["randomised"] for s in stored.steps] == [["conv1"]] and stored.ssim.shape == (1, 64, 2)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["sanity_check"]["interpretation"] == result.sanity.interpretation
    assert "Sanity check: reconstructions with randomised weights" in (tmp_path / "index.html").read_text()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])


def test_cli_topn_sanity_check(tmp_path, capsys) -> None:
    from captum_fau.cli import main

    out = tmp_path / "topn"
    assert main(["topn", "--model", "zerobias-synthfacs-8class", "--layer", "conv1", "--data", "synthfacs:8",
                 "--n", "2", "--filters", "0-3", "--featured", "2", "--sanity-check", "--out", str(out), "-q"]) == 0  # fmt: skip
    check = SanityCheckResult.load(out / "sanity.json")
    assert check.layers == ["conv1"] and check.ssim.shape == (1, 4, 2)
    assert "sanity check:" in capsys.readouterr().out
