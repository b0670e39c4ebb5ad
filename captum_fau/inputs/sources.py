"""Where a model's :class:`~captum_fau.inputs.spec.InputSpec` is read from, first found wins.

The zero-bias CNN's config (``x / 255 * 2`` then a 5x5 local mean), timm's ``pretrained_cfg``,
a Hugging Face image processor's ``preprocessor_config.json``, and (:func:`declared_input_spec`)
what a loaded model carries: the spec a Hub folder attached, its ``config``, its timm
``pretrained_cfg``, else the channel count of its first convolution.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from captum_fau.errors import ConfigError
from captum_fau.inputs.spec import (
    _DEFAULTS,
    INTERPOLATIONS,
    SOURCE_HF,
    SOURCE_TIMM,
    SOURCE_ZEROBIAS,
    InputSpec,
    _as_floats,
    parse_size,
)

#: Source name of a channel count read from the model's first convolution.
SOURCE_FIRST_CONV = "first convolution"
#: Attribute :func:`captum_fau.zoo.resolve.load_model_spec` sets on a model loaded from a Hub folder: the spec
#: its files declare (``config.json``'s ``pretrained_cfg``, ``preprocessor_config.json``), or None.
INPUT_SPEC_ATTR = "captum_fau_input_spec"

#: PIL resampling codes (``PIL.Image.Resampling``) -> (interpolation, remark when approximated).
_PIL_RESAMPLE: dict[int, tuple[str, str | None]] = {
    0: ("nearest", None),
    1: ("bicubic", "resample 1 (LANCZOS) is approximated by bicubic"),
    2: ("bilinear", None),
    3: ("bicubic", None),
    4: ("area", None),
    5: ("bilinear", "resample 5 (HAMMING) is approximated by bilinear"),
}


def zerobias_spec(cfg: Mapping[str, Any]) -> InputSpec:
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
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"the zero-bias config must be a mapping (model.config or config.json), got {type(cfg).__name__}.")
    args = {**(cfg.get("pretrained_cfg") or {}), **(cfg.get("model_args") or {}), **cfg}
    if "img_size" in args:
        size = parse_size(args["img_size"])
    elif "input_size" in args:
        size = parse_size(args["input_size"])
    else:
        size = (96, 96)
    if "in_chans" in args:
        channels = args["in_chans"]
    elif "input_size" in args and len(args["input_size"]) == 3:
        channels = args["input_size"][0]
    else:
        channels = 1
    read = ("size", "channels", "pixel_range", "mean", "std", "local_mean")
    extra = {k: args[k] for k in ("local_mean", "local_mean_padding") if k in args}
    return InputSpec(
        size=size,
        channels=int(channels),
        pixel_range=(0.0, 2.0),
        local_mean=int(extra.get("local_mean", 5)),
        local_mean_padding=str(extra.get("local_mean_padding", "zeros")),
        sources={name: SOURCE_ZEROBIAS for name in (*read, *(("local_mean_padding",) if extra else ()))},
    )

def timm_spec(pretrained_cfg: Mapping[str, Any], in_chans: int | None = None) -> InputSpec:
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
        '224x224 RGB, pixels in [0,1], mean 0.485,0.456,0.406 std 0.229,0.224,0.225, bicubic, crop_pct 0.95; size, channels, mean, std, interpolation and crop_pct from timm pretrained_cfg'
    """
    if not isinstance(pretrained_cfg, Mapping) or "input_size" not in pretrained_cfg:
        raise ConfigError(
            "a timm pretrained_cfg must be a mapping with 'input_size' (C, H, W); pass --input-size and "
            "--channels for a model without one."
        )
    input_size = tuple(pretrained_cfg["input_size"])
    if len(input_size) != 3:
        raise ConfigError(f"timm pretrained_cfg input_size must be (C, H, W), got {input_size}.")
    kwargs: dict[str, Any] = {"size": input_size[1:], "channels": int(input_size[0])}
    for key in ("mean", "std", "interpolation", "crop_pct"):
        if pretrained_cfg.get(key) is not None:
            kwargs[key] = pretrained_cfg[key]
    remarks: tuple[str, ...] = ()
    if in_chans is not None and int(in_chans) != kwargs["channels"]:
        kwargs["channels"] = int(in_chans)
        for key in ("mean", "std"):
            values = _as_floats(key, kwargs.get(key, _DEFAULTS[key]))
            if len(values) != kwargs["channels"]:
                kwargs[key] = (sum(values) / len(values),)
        remarks = (
            f"the model takes {in_chans} channel(s) where its timm pretrained_cfg says {input_size[0]}; "
            "mean and std are averaged over the pretrained channels",
        )
    return InputSpec(**kwargs, sources={name: SOURCE_TIMM for name in kwargs}, remarks=remarks)

