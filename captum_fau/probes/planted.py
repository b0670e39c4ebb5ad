"""Planted models whose answers are known, for the probes' ground-truth tests and benchmark.

* :func:`region_filter_net` — one "filter" per AU that by construction sees only the pixels that
  AU alone (among the probed AUs) changes on the probe's faces: the probe must name that AU, and
  every other probed AU's effect on it is exactly zero.
* :func:`brow_masked_net` — a small conv net that zeroes its input below the brows before the first
  convolution: every mouth AU has exactly zero causal effect on every filter.
* :func:`planted_decision_net` — a conv net whose ``happy`` logit depends (by a large weight) on
  one planted filter: its ablation must rank first for happy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from captum_fau.data.base import CKPLUS_CLASSES
from captum_fau.synthfacs.geometry import SYNTHFACS_AUS
from captum_fau.synthfacs import render_with_aus
from captum_fau.synthfacs.geometry import AU_INDEX

#: AUs acting on the mouth and jaw only (below the brows and eyes).
MOUTH_AUS: tuple[str, ...] = ("AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU27",
                              "R12", "R14")  # fmt: skip


class RegionMeans(nn.Module):
    """``[B, 1, S, S]`` -> ``[B, C, 1, 1]``: the mean over each of ``C`` fixed masks of the pixels
    (``feature="brightness"``) or of the local-contrast energy ``(x - box3(x))^2`` (``"energy"``; a 3x3 box
    reaches one pixel, so masks exclusive by one pixel stay exclusive)."""

    def __init__(self, masks: np.ndarray, feature: str = "energy") -> None:
        super().__init__()
        self.feature = feature
        m = torch.as_tensor(np.asarray(masks, dtype=np.float32))
        self.register_buffer("weights", m / m.sum((1, 2), keepdim=True).clamp_min(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature == "brightness":
            energy = x
        else:
            energy = (x - nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)) ** 2
        return torch.einsum("bhw,chw->bc", energy[:, 0], self.weights)[:, :, None, None]


class _Masked(nn.Module):
    def __init__(self, keep: np.ndarray, body: nn.Sequential) -> None:
        super().__init__()
        self.register_buffer("keep", torch.as_tensor(keep, dtype=torch.float32)[None, None])
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * self.keep)


def changed_pixels(seed: int, n_faces: int, au: str, size: int) -> np.ndarray:
    """bool ``[size, size]``: pixels that ``au`` at any intensity 1..5 changes on some neutral probe face.

    Measured from the renders, not taken from the SynthFACS region masks: those miss pixels the
    drawing changes (AU12 changes ~100 pixels per face outside its mask, up to 6 rows above it).
    """
    out = np.zeros((size, size), bool)
    for k in range(n_faces):
        vector = np.zeros(len(SYNTHFACS_AUS), np.float32)
        base = render_with_aus(seed, k, vector, size=size, n_subjects=n_faces)[0]
        for level in range(1, 6):
            vector[AU_INDEX[au]] = level
            out |= render_with_aus(seed, k, vector, size=size, n_subjects=n_faces)[0] != base
    return out


def exclusive_masks(seed: int, n_faces: int, size: int, aus: Sequence[str] = SYNTHFACS_AUS, margin: int = 1
                    ) -> dict[str, np.ndarray]:  # fmt: skip
    """Per AU of ``aus``, the pixels it changes on some probe face and no other AU of ``aus`` (dilated by
    ``margin``) does."""
    import cv2

    unions = {au: changed_pixels(seed, n_faces, au, size) for au in aus}
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    out = {}
    for au in aus:
        others = np.zeros((size, size), bool)
        for other, m in unions.items():
            if other != au:
                others |= m
        others = cv2.dilate(others.astype(np.uint8), kernel) > 0
        out[au] = unions[au] & ~others
    return out


def region_filter_net(
    masks: dict[str, np.ndarray], min_pixels: int = 20, feature: str = "energy"
) -> tuple[nn.Module, tuple[str, ...]]:
    """A model whose layer ``"1"`` has one channel per AU whose mask has ``min_pixels``; returns it and the AUs."""
    aus = tuple(au for au, m in masks.items() if m.sum() >= min_pixels)
    return nn.Sequential(nn.Identity(), RegionMeans(np.stack([masks[a] for a in aus]), feature)), aus


def brow_masked_net(seed: int, n_faces: int, size: int, channels: int = 8) -> nn.Module:
    """Zero the input from the top of the highest mouth-AU region down, then two random 5x5 convs (layer ``body.2``)."""
    top = size
    for au in MOUTH_AUS:
        rows = np.flatnonzero(changed_pixels(seed, n_faces, au, size).any(1))
        if rows.size:
            top = min(top, int(rows.min()))
    keep = np.zeros((size, size), np.float32)
    keep[: max(0, top - 8)] = 1.0  # 8 px: the 5x5 local mean and the two 5x5 convolutions cannot reach
    gen = torch.Generator().manual_seed(seed)
    body = nn.Sequential(nn.Conv2d(1, channels, 5, padding=2), nn.ReLU(), nn.Conv2d(channels, channels, 5, padding=2))
    with torch.no_grad():
        for p in body.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return _Masked(keep, body)


def planted_decision_net(planted: int, channels: int = 16, seed: int = 0, weight: float = 4.0) -> nn.Module:
    """Conv (``conv``, ``channels`` filters) -> ReLU -> global max -> linear over CK+'s 8 classes; the
    ``happy`` logit weighs filter ``planted`` by ``weight`` and the others by ~0.05."""
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(1, channels, 5, stride=2, padding=2, bias=False))
    net.add_module("relu", nn.ReLU())
    net.add_module("pool", nn.AdaptiveMaxPool2d(1))
    net.add_module("flatten", nn.Flatten())
    net.add_module("fc", nn.Linear(channels, len(CKPLUS_CLASSES)))
    with torch.no_grad():
        net.conv.weight.copy_(torch.randn(net.conv.weight.shape, generator=gen) * 0.2)
        net.fc.weight.copy_(torch.randn(net.fc.weight.shape, generator=gen) * 0.05)
        net.fc.bias.zero_()
        net.conv.weight[planted] = 0.05  # a blur: reliably active on any face
        net.fc.weight[CKPLUS_CLASSES.index("happy"), planted] = weight
    net.class_names = CKPLUS_CLASSES  # type: ignore[assignment]
    return net.eval()


__all__ = [
    "MOUTH_AUS",
    "RegionMeans",
    "brow_masked_net",
    "exclusive_masks",
    "planted_decision_net",
    "region_filter_net",
]
