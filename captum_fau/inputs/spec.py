"""The input contract between a dataset and a model: :class:`InputSpec`.

Datasets yield raw face crops, gray or RGB, with pixels in ``[0, 1]``. A model's
:class:`InputSpec` says how to turn them into the tensors the model saw in training:

1. channels: gray is repeated to RGB; RGB becomes gray by ITU-R BT.601 luma
   (``0.299 R + 0.587 G + 0.114 B``);
2. size: resized with :func:`torch.nn.functional.interpolate` (antialiased where torch
   supports it), after a timm-style centre crop when ``crop_pct < 1``;
3. pixel range: ``[0, 1]`` is mapped linearly onto ``pixel_range`` (``(0, 255)`` for models
   fed raw bytes, ``(0, 2)`` for the zero-bias CNN's ``x / 255 * 2``);
4. ``(x - mean) / std`` per channel;
5. an optional local box-mean subtraction (the zero-bias CNN's reference preprocessing,
   5x5 with zero padding at the border).

A spec records where each of its fields came from (:attr:`InputSpec.sources`), so reports
can say so. Specs come from, first wins: explicit arguments, the zero-bias CNN's config,
timm's ``pretrained_cfg``, a Hub folder's ``preprocessor_config.json``, a probe forward
(:func:`captum_fau.inputs.probe.probe_input`), defaults (:mod:`captum_fau.inputs.sources`).
:func:`captum_fau.inputs.resolve.merge_spec` merges
them and writes a note wherever an explicit value overrides a different discovered one.

Examples::

    >>> import torch
    >>> spec = InputSpec(size=(48, 48), channels=1, pixel_range=(0, 1), mean=(0.5,), std=(0.5,))
    >>> spec.apply(torch.rand(2, 3, 96, 96)).shape
    torch.Size([2, 1, 48, 48])
    >>> InputSpec.from_zerobias_config({"img_size": 96, "in_chans": 1}).describe()
    '96x96 gray, pixels in [0,2], mean 0 std 1, 5x5 local mean (zero padding), bilinear; size, channels, pixel_range, mean, std and local_mean from zero-bias config'
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from captum_fau.errors import ConfigError, InputShapeError

#: Interpolation modes :meth:`InputSpec.apply` understands.
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "nearest", "area")
#: Border handling of the local mean: ``"zeros"`` (the reference code) or ``"replicate"``.
LOCAL_MEAN_PADDINGS: tuple[str, ...] = ("zeros", "replicate")
#: ITU-R BT.601 luma weights (R, G, B), as PIL's ``convert("L")`` uses.
BT601_LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)
#: Source names recorded in :attr:`InputSpec.sources`.
SOURCE_EXPLICIT = "explicit"
SOURCE_ZEROBIAS = "zero-bias config"
SOURCE_TIMM = "timm pretrained_cfg"
SOURCE_HF = "preprocessor_config.json"
SOURCE_PROBE = "probe"
SOURCE_DEFAULT = "default"
#: Source of a channel count taken from the data because nothing else declared one.
SOURCE_DATA = "data"

_CHANNEL_NAMES = {1: "gray", 3: "RGB"}
_DEFAULTS: dict[str, Any] = {
    "size": None,
    "channels": 1,
    "pixel_range": (0.0, 1.0),
    "mean": (0.0,),
    "std": (1.0,),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "face_margin": None,
    "local_mean": 0,
    "local_mean_padding": "zeros",
}
#: The command-line flag of each field: pass as ``explicit_sources`` to :meth:`InputSpec.resolve`
#: so notes and :meth:`InputSpec.describe` name the flag (``"size from --input-size"``).
CLI_FLAGS: dict[str, str] = {
    "size": "--input-size",
    "channels": "--channels",
    "pixel_range": "--pixel-range",
    "mean": "--mean",
    "std": "--std",
    "interpolation": "--interpolation",
    "crop_pct": "--crop-pct",
    "face_margin": "--face-margin",
    "local_mean": "--local-mean",
    "local_mean_padding": "--local-mean-padding",
}


def _fmt_num(v: float) -> str:
    return f"{v:g}"


def _fmt_value(name: str, value: Any) -> str:
    """A field value as people write it on the command line (``48x48``, ``0.5,0.5,0.5``, ``0-1``)."""
    if value is None:
        return "none"
    if name == "size":
        return f"{value[0]}x{value[1]}"
    if name == "pixel_range":
        return f"{_fmt_num(value[0])}-{_fmt_num(value[1])}"
    if name in ("mean", "std"):
        return ",".join(_fmt_num(v) for v in value)
    if isinstance(value, float):
        return _fmt_num(value)
    return str(value)


def _as_floats(name: str, value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value.strip()) if v]
    if isinstance(value, (int, float)):
        value = (value,)
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number or a list of numbers (one per channel), got {value!r}.") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{name} must be finite numbers, one per channel (e.g. 0.5 or 0.485,0.456,0.406); got {value!r}.")
    return out


def parse_size(value: Any) -> tuple[int, int] | None:
    """``48``, ``"48"``, ``"48x64"``, ``(48, 64)`` or ``[3, 48, 64]`` (timm's ``input_size``) -> ``(H, W)``.

    Raises:
        ConfigError: not one or two positive integers.

    Examples::

        >>> parse_size("48"), parse_size("48x64"), parse_size((3, 224, 224))
        ((48, 48), (48, 64), (224, 224))
    """
    if value is None:
        return None
    parts: Sequence[Any]
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[x,\s]\s*(\d+)\s*)?", value.lower())
        parts = [p for p in match.groups() if p is not None] if match else []
    elif isinstance(value, (int, float)):
        parts = [value]
    else:
        parts = list(value)
        if len(parts) == 3:  # timm's (C, H, W)
            parts = parts[1:]
    try:
        ints = [int(p) for p in parts]
        exact = all(float(p) == i for p, i in zip(parts, ints))
    except (TypeError, ValueError):
        ints, exact = [], False
    if not exact or len(ints) not in (1, 2) or min(ints) < 1:
        raise ConfigError(
            f"input size must be one or two positive integers (e.g. --input-size 48 or 48x64), got {value!r}."
        )
    return (ints[0], ints[-1])


def parse_pixel_range(value: Any) -> tuple[float, float]:
    """``"0-1"``, ``"0,255"``, ``"-1-1"``, ``"-1:1"`` or ``(lo, hi)`` -> ``(lo, hi)``.

    Raises:
        ConfigError: not two numbers with ``lo < hi``.

    Examples::

        >>> parse_pixel_range("0-1"), parse_pixel_range("-1-1"), parse_pixel_range("0,255")
        ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
    """
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(-?[\d.]+(?:e-?\d+)?)\s*(?:-|,|:|\.\.|\s)\s*(-?[\d.]+(?:e-?\d+)?)\s*", value)
        if match is None:
            raise ConfigError(f"pixel range must read LO-HI (e.g. --pixel-range 0-1, 0-255 or -1-1), got {value!r}.")
        value = match.groups()
    lo_hi = _as_floats("pixel_range", value)
    if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
        raise ConfigError(f"pixel range must be two numbers LO < HI (e.g. 0-1, 0-255 or -1-1), got {value!r}.")
    return (lo_hi[0], lo_hi[1])


def local_mean_subtract(x: torch.Tensor, size: int, padding: str = "zeros") -> torch.Tensor:
    """``x`` minus its per-channel ``size`` x ``size`` box mean.

    With ``padding="zeros"`` the window always divides by ``size**2`` and counts pixels
    outside the image as 0 (``avg_pool2d(..., count_include_pad=True)``), which is what the
    reference code computed; ``"replicate"`` repeats the border pixels instead.

    Args:
        x (Tensor): ``[B, C, H, W]`` float.
        size (int): Odd window side; 0 returns ``x`` unchanged.
        padding (str, optional): ``"zeros"`` or ``"replicate"``. Default: ``"zeros"``

    Returns:
        Tensor: same shape as ``x``.

    Examples::

        >>> import torch
        >>> x = torch.ones(1, 1, 5, 5)
        >>> out = local_mean_subtract(x, 3)  # a corner window holds 4 of 9 pixels: 1 - 4/9
        >>> round(float(out[0, 0, 2, 2]), 4), round(float(out[0, 0, 0, 0]), 4)
        (0.0, 0.5556)
    """
    from captum_fau.data.transforms import local_mean_subtract as reference

    # One implementation for training, the datasets and the contract: bit-identical tensors.
    return reference(x, size, padding)



def _and_list(names: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

@dataclass(frozen=True)
class InputSpec:
    """How raw face crops (``[0, 1]``, gray or RGB) become a model's input tensors.

    Args:
        size (tuple of int, optional): ``(H, W)`` the model takes; ``None`` keeps the data's size.
            An int means a square. Default: None
        channels (int, optional): 1 (gray) or 3 (RGB). Default: 1
        pixel_range (tuple of float, optional): ``[0, 1]`` is mapped linearly onto this range
            before mean/std: ``(0, 1)``, ``(0, 255)`` (raw bytes), ``(-1, 1)``, ``(0, 2)`` (the
            zero-bias CNN). Default: ``(0, 1)``
        mean (tuple of float, optional): Per-channel mean subtracted after the range scaling;
            one value is repeated for every channel. Default: ``(0,)``
        std (tuple of float, optional): Per-channel divisor, every value > 0. Default: ``(1,)``
        interpolation (str, optional): ``"bilinear"``, ``"bicubic"``, ``"nearest"`` or ``"area"``.
            Default: ``"bilinear"``
        crop_pct (float, optional): timm's centre-crop fraction: images are resized to
            ``floor(size / crop_pct)`` and centre-cropped to ``size``. Default: 1.0 (no crop)
        face_margin (float, optional): Margin added around a detected face box, as a fraction of
            its side, by loaders that crop faces; :meth:`apply` does not use it. Default: None
            (the loader's own)
        local_mean (int, optional): Odd box size of a local mean subtraction applied last;
            0 disables it. Default: 0
        local_mean_padding (str, optional): ``"zeros"`` (the reference code) or ``"replicate"``.
            Default: ``"zeros"``
        sources (dict, optional): Field name -> where its value came from (``"explicit"``,
            ``"zero-bias config"``, ``"timm pretrained_cfg"``, ``"preprocessor_config.json"``,
            ``"probe"``, ``"default"``, or a flag such as ``"--input-size"``). Fields not listed
            are ``"default"``. Not part of equality.
        remarks (tuple of str, optional): Notes made while the spec was built (approximations,
            overrides, probe results); :meth:`notes` includes them. Not part of equality.

    Raises:
        ConfigError: a field is invalid; the message names the fix.

    Examples::

        >>> spec = InputSpec(size=48, channels=3, mean=0.5, std=(0.5, 0.5, 0.5))
        >>> spec.size, spec.mean
        ((48, 48), (0.5, 0.5, 0.5))
        >>> InputSpec(channels=3, mean=(0.5, 0.5))
        Traceback (most recent call last):
        ...
        captum_fau.errors.ConfigError: mean has 2 values but the model takes 3 channel(s); give one value per channel (e.g. --mean 0.5,0.5,0.5) or a single value for all.
    """

    size: tuple[int, int] | None = None
    channels: int = 1
    pixel_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    face_margin: float | None = None
    local_mean: int = 0
    local_mean_padding: str = "zeros"
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    remarks: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "size", parse_size(self.size))
        if isinstance(self.channels, bool) or self.channels not in (1, 3):
            raise ConfigError(
                f"channels must be 1 (gray) or 3 (RGB), got {self.channels!r}; pass --channels 1 or --channels 3."
            )
        set_(self, "channels", int(self.channels))
        set_(self, "pixel_range", parse_pixel_range(self.pixel_range))
        for name in ("mean", "std"):
            values = _as_floats(name, getattr(self, name))
            if len(values) == 1:
                values = values * self.channels
            if len(values) != self.channels:
                raise ConfigError(
                    f"{name} has {len(values)} values but the model takes {self.channels} channel(s); give one "
                    f"value per channel (e.g. --{name} {','.join(['0.5'] * self.channels)}) or a single value for all."
                )
            set_(self, name, values)
        if min(self.std) <= 0:
            raise ConfigError(f"std must be > 0 for every channel, got {self.std}; e.g. --std 0.5 or --std 1.")
        interpolation = str(self.interpolation).lower()
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"unknown interpolation {self.interpolation!r}; use one of {', '.join(INTERPOLATIONS)} (--interpolation)."
            )
        set_(self, "interpolation", interpolation)
        crop = self.crop_pct
        if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0 < crop <= 1:
            raise ConfigError(f"crop_pct must be a fraction in (0, 1], got {crop!r}; 1 disables the centre crop.")
        set_(self, "crop_pct", float(crop))
        margin = self.face_margin
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 2):
            raise ConfigError(f"face_margin must be a fraction of the face box in [0, 2] (e.g. 0.2), got {margin!r}.")
        set_(self, "face_margin", None if margin is None else float(margin))
        lm = self.local_mean
        if isinstance(lm, bool) or not isinstance(lm, numbers.Integral) or lm < 0 or (lm and lm % 2 == 0):
            raise ConfigError(
                f"local_mean must be 0 (off) or an odd box size such as 5 (the reference), got {lm!r} (--local-mean)."
            )
        set_(self, "local_mean", int(lm))
        if self.local_mean_padding not in LOCAL_MEAN_PADDINGS:
            raise ConfigError(
                f"unknown local_mean_padding {self.local_mean_padding!r}; use {' or '.join(LOCAL_MEAN_PADDINGS)}."
            )
        unknown = set(self.sources) - set(_DEFAULTS)
        if unknown:
            raise ConfigError(f"sources names unknown fields {sorted(unknown)}; fields are {', '.join(_DEFAULTS)}.")
        if not self.sources:  # built by hand: what differs from the defaults was given explicitly
            given = {n: SOURCE_EXPLICIT for n, d in _DEFAULTS.items() if getattr(self, n) != _normalised_default(n, d, self.channels)}
        else:
            given = dict(self.sources)
        set_(self, "sources", {name: str(given.get(name, SOURCE_DEFAULT)) for name in _DEFAULTS})
        set_(self, "remarks", tuple(str(r) for r in self.remarks))

    # ------------------------------------------------------------------ apply
    def output_size(self, data_size: tuple[int, int]) -> tuple[int, int]:
        """``(H, W)`` of :meth:`apply`'s output for data of ``data_size``."""
        return self.size if self.size is not None else (int(data_size[0]), int(data_size[1]))

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Turn raw face crops into the model's input, as one batched tensor op.

        Args:
            images (Tensor): ``[B, C, H, W]`` with ``C`` 1 (gray) or 3 (RGB): float in
                ``[0, 1]``, or uint8 (divided by 255).

        Returns:
            Tensor: float32 ``[B, channels, *size]`` on ``images``' device.

        Raises:
            InputShapeError: not a 4-D batch, a channel count other than 1 or 3 (RGBA: drop
                the alpha channel), or float pixels outside ``[0, 1]`` (16-bit or 0..255 data:
                divide by the maximum first).

        Examples::

            >>> import torch
            >>> spec = InputSpec(size=(2, 2), channels=3, pixel_range=(-1, 1))
            >>> spec.apply(torch.ones(1, 1, 4, 4)).flatten().tolist()[:3]
            [1.0, 1.0, 1.0]
        """
        x = self._checked(images)
        if x.shape[1] == 3 and self.channels == 1:
            luma = x.new_tensor(BT601_LUMA).view(1, 3, 1, 1)
            x = (x * luma).sum(1, keepdim=True)
        x = self._resize(x)
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        lo, hi = self.pixel_range
        mean = x.new_tensor(self.mean).view(1, -1, 1, 1)
        std = x.new_tensor(self.std).view(1, -1, 1, 1)
        x = (x * (hi - lo) + (lo - mean)) / std
        return local_mean_subtract(x, self.local_mean, self.local_mean_padding).contiguous()

    def _checked(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise InputShapeError(f"InputSpec.apply expects a batch [B, C, H, W] of face crops, got {shape}.")
        c = images.shape[1]
        if c not in (1, 3):
            hint = " (RGBA: drop the alpha channel, images[:, :3])" if c == 4 else ""
            raise InputShapeError(f"face crops must have 1 (gray) or 3 (RGB) channels, got {c}{hint}.")
        if images.dtype == torch.uint8:
            return images.float().div_(255.0)
        x = images.float()
        if x.numel():
            lo, hi = torch.aminmax(x)
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise InputShapeError(
                    f"face crops must be floats in [0, 1], got values in [{float(lo):g}, {float(hi):g}]; divide "
                    "8-bit data by 255 and 16-bit data by 65535 (or pass uint8)."
                )
        return x

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        target = self.output_size((x.shape[2], x.shape[3]))
        scaled = target if self.crop_pct == 1.0 else tuple(_scaled_side(t, self.crop_pct) for t in target)
        if tuple(x.shape[2:]) != scaled:
            antialias = self.interpolation in ("bilinear", "bicubic")
            kwargs: dict[str, Any] = {"antialias": True, "align_corners": False} if antialias else {}
            x = F.interpolate(x, size=scaled, mode=self.interpolation, **kwargs)
        if scaled != target:
            top = int(round((scaled[0] - target[0]) / 2.0))
            left = int(round((scaled[1] - target[1]) / 2.0))
            x = x[:, :, top : top + target[0], left : left + target[1]]
        return x

    # ------------------------------------------------------------------ reporting
    def notes(self, data_shape: Sequence[int] | None = None) -> list[str]:
        """Human-readable notes on what :meth:`apply` does to data of ``data_shape``.

        Args:
            data_shape (sequence of int, optional): The data's ``(C, H, W)``, ``(B, C, H, W)``
                or ``(H, W)`` (gray). Default: None (only the spec's own remarks)

        Returns:
            list of str: the remarks made while building the spec, then channel conversion,
            resizing and cropping notes.

        Examples::

            >>> InputSpec(size=48, channels=3).notes((1, 96, 96))
            ['gray data repeated to 3 channels for an RGB model', 'resized 96x96 -> 48x48 (bilinear, antialiased)']
        """
        out = list(self.remarks)
        if data_shape is None:
            return out
        shape = tuple(int(s) for s in data_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) == 4:
            shape = shape[1:]
        if len(shape) != 3:
            raise InputShapeError(f"data_shape must be (C, H, W), (B, C, H, W) or (H, W), got {tuple(data_shape)}.")
        c, h, w = shape
        if c == 1 and self.channels == 3:
            out.append("gray data repeated to 3 channels for an RGB model")
        elif c == 3 and self.channels == 1:
            out.append("RGB data converted to gray by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B)")
        elif c not in (1, 3):
            out.append(f"data have {c} channels; only gray (1) and RGB (3) face crops can be used")
        target = self.output_size((h, w))
        if self.crop_pct < 1.0:
            scaled = tuple(_scaled_side(t, self.crop_pct) for t in target)
            out.append(
                f"resized {h}x{w} -> {scaled[0]}x{scaled[1]} ({self.interpolation}) and centre-cropped to "
                f"{target[0]}x{target[1]} (crop_pct {self.crop_pct:g}, as timm's eval transform)"
            )
        elif (h, w) != target:
            aa = ", antialiased" if self.interpolation in ("bilinear", "bicubic") else ""
            out.append(f"resized {h}x{w} -> {target[0]}x{target[1]} ({self.interpolation}{aa})")
        return out

    def describe(self) -> str:
        """One line summarising the spec and where its fields came from.

        Examples::

            >>> InputSpec(size=48, mean=0.5, std=0.5,
            ...           sources={"size": "--input-size", "mean": "--mean", "std": "--std"}).describe()
            '48x48 gray, pixels in [0,1], mean 0.5 std 0.5, bilinear; size from --input-size; mean from --mean; std from --std'
        """
        size = "data's size" if self.size is None else f"{self.size[0]}x{self.size[1]}"
        parts = [
            f"{size} {_CHANNEL_NAMES[self.channels]}",
            f"pixels in [{_fmt_num(self.pixel_range[0])},{_fmt_num(self.pixel_range[1])}]",
            f"mean {self._fmt_channels(self.mean)} std {self._fmt_channels(self.std)}",
        ]
        if self.local_mean:
            parts.append(f"{self.local_mean}x{self.local_mean} local mean ({'zero' if self.local_mean_padding == 'zeros' else 'replicate'} padding)")
        parts.append(self.interpolation)
        if self.crop_pct < 1.0:
            parts.append(f"crop_pct {self.crop_pct:g}")
        by_source: dict[str, list[str]] = {}
        for name, source in self.sources.items():
            if source != SOURCE_DEFAULT:
                by_source.setdefault(source, []).append(name)
        origin = "; ".join(f"{_and_list(names)} from {source}"
                           for source, names in by_source.items())  # fmt: skip
        return ", ".join(parts) + ("; " + origin if origin else "; all defaults")

    @staticmethod
    def _fmt_channels(values: tuple[float, ...]) -> str:
        return _fmt_num(values[0]) if len(set(values)) == 1 else ",".join(_fmt_num(v) for v in values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples) that :meth:`from_dict` reads back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else (dict(value) if isinstance(value, dict) else value)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "InputSpec":
        """Rebuild a spec written by :meth:`to_dict`.

        Raises:
            ConfigError: an unknown key (the message lists the known ones) or an invalid value.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"input spec has unknown keys {sorted(unknown)}; known keys are {', '.join(sorted(known))}.")
        kwargs = dict(d)
        for name in ("pixel_range", "mean", "std", "remarks"):
            if name in kwargs and kwargs[name] is not None:
                kwargs[name] = tuple(kwargs[name])
        if kwargs.get("size") is not None:
            kwargs["size"] = tuple(kwargs["size"])
        return cls(**kwargs)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_zerobias_config(cls, cfg: Mapping[str, Any]) -> "InputSpec":
        """The zero-bias CNN's reference preprocessing (:func:`captum_fau.inputs.sources.zerobias_spec`)."""
        from captum_fau.inputs.sources import zerobias_spec

        return zerobias_spec(cfg)

    @classmethod
    def from_timm_cfg(cls, pretrained_cfg: Mapping[str, Any], in_chans: int | None = None) -> "InputSpec":
        """A spec from timm's ``pretrained_cfg`` (:func:`captum_fau.inputs.sources.timm_spec`)."""
        from captum_fau.inputs.sources import timm_spec

        return timm_spec(pretrained_cfg, in_chans)

    @classmethod
    def from_preprocessor_config(cls, config: Mapping[str, Any]) -> "InputSpec":
        """A spec from ``preprocessor_config.json`` (:func:`captum_fau.inputs.sources.preprocessor_spec`)."""
        from captum_fau.inputs.sources import preprocessor_spec

        return preprocessor_spec(config)

    @classmethod
    def resolve(cls, explicit: "Mapping[str, Any] | InputSpec | None" = None, discovered: "InputSpec | None" = None,
                **kwargs: Any) -> "InputSpec":
        """Merge the spec's sources: explicit > discovered > (probe) > defaults
        (:func:`captum_fau.inputs.resolve.merge_spec`, which takes the same arguments)."""
        from captum_fau.inputs.resolve import merge_spec

        return merge_spec(explicit, discovered, **kwargs)

    def with_changes(self, source: str, **changes: Any) -> "InputSpec":
        """A copy with ``changes`` applied and their :attr:`sources` set to ``source``.

        Examples::

            >>> InputSpec().with_changes("probe", size=64).sources["size"]
            'probe'
        """
        sources = {**self.sources, **{name: source for name in changes}}
        return replace(self, **changes, sources=sources)


def _normalised_default(name: str, default: Any, channels: int) -> Any:
    """A default as ``__post_init__`` stores it (mean/std repeated per channel)."""
    return tuple(default) * channels if name in ("mean", "std") else default


def _scaled_side(side: int, crop_pct: float) -> int:
    """timm's ``floor(side / crop_pct)``, tolerant of the rounding in ``crop / resize`` fractions."""
    return math.floor(side / crop_pct + 1e-6)


__all__ = [
    "BT601_LUMA",
    "CLI_FLAGS",
    "INTERPOLATIONS",
    "LOCAL_MEAN_PADDINGS",
    "SOURCE_DATA",
    "SOURCE_DEFAULT",
    "SOURCE_EXPLICIT",
    "SOURCE_HF",
    "SOURCE_PROBE",
    "SOURCE_TIMM",
    "SOURCE_ZEROBIAS",
    "InputSpec",
    "local_mean_subtract",
    "parse_pixel_range",
    "parse_size",
]