def preprocessor_spec(config: Mapping[str, Any]) -> InputSpec:
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
    if not isinstance(config, Mapping):
        raise ConfigError(f"preprocessor_config.json must hold a JSON object, got {type(config).__name__}.")
    kwargs: dict[str, Any] = {}
    remarks: list[str] = []
    size, crop_pct = _hf_size(config)
    kwargs["size"] = size
    if crop_pct is not None:
        kwargs["crop_pct"] = crop_pct
    if config.get("do_rescale", True):
        factor = float(config.get("rescale_factor", 1 / 255))
        # EfficientNet's processor subtracts 1 after rescaling when rescale_offset is set.
        offset = 1.0 if config.get("rescale_offset") else 0.0
        kwargs["pixel_range"] = (0.0 - offset, 255.0 * factor - offset)
    else:
        kwargs["pixel_range"] = (0.0, 255.0)
    if config.get("do_normalize", True) and config.get("image_mean") is not None:
        kwargs["mean"] = config["image_mean"]
        kwargs["std"] = config.get("image_std", 1.0)
    mean_len = len(_as_floats("image_mean", config["image_mean"])) if config.get("image_mean") is not None else 0
    kwargs["channels"] = 1 if mean_len == 1 and not config.get("do_convert_rgb") else 3
    if "resample" in config:
        code = config["resample"]
        if isinstance(code, bool) or not isinstance(code, int) or code not in _PIL_RESAMPLE:
            raise ConfigError(
                f"preprocessor_config.json resample {code!r} is not a PIL resampling code (0..5); pass "
                f"--interpolation ({', '.join(INTERPOLATIONS)})."
            )
        kwargs["interpolation"], remark = _PIL_RESAMPLE[code]
        if remark:
            remarks.append(remark)
    return InputSpec(**kwargs, sources={name: SOURCE_HF for name in kwargs}, remarks=tuple(remarks))


def _is_zerobias(cfg: Mapping[str, Any] | None) -> bool:
    if not isinstance(cfg, Mapping):
        return False
    nested = cfg.get("pretrained_cfg") if isinstance(cfg.get("pretrained_cfg"), Mapping) else {}
    return "zerobias_cnn" in (cfg.get("architecture"), nested.get("architecture")) or "fc4_init" in cfg


