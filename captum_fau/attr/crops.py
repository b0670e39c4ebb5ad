"""Crops of a model's input: models that check their input size, and pasting crop results into windows."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class SizeCheckedModule(Protocol):
    """A module that checks the full input size and lets analyses switch the check off.

    A model whose ``forward`` refuses inputs other than its training size (as
    :class:`~captum_fau.models.ZeroBiasCNN` does) still has local convolutional
    layers; to let :class:`~captum_fau.attr.TopNDeconv` run those layers on receptive-field
    crops it exposes a boolean ``strict_size`` attribute. Every submodule with one is
    set to ``False`` while crops are computed and restored afterwards (the crop
    path checks each unit against its full-image value, so nothing is lost).
    """

    strict_size: bool


@contextmanager
def crop_friendly(model: nn.Module) -> Iterator[None]:
    """Lift the input-size checks of every :class:`SizeCheckedModule` in ``model`` meanwhile."""
    relaxed = [
        (m, m.strict_size) for m in model.modules()
        if isinstance(m, SizeCheckedModule) and isinstance(m.strict_size, bool)
    ]  # fmt: skip
    for module, _ in relaxed:
        module.strict_size = False
    try:
        yield
    finally:
        for module, strict in relaxed:
            module.strict_size = strict


def paste_window(window: torch.Tensor, recon: torch.Tensor, box: torch.Tensor, window_box: torch.Tensor) -> None:
    """Copy the overlap of ``recon`` (computed on ``box``) into ``window`` (covering ``window_box``),
    both boxes ``(y0, x0, y1, x1)`` in image coordinates; ``window`` is changed in place."""
    y0, x0, y1, x1 = (int(v) for v in box)
    py0, px0, py1, px1 = (int(v) for v in window_box)
    oy0, ox0, oy1, ox1 = max(y0, py0), max(x0, px0), min(y1, py1), min(x1, px1)
    if oy1 > oy0 and ox1 > ox0:
        window[:, oy0 - py0 : oy1 - py0, ox0 - px0 : ox1 - px0] = (
            recon[:, oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0].to(window.dtype).cpu()
        )


__all__ = ["SizeCheckedModule", "crop_friendly", "paste_window"]
