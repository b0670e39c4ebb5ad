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
(:func:`captum_fau.inputs.probe.probe_input`), defaults. :meth:`InputSpec.resolve` merges
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

import numbers
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from captum_fau.errors import ConfigError, InputShapeError
from captum_fau.inputs.fields import (  # the field constants are part of this module's names
    _CHANNEL_NAMES,
    _DEFAULTS,
    BT601_LUMA,
    CLI_FLAGS,
    INTERPOLATIONS,
    LOCAL_MEAN_PADDINGS,
    SOURCE_DATA,
    SOURCE_DEFAULT,
    SOURCE_EXPLICIT,
    SOURCE_HF,
    SOURCE_PROBE,
    SOURCE_TIMM,
    SOURCE_ZEROBIAS,
    _and_list,
    _as_floats,
    _check_channel_fit,
    _data_channels,
    _fmt_num,
    _fmt_value,
    _normalise_explicit,
    _normalised_default,
    _scaled_side,
    local_mean_subtract,
    parse_pixel_range,
    parse_size,
)
from captum_fau.inputs.readers import preprocessor_fields, timm_fields, zerobias_fields

if TYPE_CHECKING:
    from torch import nn


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
        if margin is not None and (
            isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 2
        ):
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
            given = {
                n: SOURCE_EXPLICIT
                for n, d in _DEFAULTS.items()
                if getattr(self, n) != _normalised_default(n, d, self.channels)
            }
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
            parts.append(
                f"{self.local_mean}x{self.local_mean} local mean ({'zero' if self.local_mean_padding == 'zeros' else 'replicate'} padding)"
            )
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
            out[f.name] = (
                list(value) if isinstance(value, tuple) else (dict(value) if isinstance(value, dict) else value)
            )
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
            raise ConfigError(
                f"input spec has unknown keys {sorted(unknown)}; known keys are {', '.join(sorted(known))}."
            )
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
        """The zero-bias CNN's reference preprocessing: ``x / 255 * 2`` then a 5x5 local mean.

        Args:
            cfg (Mapping): ``model.config`` of a :class:`~captum_fau.ZeroBiasCNN` or the
                ``config.json`` of its Hub folder: ``img_size`` and ``in_chans`` at top level,
                under ``model_args``, or as ``pretrained_cfg["input_size"]``. Optional keys
                ``local_mean`` (box size) and ``local_mean_padding`` override the reference's
                5 and ``"zeros"``.

        Returns:
            InputSpec: ``img_size`` square, ``in_chans`` channels, pixel range ``(0, 2)``,
            mean 0, std 1, the local mean; sources ``"zero-bias config"``.

        Examples::

            >>> spec = InputSpec.from_zerobias_config({"img_size": 48, "in_chans": 1})
            >>> spec.size, spec.pixel_range, spec.local_mean
            ((48, 48), (0.0, 2.0), 5)
        """
        return cls(**zerobias_fields(cfg))

    @classmethod
    def from_timm_cfg(cls, pretrained_cfg: Mapping[str, Any], in_chans: int | None = None) -> "InputSpec":
        """A spec from timm's ``pretrained_cfg`` (``model.pretrained_cfg`` or ``config.json``'s).

        Reads ``input_size`` ``(C, H, W)``, ``mean``, ``std``, ``interpolation`` and
        ``crop_pct``; pixels are in ``[0, 1]`` before normalisation, as timm's transforms make them.

        Args:
            pretrained_cfg (Mapping): The config.
            in_chans (int, optional): The channels the model really takes. timm keeps the
                pretrained ``input_size`` (3 channels) for ``create_model(..., in_chans=1)``;
                given 1 there, the spec is gray with the channel means of ``mean`` and ``std``
                (timm sums the RGB filters of the first conv), and a remark says so.
                :func:`discover_input_spec` reads it from the model's ``first_conv``.

        Raises:
            ConfigError: not a mapping, or with no ``input_size``.

        Examples::

            >>> cfg = {"input_size": (3, 224, 224), "mean": (0.485, 0.456, 0.406),
            ...        "std": (0.229, 0.224, 0.225), "interpolation": "bicubic", "crop_pct": 0.95}
            >>> InputSpec.from_timm_cfg(cfg).describe()
            '224x224 RGB, pixels in [0,1], mean 0.485,0.456,0.406 std 0.229,0.224,0.225, bicubic, crop_pct 0.95; size, channels, pixel_range, mean, std, interpolation and crop_pct from timm pretrained_cfg'
        """
        return cls(**timm_fields(pretrained_cfg, in_chans))

    @classmethod
    def from_preprocessor_config(cls, config: Mapping[str, Any]) -> "InputSpec":
        """A spec from a Hugging Face image processor's ``preprocessor_config.json``.

        Reads ``size`` (an int, ``{"height", "width"}`` or ``{"shortest_edge"}``), a centre
        crop (``do_center_crop`` + ``crop_size``, or ConvNeXt's ``crop_pct``), ``do_rescale`` +
        ``rescale_factor`` (pixels 0..255 times the factor: ``1/255`` gives ``[0, 1]``),
        ``do_normalize`` + ``image_mean`` / ``image_std``, and ``resample`` (PIL codes: 0
        nearest, 2 bilinear, 3 bicubic, 4 box = area; 1 lanczos and 5 hamming are approximated,
        with a remark).

        Raises:
            ConfigError: not a mapping, no usable ``size``, or an unknown ``resample`` code.

        Examples::

            >>> cfg = {"do_normalize": True, "do_rescale": True, "image_mean": [0.5, 0.5, 0.5],
            ...        "image_std": [0.5, 0.5, 0.5], "resample": 2, "rescale_factor": 1 / 255,
            ...        "size": {"height": 224, "width": 224}}
            >>> spec = InputSpec.from_preprocessor_config(cfg)
            >>> spec.size, spec.channels, spec.pixel_range, spec.mean
            ((224, 224), 3, (0.0, 1.0), (0.5, 0.5, 0.5))
        """
        return cls(**preprocessor_fields(config))

    @classmethod
    def resolve(
        cls,
        explicit: "Mapping[str, Any] | InputSpec | None" = None,
        discovered: "InputSpec | None" = None,
        *,
        explicit_sources: Mapping[str, str] | None = None,
        model: "nn.Module | None" = None,
        data_shape: Sequence[int] | None = None,
        candidates: Sequence[int] | None = None,
    ) -> "InputSpec":
        """Merge the spec's sources: explicit > discovered > (probe) > defaults.

        Args:
            explicit (Mapping or InputSpec, optional): Field name -> value given by the user (CLI
                flags or Python arguments); ``None`` values count as not given. Values may be CLI
                strings (``"48x48"``, ``"0.5,0.5,0.5"``, ``"0-1"``). An :class:`InputSpec` (Python
                ``input_spec=``) contributes the fields whose source is not ``"default"``.
            discovered (InputSpec, optional): What the model declares (zero-bias config, timm
                ``pretrained_cfg``, ``preprocessor_config.json``); its ``"default"`` fields count
                as not declared.
            explicit_sources (Mapping, optional): Field name -> how the user gave it, e.g.
                ``{"size": "--input-size"}``; unlisted explicit fields are ``"explicit"``.
            model (nn.Module, optional): When given and no size is known, the model is probed
                with :func:`captum_fau.inputs.probe.probe_input`. Default: None (no probe)
            data_shape (sequence of int, optional): The data's ``(C, H, W)`` (or ``(H, W)``):
                the default channel count and the probe's first size.
            candidates (sequence of int, optional): Sizes the probe tries after the data's.

        Returns:
            InputSpec: with :attr:`sources` for every field and a remark for every explicit
            value that overrides a different discovered one
            (``"--mean 0.5 overrides 0.485,0.456,0.406 from timm pretrained_cfg"``).

        Raises:
            ConfigError: unknown explicit keys, an invalid merged spec (e.g. ``--channels 1``
                against a discovered 3-channel mean, with the fix), or a failed probe.

        Examples::

            >>> timm_spec = InputSpec.from_timm_cfg({"input_size": (3, 224, 224),
            ...                                      "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)})
            >>> spec = InputSpec.resolve({"mean": 0.5, "std": 0.5}, timm_spec,
            ...                          explicit_sources={"mean": "--mean", "std": "--std"})
            >>> spec.mean, spec.remarks[0]
            ((0.5, 0.5, 0.5), '--mean 0.5 overrides 0.485,0.456,0.406 from timm pretrained_cfg')
        """
        if isinstance(explicit, InputSpec):
            set_fields = [n for n, src in explicit.sources.items() if src != SOURCE_DEFAULT]
            explicit_sources = {**{n: explicit.sources[n] for n in set_fields}, **dict(explicit_sources or {})}
            explicit = {n: getattr(explicit, n) for n in set_fields}
        given = {k: v for k, v in dict(explicit or {}).items() if v is not None}
        unknown = set(given) - set(_DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown input spec fields {sorted(unknown)}; known fields are {', '.join(_DEFAULTS)}.")
        labels = {name: str((explicit_sources or {}).get(name, SOURCE_EXPLICIT)) for name in given}
        given = _normalise_explicit(given)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        remarks: list[str] = list(discovered.remarks) if discovered is not None else []
        for name, default in _DEFAULTS.items():
            found = discovered is not None and discovered.sources.get(name, SOURCE_DEFAULT) != SOURCE_DEFAULT
            if name in given:
                values[name], sources[name] = given[name], labels[name]
            elif found:
                values[name], sources[name] = getattr(discovered, name), discovered.sources[name]
            else:
                values[name], sources[name] = default, SOURCE_DEFAULT
        data_c = _data_channels(data_shape)
        if sources["channels"] == SOURCE_DEFAULT and data_c in (1, 3):
            values["channels"], sources["channels"] = data_c, SOURCE_DATA
        if values["size"] is None and model is not None:
            from captum_fau.inputs.probe import probe_into

            remarks.append(probe_into(values, sources, model, data_shape, candidates))
        if discovered is not None:
            remarks.extend(_override_notes(given, labels, discovered))
        _check_channel_fit(values, sources)
        return cls(**values, sources=sources, remarks=tuple(remarks))

    def with_changes(self, source: str, **changes: Any) -> "InputSpec":
        """A copy with ``changes`` applied and their :attr:`sources` set to ``source``.

        Examples::

            >>> InputSpec().with_changes("probe", size=64).sources["size"]
            'probe'
        """
        sources = {**self.sources, **{name: source for name in changes}}
        return replace(self, **changes, sources=sources)


def _override_notes(given: Mapping[str, Any], labels: Mapping[str, str], discovered: InputSpec) -> list[str]:
    notes = []
    probe = InputSpec(channels=discovered.channels)
    for name, value in given.items():
        source = discovered.sources.get(name, SOURCE_DEFAULT)
        if source == SOURCE_DEFAULT:
            continue
        old = getattr(discovered, name)
        if name in ("mean", "std"):
            try:
                new = getattr(replace(probe, **{name: value}), name)
            except ConfigError:
                new = value
        else:
            new = value
        if new != old:
            label = labels[name] if labels[name] != SOURCE_EXPLICIT else f"explicit {name}"
            shown = _fmt_value(name, _as_floats(name, value) if name in ("mean", "std") else value)
            notes.append(f"{label} {shown} overrides {_fmt_value(name, old)} from {source}")
    return notes


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