def discover_input_spec(
    *,
    config: Mapping[str, Any] | None = None,
    pretrained_cfg: Mapping[str, Any] | None = None,
    folder: str | os.PathLike[str] | None = None,
    model: "nn.Module | None" = None,
) -> InputSpec | None:
    """What a model declares about its input, from the first source that has it.

    Order: the zero-bias CNN's config (``architecture == "zerobias_cnn"`` at top level or in
    its ``pretrained_cfg``, or a ``model.config`` with ``fc4_init``), timm's
    ``pretrained_cfg`` (given, or ``config["pretrained_cfg"]``), then ``folder``'s
    ``preprocessor_config.json``.

    Args:
        config (Mapping, optional): ``model.config`` or a Hub folder's ``config.json``.
        pretrained_cfg (Mapping, optional): ``model.pretrained_cfg`` of a timm model.
        folder (str or Path, optional): A Hub folder that may hold ``preprocessor_config.json``.
        model (nn.Module, optional): The model; the ``in_channels`` of the module its timm
            ``pretrained_cfg["first_conv"]`` names override the config's channel count.

    Returns:
        InputSpec or None: ``None`` when no source declares anything (then probe the model).

    Raises:
        ConfigError: ``preprocessor_config.json`` is not valid JSON, or a source is malformed.

    Examples::

        >>> discover_input_spec(config={"architecture": "zerobias_cnn", "img_size": 96}).local_mean
        5
        >>> discover_input_spec(config={"hidden_size": 8}) is None
        True
    """
    if _is_zerobias(config) or _is_zerobias(pretrained_cfg):
        return InputSpec.from_zerobias_config(config if _is_zerobias(config) else pretrained_cfg)  # type: ignore[arg-type]
    timm_cfg = pretrained_cfg
    if timm_cfg is None and isinstance(config, Mapping) and isinstance(config.get("pretrained_cfg"), Mapping):
        timm_cfg = config["pretrained_cfg"]
    if isinstance(timm_cfg, Mapping) and timm_cfg.get("input_size") is not None:
        return InputSpec.from_timm_cfg(timm_cfg, in_chans=_first_conv_channels(model, timm_cfg))
    if folder is not None:
        path = Path(folder) / "preprocessor_config.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise ConfigError(f"{path} is not readable JSON ({err}); fix it, or pass --input-size/--mean/--std.") from None
            return InputSpec.from_preprocessor_config(data)
    return None


def declared_input_spec(model: nn.Module, *, with_conv: bool = True) -> InputSpec | None:
    """What ``model`` declares about its input, before any explicit argument or probe.

    Read, first found: the spec :func:`load_model_spec` attached for a Hub folder (or for the
    ``preprocessor_config.json`` beside a ``module:factory`` checkpoint); the
    zero-bias CNN's ``config`` (with the local-mean padding it records); timm's
    ``pretrained_cfg``; otherwise only the channel count of the first ``Conv2d``.

    Args:
        model (nn.Module): The model.
        with_conv (bool, optional): Fall back on the first ``Conv2d``'s channels. Default: True

    Returns:
        InputSpec or None: ``None`` when nothing at all is declared.

    Examples::

        >>> from captum_fau import ZeroBiasCNN
        >>> declared_input_spec(ZeroBiasCNN(img_size=48)).size
        (48, 48)
        >>> declared_input_spec(nn.Sequential(nn.Conv2d(3, 4, 3))).describe()
        "data's size RGB, pixels in [0,1], mean 0 std 1, bilinear; channels from first convolution"
    """
    attached = getattr(model, INPUT_SPEC_ATTR, None)
    if isinstance(attached, InputSpec):
        return attached
    config = getattr(model, "config", None)
    pretrained = getattr(model, "pretrained_cfg", None)
    spec = discover_input_spec(
        config=config if isinstance(config, Mapping) else None,
        pretrained_cfg=pretrained if isinstance(pretrained, Mapping) else None,
        model=model,
    )
    if spec is not None or not with_conv:
        return spec
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels in (1, 3):
            return InputSpec(channels=module.in_channels, sources={"channels": SOURCE_FIRST_CONV})
        if isinstance(module, nn.Conv2d):
            break
    return None


def _first_conv_channels(model: "nn.Module | None", pretrained_cfg: Mapping[str, Any]) -> int | None:
    name = pretrained_cfg.get("first_conv")
    if model is None or not isinstance(name, str):
        return None
    try:
        channels = getattr(model.get_submodule(name), "in_channels", None)
    except AttributeError:  # the config names a module this model does not have
        return None
    return int(channels) if isinstance(channels, int) else None


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




__all__ = [
    "INPUT_SPEC_ATTR",
    "SOURCE_FIRST_CONV",
    "declared_input_spec",
    "discover_input_spec",
    "preprocessor_spec",
    "timm_spec",
    "zerobias_spec",
]
