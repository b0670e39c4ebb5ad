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

A crop still makes every layer compute its whole map on the crop, although a
unit needs ever fewer positions of the earlier maps (its *cone*: a 5x5 window
at conv3's input, 10x10 at conv2's output of the zero-bias CNN). When the
model's path up to the layer is a plain chain of convolutions, max pooling,
ReLUs and eval-mode BatchNorm/dropout, :func:`trace_cone_chain` records that
chain and :class:`ConeChain` evaluates each unit on exactly its cone: every
convolution runs unpadded on the positions the unit needs, with the positions
that are the network's zero padding on the full image set to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from captum_fau.attr.relu_rules import _IN_PLACE, _OUT_OF_PLACE

_POOL_NAMES = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}
_IDENTITY_NAMES = {"relu", "relu_", "batch_norm", "dropout", "dropout2d"}


class _SupportMode(TorchFunctionMode):
    """Make every conv/pool an averaging operator over one shared channel (see module docstring)."""

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
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
    def _max_pool(
        func: Callable[..., Any],
        x: torch.Tensor,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> Any:
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


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(int(v) for v in value)
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _bind(args: tuple, kwargs: dict, names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a torch function call by name (positional, then keyword, then default)."""
    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    return bound


@dataclass
class ChainStep:
    """One operation of a :class:`ConeChain`.

    Attributes:
        kind (str): ``"conv"``, ``"pool"`` or ``"pointwise"`` (ReLU, eval BatchNorm).
        in_size (tuple of int): ``(H, W)`` of the operation's input map on the full image.
        call (callable): The operation with its padding removed.
        kernel, stride, padding, dilation (tuple of int): Its window geometry (``(1, 1)``,
            ``(1, 1)``, ``(0, 0)``, ``(1, 1)`` for a pointwise operation).
        in_channels (int): Channels of the operation's input.
    """

    kind: str
    in_size: tuple[int, int]
    call: Callable[[torch.Tensor], torch.Tensor]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    in_channels: int = 0


_SKIP = object()  # an operation that is the identity in eval mode (dropout)


def _conv_step(x: torch.Tensor, args: tuple, kwargs: dict) -> ChainStep | None:
    b = _bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
              {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})  # fmt: skip
    weight, padding = b["weight"], b["padding"]
    if padding == "valid":
        padding = 0
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4 or isinstance(padding, str):
        return None
    bias, stride, dilation, groups = b["bias"], _pair(b["stride"]), _pair(b["dilation"]), int(b["groups"])
    return ChainStep(
        "conv", (x.shape[-2], x.shape[-1]), lambda t: F.conv2d(t, weight, bias, stride, 0, dilation, groups),
        (weight.shape[-2], weight.shape[-1]), stride, _pair(padding), dilation,
    )  # fmt: skip


def _pool_step(x: torch.Tensor, args: tuple, kwargs: dict) -> ChainStep | None:
    b = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
              {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})  # fmt: skip
    kernel = _pair(b["kernel_size"])
    stride = (
        kernel
        if b["stride"] is None or (not isinstance(b["stride"], int) and not len(b["stride"]))
        else _pair(b["stride"])
    )
    if _pair(b["padding"]) != (0, 0) or _pair(b["dilation"]) != (1, 1) or b["ceil_mode"] or b["return_indices"]:
        return None
    return ChainStep("pool", (x.shape[-2], x.shape[-1]), lambda t: F.max_pool2d(t, kernel, stride), kernel, stride)


def _chain_step(func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """The :class:`ChainStep` of one torch call on the running tensor, ``_SKIP``, or None (not a chain)."""
    x = args[0]
    if x.dim() != 4:
        return None
    name = getattr(func, "__name__", "")
    if func in _OUT_OF_PLACE or func in _IN_PLACE:
        return ChainStep("pointwise", (x.shape[-2], x.shape[-1]), torch.relu)
    if name == "conv2d":
        return _conv_step(x, args, kwargs)
    if name in ("max_pool2d", "_max_pool2d"):
        return _pool_step(x, args, kwargs)
    if name == "batch_norm":
        b = _bind(args, kwargs, ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
                  {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5})  # fmt: skip
        if b["training"] or b["running_mean"] is None or b["running_var"] is None:
            return None
        rest = (b["running_mean"], b["running_var"], b["weight"], b["bias"], False, b["momentum"], b["eps"])
        return ChainStep("pointwise", (x.shape[-2], x.shape[-1]), lambda t: F.batch_norm(t, *rest))
    if name in ("dropout", "dropout2d"):
        b = _bind(args, kwargs, ("input", "p", "training", "inplace"), {"p": 0.5, "training": True, "inplace": False})
        return None if b["training"] else _SKIP
    return None


class _ChainRecorder(TorchFunctionMode):
    """Follows the tensor from the input: every call producing a tensor from it must be a chain step."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.current, self.steps, self.ok = x, [], True

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.ok and isinstance(out, torch.Tensor):
            step = _chain_step(func, args, kwargs) if args and args[0] is self.current else None
            if step is None:
                self.ok = False
            else:
                if step is not _SKIP:
                    step.in_channels = int(args[0].shape[1])
                    self.steps.append(step)
                self.current = out
        return out


@dataclass
class ConeChain:
    """A model's path up to a layer as a chain of local operations, evaluated on each unit's cone.

    ``regions[i]`` is, per axis, ``(scale, offset, size)``: the input of step ``i`` that a
    unit at map position ``q`` needs covers positions ``scale * q + offset`` to
    ``scale * q + offset + size - 1`` of that step's input map (outside the map where the
    step pads); ``regions[0]`` is the unit's box on the image.
    """

    steps: list[ChainStep]
    regions: list[tuple[tuple[int, int, int], tuple[int, int, int]]]

    @classmethod
    def of(cls, steps: list[ChainStep]) -> "ConeChain":
        """The chain with its cone regions, walked back from one unit of the last step."""
        region = ((1, 0, 1), (1, 0, 1))
        regions = []
        for step in reversed(steps):
            region = tuple(
                (
                    a * step.stride[d],
                    b * step.stride[d] - step.padding[d],
                    (n - 1) * step.stride[d] + step.dilation[d] * (step.kernel[d] - 1) + 1,
                )
                for d, (a, b, n) in enumerate(region)
            )  # type: ignore[assignment]
            regions.append(region)
        return cls(steps, regions[::-1])

    def values_per_unit(self) -> int:
        """Elements of the largest intermediate map of one unit's cone (to size batches to the cache)."""
        return max(step.in_channels * region[0][2] * region[1][2] for step, region in zip(self.steps, self.regions))

    def boxes(self, positions: torch.Tensor) -> torch.Tensor:
        """``[P, 4]`` image boxes ``(y0, x0, y1, x1)`` of the units' cones (may reach outside the image)."""
        (ah, bh, nh), (aw, bw, nw) = self.regions[0]
        y0, x0 = ah * positions[:, 0].long() + bh, aw * positions[:, 1].long() + bw
        return torch.stack([y0, x0, y0 + nh, x0 + nw], dim=1)

    def forward(self, crops: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``[P, C, 1, 1]``: the layer at unit ``positions[p]`` from its cone ``crops[p]``
        (the image on :meth:`boxes`, zero outside the image)."""
        x = crops
        for step, region in zip(self.steps, self.regions):
            if step.kind == "conv" and step.padding != (0, 0):
                x = x * self._inside(step, region, positions, x)
            x = step.call(x)
        return x

    @staticmethod
    def _inside(step: ChainStep, region: Any, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor | float:
        """``[P, 1, h, w]`` 1 where the step's input is on its map, 0 where it is the step's padding."""
        masks = []
        for d, (a, b, n) in enumerate(region):
            at = (a * positions[:, d].long() + b)[:, None] + torch.arange(n)[None]
            masks.append((at >= 0) & (at < step.in_size[d]))
        if bool(masks[0].all()) and bool(masks[1].all()):
            return 1.0
        return (masks[0][:, None, :, None] & masks[1][:, None, None, :]).to(device=x.device, dtype=x.dtype)


def trace_cone_chain(
    forward_to_layer: Callable[[torch.Tensor], torch.Tensor], sample: torch.Tensor
) -> ConeChain | None:
    """The :class:`ConeChain` of a model up to a layer, or None when the path is not such a chain.

    One forward of ``sample`` (without gradients) follows the tensor from the input to the
    layer's output: every torch call producing a tensor from it must be a 2-D convolution
    (numeric padding, zeros), a max pooling without padding, dilation or ceil mode, a ReLU,
    eval-mode BatchNorm or eval-mode dropout; and the layer's output must be the last one.
    Anything else (a residual sum, attention, a slice, another activation) gives None.

    Examples::

        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3))
        >>> chain = trace_cone_chain(lambda x: net(x), torch.zeros(1, 1, 16, 16))
        >>> [s.kind for s in chain.steps], chain.regions[0]
        (['conv', 'pointwise', 'pool', 'conv'], ((2, -2, 10), (2, -2, 10)))
        >>> trace_cone_chain(lambda x: net(x) + 1, torch.zeros(1, 1, 16, 16)) is None
        True
    """
    recorder = _ChainRecorder(sample)
    with torch.no_grad(), recorder:
        out = forward_to_layer(sample)
    if not recorder.ok or not recorder.steps or out is not recorder.current or out.dim() != 4:
        return None
    return ConeChain.of(recorder.steps)


__all__ = ["ChainStep", "ConeChain", "ReceptiveFields", "receptive_fields", "trace_cone_chain", "whole_image_fields"]
