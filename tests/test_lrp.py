"""LRP-ε (rule="lrp"): exact against zennit's epsilon rules, refused where it has no rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from captum_fau.attr import TopNDeconv
from captum_fau.attr.rules import RULES, check_rule, display_name, get_rule
from captum_fau.errors import AttributionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import check_lrp_zennit  # noqa: E402

HAS_ZENNIT = importlib.util.find_spec("zennit") is not None


@pytest.mark.skipif(not HAS_ZENNIT, reason="zennit is not importable (not a dependency; install it with "
                    "'pip install --no-deps --target DIR zennit' and put DIR on PYTHONPATH)")  # fmt: skip
@pytest.mark.parametrize("bn_eps, bound", [(1e-12, 1e-5), (1e-5, 3e-5)])
def test_lrp_matches_zennit_on_a_bn_strided_max_pool_model(bn_eps: float, bound: float) -> None:
    # with PyTorch's eps, zennit's merged batch norms stay x / sqrt(1 + eps): a constant factor ~1 + 2e-5
    result = check_lrp_zennit.compare(seed=0, images=3, bn_eps=bn_eps)
    assert result["max_abs_reference"] > 1e-3
    for path in ("crops", "full_image"):
        assert result[f"max_abs_error_{path}"] < 1e-5
        assert result[f"max_rel_error_{path}"] < bound


def test_lrp_conserves_relevance_without_biases() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.ReLU()).eval()  # fmt: skip
    x = torch.rand(2, 1, 16, 16)
    topn = TopNDeconv(model, model[4], rule="lrp")
    relevance = topn.attribute(x, filters=[0, 3], full_image=True)
    with torch.no_grad():
        top = model(x)[:, [0, 3]].flatten(2).max(dim=2).values
    assert torch.allclose(relevance.sum(dim=(2, 3, 4)), top, rtol=1e-4)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x))
        return self.out(h + h.mean())


@pytest.mark.parametrize(
    "model, layer, named",
    [
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.AvgPool2d(2), nn.Conv2d(4, 4, 3)), "2", "AvgPool2d"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.GELU(), nn.Conv2d(4, 4, 3)), "2", "GELU"),
        (Residual(), "out", "add"),
    ],
)
def test_lrp_refuses_what_it_has_no_rule_for(model: nn.Module, layer: str, named: str) -> None:
    with pytest.raises(AttributionError, match=f"rule='lrp'.*{named}.*rule='gradient'"):
        TopNDeconv(model.eval(), layer, rule="lrp").attribute(torch.rand(1, 1, 12, 12), filters=[0])


def test_lrp_refuses_a_batch_norm_after_no_convolution() -> None:
    model = nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 4, 3), nn.ReLU()).eval()
    with pytest.raises(AttributionError, match="BatchNorm2d not after a convolution"):
        TopNDeconv(model, "2", rule="lrp").attribute(torch.rand(1, 1, 12, 12), filters=[0])


def test_lrp_runs_on_the_zero_bias_cnn() -> None:
    from captum_fau import ZeroBiasCNN

    model = ZeroBiasCNN(img_size=48).eval()
    out = TopNDeconv(model, "conv2", rule="lrp").attribute(torch.rand(1, 1, 48, 48), filters=[0, 1])
    assert out.shape == (1, 2, 1, 48, 48) and torch.isfinite(out).all()


def test_the_registry_names_the_rule_everywhere() -> None:
    from captum_fau.cli import _options

    assert "lrp" in RULES and _options.RULES == RULES
    assert display_name("lrp") == "LRP-ε" and get_rule("lrp").supports
    with pytest.raises(Exception, match="'lrp' \\(LRP-ε\\)"):
        check_rule("lrp0")
