"""The fields of an :class:`~captum_fau.inputs.spec.InputSpec`: names, defaults, where each came from, the
command-line flags, and the parsing and formatting of their values (shared by the spec, its readers and
the merge of its sources).

Examples::

    >>> parse_size("48x64"), parse_pixel_range("0-255")
    ((48, 64), (0.0, 255.0))
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

import torch

from captum_fau.errors import ConfigError

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

#: PIL resampling codes (``PIL.Image.Resampling``) -> (interpolation, remark when approximated).
_PIL_RESAMPLE: dict[int, tuple[str, str | None]] = {
    0: ("nearest", None),
    1: ("bicubic", "resample 1 (LANCZOS) is approximated by bicubic"),
    2: ("bilinear", None),
    3: ("bicubic", None),
    4: ("area", None),
    5: ("bilinear", "resample 5 (HAMMING) is approximated by bilinear"),
}
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
        raise ConfigError(
            f"{name} must be finite numbers, one per channel (e.g. 0.5 or 0.485,0.456,0.406); got {value!r}."
        )
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


def _normalised_default(name: str, default: Any, channels: int) -> Any:
    """A default as ``__post_init__`` stores it (mean/std repeated per channel)."""
    return tuple(default) * channels if name in ("mean", "std") else default


def _scaled_side(side: int, crop_pct: float) -> int:
    """timm's ``floor(side / crop_pct)``, tolerant of the rounding in ``crop / resize`` fractions."""
    return math.floor(side / crop_pct + 1e-6)


def _normalise_explicit(given: dict[str, Any]) -> dict[str, Any]:
    """Explicit values (CLI strings or Python values) as the dataclass stores them, so that
    overrides compare like with like."""
    parsers = {"size": parse_size, "pixel_range": parse_pixel_range}
    out = {k: parsers[k](v) if k in parsers else v for k, v in given.items()}
    for key, value in out.items():
        if not isinstance(value, str):
            continue
        if key in ("interpolation", "local_mean_padding"):
            out[key] = value.strip().lower()
        elif key in ("channels", "local_mean"):
            out[key] = _parse_int(key, value)
        elif key in ("crop_pct", "face_margin"):
            out[key] = _as_floats(key, value)[0]
    return out


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}.") from None


def _data_channels(data_shape: Sequence[int] | None) -> int | None:
    if data_shape is None:
        return None
    shape = tuple(data_shape)
    return 1 if len(shape) == 2 else int(shape[-3])


def _check_channel_fit(values: dict[str, Any], sources: Mapping[str, str]) -> None:
    channels = int(values["channels"])
    for name in ("mean", "std"):
        v = _as_floats(name, values[name])
        if len(v) not in (1, channels):
            raise ConfigError(
                f"{name} {_fmt_value(name, v)} from {sources[name]} has {len(v)} values but channels is {channels} "
                f"(from {sources['channels']}); pass --{name} with {channels} value(s) as well."
            )


def _hf_size(config: Mapping[str, Any]) -> tuple[tuple[int, int], float | None]:
    """``(size, crop_pct)`` from an image processor's ``size`` / ``crop_size`` / ``crop_pct``."""
    raw = config.get("size")
    if isinstance(raw, Mapping):
        if "height" in raw and "width" in raw:
            resized = (int(raw["height"]), int(raw["width"]))
        elif "shortest_edge" in raw:
            # Face crops are square, so the shortest edge is the side.
            resized = (int(raw["shortest_edge"]),) * 2
        else:
            raise ConfigError(
                f"preprocessor_config.json size {dict(raw)} has neither height/width nor shortest_edge; "
                "pass --input-size."
            )
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        resized = (int(raw), int(raw))
    else:
        raise ConfigError(f"preprocessor_config.json has no usable size (got {raw!r}); pass --input-size.")
    if config.get("crop_pct") is not None:  # ConvNeXt: resize to size / crop_pct, crop to size
        return resized, float(config["crop_pct"])
    crop = config.get("crop_size")
    if config.get("do_center_crop") and crop is not None:
        side = (crop["height"], crop["width"]) if isinstance(crop, Mapping) else crop
        final = parse_size(side) or resized
        return final, min(1.0, final[0] / resized[0])
    return resized, None


#: Fields whose guess changes what the model computes on; each is reported when no one declared it.
CHECKED_FIELDS: tuple[str, ...] = ("size", "channels", "pixel_range", "mean", "std")
#: Sources that are guesses, not declarations: a probe forward, the library's default, the data's channels.
GUESSED_SOURCES: dict[str, str] = {SOURCE_PROBE: "probe", SOURCE_DEFAULT: "default", SOURCE_DATA: "the data's"}


def unverified_fields(values: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The fields of :data:`CHECKED_FIELDS` that a probe, a default or the data supplied: nothing the model
    declared and no one gave, so the run may be on the wrong preprocessing.

    Args:
        values (Mapping): Field -> value (an :class:`InputSpec`'s ``to_dict()``).
        sources (Mapping, optional): Field -> where the value came from. Default: ``values["sources"]``
            (``to_dict()`` holds them)

    Returns:
        dict: field -> ``{"value", "source", "flag", "python"}``, in :data:`CHECKED_FIELDS` order; the
        flag and the Python argument set it.

    Examples::

        >>> out = unverified_fields({"size": (64, 64), "mean": (0.0,)}, {"size": "probe", "mean": "default"})
        >>> out["size"]
        {'value': '64x64', 'source': 'probe', 'flag': '--input-size', 'python': "input_spec={'size': ...}"}
    """
    out = {}
    sources = values.get("sources") or {} if sources is None else sources
    for name in CHECKED_FIELDS:
        source = str(sources.get(name, SOURCE_DEFAULT))
        if source in GUESSED_SOURCES and name in values:
            value = values[name]
            value = tuple(value) if isinstance(value, list) else value
            out[name] = {"value": _fmt_value(name, value), "source": GUESSED_SOURCES[source],
                         "flag": CLI_FLAGS[name], "python": f"input_spec={{'{name}': ...}}"}  # fmt: skip
    return out


def unverified_note(unverified: Mapping[str, Mapping[str, str]]) -> str | None:
    """One sentence naming every unverified field (:func:`unverified_fields`) and how to set it; None when none.

    Examples::

        >>> unverified_note(unverified_fields({"size": (64, 64)}, {"size": "probe"}))[:78]
        'UNVERIFIED input: size 64x64 (probe) was not declared by the model nor given; '
    """
    if not unverified:
        return None
    named = ", ".join(f"{name.replace('_', ' ')} {f['value']} ({f['source']})" for name, f in unverified.items())
    verb = "was" if len(unverified) == 1 else "were"
    flags = ", ".join(f["flag"] for f in unverified.values())
    python = ", ".join(f"'{name}': ..." for name in unverified)
    return (
        f"UNVERIFIED input: {named} {verb} not declared by the model nor given; if the model was trained on "
        f"other inputs, every result here is computed on the wrong preprocessing. Set them with {flags} "
        f"(Python: input_spec={{{python}}})"
    )


__all__ = [
    "BT601_LUMA",
    "CHECKED_FIELDS",
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
    "local_mean_subtract",
    "parse_pixel_range",
    "parse_size",
    "unverified_fields",
    "unverified_note",
]
