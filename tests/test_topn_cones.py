"""Reconstruction on each unit's cone (ConeChain) against the full-image path and Captum."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop
from torch import nn

from captum_fau import ZeroBiasCNN
from captum_fau._utils.modules import stop_at_layer
from captum_fau.attr import TopNDeconv
from captum_fau.attr.receptive_field import trace_cone_chain
from captum_fau.attr.rules import ReluRuleMode

RTOL = 1e-4


class Chain(nn.Module):
    """A plain chain with eval BatchNorm, an inplace ReLU, eval dropout, a strided dilated conv,
    a conv without padding, odd map sizes and an unpadded pool that drops a row."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=2, dilation=2)
        self.conv3 = nn.Conv2d(8, 5, 3, padding=(1, 0), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.pool(self.relu1(self.bn(self.conv1(x)))))
        x = self.conv3(F.relu(self.conv2(x)))
        return x.mean((2, 3))


def _chain_model() -> Chain:
    torch.manual_seed(0)
    model = Chain().eval()
    model.bn.running_mean.uniform_(-0.3, 0.3)
    model.bn.running_var.uniform_(0.5, 2.0)
    return model


def test_trace_finds_plain_chains_only() -> None:
    zb = ZeroBiasCNN().eval()
    chain = trace_cone_chain(stop_at_layer(zb, zb.conv3), torch.zeros(1, 1, 96, 96))
    assert chain is not None and [s.kind for s in chain.steps] == ["conv", "pointwise", "pool"] * 2 + ["conv"]
    assert chain.regions[0] == ((4, -14, 32), (4, -14, 32))  # the 32x32 receptive field of conv3
    assert chain.regions[3][0][2] == 14 and chain.regions[6][0][2] == 5  # 14x14 at conv2's input, 5x5 at conv3's

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + x

    class Gelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.out = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(F.gelu(self.conv(x)))

    res = Residual().eval()
    assert trace_cone_chain(lambda x: res(x), torch.zeros(1, 1, 8, 8)) is None
    gelu = Gelu().eval()
    assert trace_cone_chain(stop_at_layer(gelu, gelu.out), torch.zeros(1, 1, 8, 8)) is None
    chain_model = _chain_model()
    assert trace_cone_chain(stop_at_layer(chain_model, chain_model.conv3), torch.zeros(1, 2, 19, 21)) is not None
    chain_model.train()  # BatchNorm and dropout in training mode are not local
    assert trace_cone_chain(stop_at_layer(chain_model, chain_model.conv3), torch.zeros(1, 2, 19, 21)) is None


@pytest.mark.parametrize("rule", ["guided", "deconv", "gradient"])
def test_every_unit_on_its_cone_equals_the_full_image(rule: str) -> None:
    """All positions of the map, the border ones included, against the full-image back-projection."""
    model = _chain_model()
    x = torch.randn(2, 2, 19, 21, generator=torch.Generator().manual_seed(1))
    topn = TopNDeconv(model, "conv3", rule=rule)
    with torch.no_grad():
        maps = stop_at_layer(model, model.conv3)(x)
    _, channels, map_h, map_w = maps.shape
    grid = torch.stack(torch.meshgrid(torch.arange(map_h), torch.arange(map_w), indexing="ij"), -1).reshape(-1, 2)
    image_of = torch.arange(2).repeat_interleave(len(grid))
    positions = grid.repeat(2, 1)
    chan = (torch.arange(len(positions)) % channels).long()
    values = maps[image_of, chan, positions[:, 0], positions[:, 1]]
    chain = topn._cone_chain(x[:1], None)
    assert chain is not None
    topn.recon_batch_size = 7  # several batches
    recon, mismatch, boxes = topn.reconstruct_on_cones(chain, x[image_of], chan, positions, values)
    assert not bool(mismatch.any())
    full_boxes = torch.tensor([[0, 0, 19, 21]] * len(chan))
    full, still = topn.reconstruct(x[image_of], chan, positions, values, full_boxes, (1, 1))
    assert not bool(still.any())
    for p, (y0, x0, y1, x1) in enumerate(boxes.tolist()):
        ref = full[p]
        scale = float(ref.abs().max()) or 1.0
        assert float((recon[p] - ref[:, y0:y1, x0:x1]).abs().max()) <= RTOL * scale
        outside = ref.clone()
        outside[:, y0:y1, x0:x1] = 0
        assert float(outside.abs().max()) <= RTOL * scale  # the cone holds the whole reconstruction


@pytest.mark.parametrize("rule", ["guided", "deconv"])
def test_top_n_on_cones_matches_captum(rule: str) -> None:
    torch.manual_seed(5)
    model = ZeroBiasCNN(img_size=32).eval()
    data = torch.randn(10, 1, 32, 32)
    topn = TopNDeconv(model, "conv3", rule=rule)
    calls: list[int] = []
    original = topn.reconstruct_on_cones

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(args[2]))
        return original(*args, **kwargs)

    topn.reconstruct_on_cones = spy  # type: ignore[method-assign]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unit falls back to the full image
        res = topn.top_n(data, n=3, filters=[2, 7], full_maps=True, progress=False)
    assert calls == [6]
    crops = TopNDeconv(model, "conv3", rule=rule)
    crops.use_cones = False
    old = crops.top_n(data, n=3, filters=[2, 7], progress=False)
    assert float((old.patches - res.patches).abs().max()) <= RTOL * float(res.patches.abs().max())
    method = (NeuronGuidedBackprop if rule == "guided" else NeuronDeconvolution)(model, model.conv3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row, f in enumerate([2, 7]):
            for k in range(3):
                i, (h, w) = int(res.indices[row, k]), res.positions[row, k].tolist()
                ref = method.attribute(data[i : i + 1], neuron_selector=(f, h, w))[0] * res.values[row, k]
                assert float((res.full_maps[row, k] - ref).abs().max()) <= RTOL * float(ref.abs().max())


def test_rule_mode_applies_on_cones() -> None:
    """The ReLUs of the chain are replayed as calls the rule mode sees."""
    model = _chain_model()
    chain = trace_cone_chain(stop_at_layer(model, model.conv3), torch.zeros(1, 2, 19, 21))
    assert chain is not None
    (ah, bh, nh), (aw, bw, nw) = chain.regions[0]
    crops = torch.randn(3, 2, nh, nw, requires_grad=True)
    with ReluRuleMode("deconv") as mode:
        out = chain.forward(crops, torch.tensor([[0, 0], [1, 1], [2, 0]]))
    assert mode.relu_calls == 2 and out.shape == (3, 5, 1, 1)


def test_crop_failure_falls_back_to_full_images() -> None:
    """A model that refuses crops is reconstructed on full images, with a warning, not an error."""

    class Picky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] != 16:
                raise ValueError("16x16 only")
            return self.conv2(F.relu(self.conv1(x)))

    torch.manual_seed(2)
    model = Picky().eval()
    x = torch.randn(2, 1, 16, 16)
    topn = TopNDeconv(model, "conv2", rule="guided")
    full = topn.attribute(x, filters=[0, 2], full_image=True)
    topn.use_cones = False
    with pytest.warns(UserWarning, match="failed on receptive-field crops"):
        crop = topn.attribute(x, filters=[0, 2])
    assert torch.allclose(crop, full, atol=1e-6)
    topn.use_cones = True  # the cone path never calls the model's forward on crops
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cone = topn.attribute(x, filters=[0, 2])
    assert float((cone - full).abs().max()) <= RTOL * float(full.abs().max())
