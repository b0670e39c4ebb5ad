"""Receptive fields of a layer's units, found automatically.

A unit's value depends only on the input pixels of its receptive field. To find
them for any model, :func:`receptive_fields` runs the model up to the layer on
a constant positive input while a :class:`~torch.overrides.TorchFunctionMode`
replaces every convolution by a positive averaging kernel of the same
geometry (no bias), max pooling by average pooling over the same windows,
BatchNorm and ReLU by the identity. Every intermediate value is then positive
and every path carries a positive derivative, so the support of the input
gradient of a unit is exactly the set of pixels it depends on. A global
operation (squeeze-excitation, attention, a global pool) shows up as a
receptive field covering the whole image, and the crop path degenerates
gracefully into the full-image path.

Crops are aligned to the layer's total stride (so pooling grids line up) and
clamped to the image border (so the network's own zero padding is the same
as on the full image); a unit computed on its crop equals the unit computed on
the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_POOL_NAMES = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}
_IDENTITY_NAMES = {"relu", "relu_", "batch_norm", "dropout", "dropout2d"}


class _SupportMode(TorchFunctionMode):
    """Make every conv/pool an averaging operator over one shared channel (see module docstring)."""

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if func is F.conv2d or name == "conv2d":
            return self._conv(*args, **kwargs)
        if name in _POOL_NAMES:
            return self._max_pool(func, *args, **kwargs)
        if name in _IDENTITY_NAMES and args and isinstance(args[0], torch.Tensor):
            return args[0]
        return func(*args, **kwargs)

    @staticmethod
    def _conv(
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
    ) -> torch.Tensor:
        # Channels are identical throughout the probe, so one channel carries all the geometry.
        kh, kw = weight.shape[-2:]
        kernel = torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=x.dtype, device=x.device)
        y = F.conv2d(x[:, :1], kernel, None, stride, padding, dilation, 1)
        return y.expand(-1, weight.shape[0], -1, -1).contiguous()

    @staticmethod
    def _max_pool(func: Callable[..., Any], x: torch.Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                  dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        k, s = pair(kernel_size), pair(stride if stride else kernel_size)
        p, d = pair(padding), pair(dilation)
        with torch.no_grad():
            reference = F.max_pool2d(x[:1, :1].detach(), k, s, p, d, ceil_mode, True)
        out_h, out_w = reference[0].shape[-2:]
        padded = F.pad(x[:, :1], (p[1], p[1] + k[1] * d[1], p[0], p[0] + k[0] * d[0]))
        kernel = torch.full((1, 1, *k), 1.0 / (k[0] * k[1]), dtype=x.dtype, device=x.device)
        y = F.conv2d(padded, kernel, None, s, 0, d)[..., :out_h, :out_w].expand(-1, x.shape[1], -1, -1).contiguous()
        name = getattr(func, "__name__", "")
        if return_indices or name == "max_pool2d_with_indices":
            return y, torch.zeros(y.shape, dtype=torch.int64, device=y.device)
        return y


@dataclass
class ReceptiveFields:
    """Receptive fields of every unit of a layer for one input size.

    Attributes:
        rows (Tensor): ``[H_map, 2]`` int64, first and last input row (inclusive) of each map row.
        cols (Tensor): ``[W_map, 2]`` int64, first and last input column of each map column.
        stride (tuple of int): The layer's total stride ``(S_h, S_w)``.
        size (tuple of int): Receptive-field size of an interior unit ``(R_h, R_w)``.
        input_size (tuple of int): ``(H, W)`` of the input.
        local (bool): False when the fields could not be established (then every
            unit's field is the whole image).
    """

    rows: torch.Tensor
    cols: torch.Tensor
    stride: tuple[int, int]
    size: tuple[int, int]
    input_size: tuple[int, int]
    local: bool = True

    def crop_boxes(self, positions: torch.Tensor) -> torch.Tensor:
        """``[P, 4]`` crop boxes ``(y0, x0, y1, x1)`` (end exclusive) for units at ``positions`` ``[P, 2]``:
        the receptive field with its start aligned down to the total stride."""
        pos = positions.long()
        rows, cols = self.rows[pos[:, 0]], self.cols[pos[:, 1]]
        y0 = torch.div(rows[:, 0], self.stride[0], rounding_mode="floor") * self.stride[0]
        x0 = torch.div(cols[:, 0], self.stride[1], rounding_mode="floor") * self.stride[1]
        return torch.stack([y0, x0, rows[:, 1] + 1, cols[:, 1] + 1], dim=1)

    def patch_boxes(self, positions: torch.Tensor) -> torch.Tensor:
        """``[P, 4]`` boxes of one fixed size ``size`` holding each unit's receptive field,
        shifted inside the image where the field is clipped by the border."""
        pos = positions.long()
        height, width = self.input_size
        r_h, r_w = min(self.size[0], height), min(self.size[1], width)
        y0 = self.rows[pos[:, 0], 0].clamp(max=height - r_h)
        x0 = self.cols[pos[:, 1], 0].clamp(max=width - r_w)
        # A field clipped at the top/left starts at 0; one clipped at the bottom/right ends at the border.
        y0 = torch.minimum(y0, (self.rows[pos[:, 0], 1] + 1 - r_h).clamp(min=0))
        x0 = torch.minimum(x0, (self.cols[pos[:, 1], 1] + 1 - r_w).clamp(min=0))
        return torch.stack([y0, x0, y0 + r_h, x0 + r_w], dim=1)


def whole_image_fields(map_size: tuple[int, int], input_size: tuple[int, int]) -> ReceptiveFields:
    """Fields that cover the whole image: the full-image path."""
    height, width = input_size
    rows = torch.tensor([[0, height - 1]] * map_size[0], dtype=torch.int64)
    cols = torch.tensor([[0, width - 1]] * map_size[1], dtype=torch.int64)
    return ReceptiveFields(rows, cols, (1, 1), (height, width), (height, width), local=False)


def _stride(starts: torch.Tensor, ends: torch.Tensor, extent: int, map_len: int) -> int:
    interior = (starts[1:] > 0) & (ends[:-1] < extent - 1) & (starts[:-1] > 0) & (ends[1:] < extent - 1)
    diffs = (starts[1:] - starts[:-1])[interior]
    if diffs.numel():
        return max(1, int(torch.mode(diffs).values))
    return max(1, round(extent / max(map_len, 1)))


def receptive_fields(
    forward_to_layer: Callable[[torch.Tensor], torch.Tensor],
    input_shape: tuple[int, int, int],
    map_size: tuple[int, int],
    device: torch.device | str = "cpu",
    chunk: int = 16,
) -> ReceptiveFields:
    """Measure the receptive field of every row and column of a layer's map.

    Args:
        forward_to_layer (callable): Maps an input batch to the layer's output
            ``[B, C, H_map, W_map]`` (the rest of the model need not run).
        input_shape (tuple): ``(C, H, W)`` of one input.
        map_size (tuple): ``(H_map, W_map)`` of the layer's map at that input size.
        device (torch.device or str, optional): Device of the probe. Default: cpu
        chunk (int, optional): Probe units per backward pass. Default: 16

    Returns:
        ReceptiveFields: the fields. Raises whatever the model raises under the
        probe; callers treat that as "locality unknown".
    """
    channels, height, width = input_shape
    map_h, map_w = map_size
    probes = max(map_h, map_w)
    rows = torch.zeros(map_h, 2, dtype=torch.int64)
    cols = torch.zeros(map_w, 2, dtype=torch.int64)
    for start in range(0, probes, chunk):
        ks = torch.arange(start, min(start + chunk, probes))
        ii, jj = ks.clamp(max=map_h - 1), ks.clamp(max=map_w - 1)
        x = torch.full((len(ks), channels, height, width), 0.5, dtype=torch.float64, device=device, requires_grad=True)
        with _SupportMode():
            out = forward_to_layer(x)
        grad_out = torch.zeros_like(out)
        grad_out[torch.arange(len(ks)), 0, ii, jj] = 1.0
        (grad,) = torch.autograd.grad(out, x, grad_out)
        support = grad.abs().sum(1) > 0  # [P, H, W]
        for p in range(len(ks)):
            row_any = support[p].any(1).nonzero()
            col_any = support[p].any(0).nonzero()
            if row_any.numel() == 0:
                raise RuntimeError("the probe found no input dependence")
            rows[ii[p]] = torch.tensor([row_any.min(), row_any.max()])
            cols[jj[p]] = torch.tensor([col_any.min(), col_any.max()])
    stride = (_stride(rows[:, 0], rows[:, 1], height, map_h), _stride(cols[:, 0], cols[:, 1], width, map_w))
    size = (int((rows[:, 1] - rows[:, 0]).max()) + 1, int((cols[:, 1] - cols[:, 0]).max()) + 1)
    return ReceptiveFields(rows, cols, stride, size, (height, width), local=True)


__all__ = ["ReceptiveFields", "receptive_fields", "whole_image_fields"]
