"""Readers of what a model declares about its input: the zero-bias CNN's config, timm's ``pretrained_cfg``,
a Hugging Face ``preprocessor_config.json``. Each returns the fields of an
:class:`~captum_fau.inputs.spec.InputSpec` (built by its ``from_*`` constructors), with their sources.
"""

from __future__ import annotations

from typing import Any, Mapping

from captum_fau.errors import ConfigError
from captum_fau.inputs.fields import (
    _DEFAULTS,
    _PIL_RESAMPLE,
    INTERPOLATIONS,
    SOURCE_HF,
    SOURCE_TIMM,
    SOURCE_ZEROBIAS,
    _as_floats,
    _hf_size,
    parse_size,
)


def zerobias_fields(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~captum_fau.inputs.spec.InputSpec` fields of :meth:`InputSpec.from_zerobias_config`."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(
            f"the zero-bias config must be a mapping (model.config or config.json), got {type(cfg).__name__}."
        )
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
    return dict(
        size=size,
        channels=int(channels),
        pixel_range=(0.0, 2.0),
        local_mean=int(extra.get("local_mean", 5)),
        local_mean_padding=str(extra.get("local_mean_padding", "zeros")),
        sources={name: SOURCE_ZEROBIAS for name in (*read, *(("local_mean_padding",) if extra else ()))},
    )


def timm_fields(pretrained_cfg: Mapping[str, Any], in_chans: int | None = None) -> dict[str, Any]:
    """The :class:`~captum_fau.inputs.spec.InputSpec` fields of :meth:`InputSpec.from_timm_cfg`."""
    if not isinstance(pretrained_cfg, Mapping) or "input_size" not in pretrained_cfg:
        raise ConfigError(
            "a timm pretrained_cfg must be a mapping with 'input_size' (C, H, W); pass --input-size and "
            "--channels for a model without one."
        )
    input_size = tuple(pretrained_cfg["input_size"])
    if len(input_size) != 3:
        raise ConfigError(f"timm pretrained_cfg input_size must be (C, H, W), got {input_size}.")
    # timm's eval transform takes [0, 1] tensors (ToTensor) before its mean/std: the range is declared with them.
    kwargs: dict[str, Any] = {"size": input_size[1:], "channels": int(input_size[0]), "pixel_range": (0.0, 1.0)}
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
    return dict(**kwargs, sources={name: SOURCE_TIMM for name in kwargs}, remarks=remarks)


def preprocessor_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~captum_fau.inputs.spec.InputSpec` fields of :meth:`InputSpec.from_preprocessor_config`."""
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
    elif not config.get("do_normalize", True):  # declared: no normalisation at all
        kwargs["mean"], kwargs["std"] = 0.0, 1.0
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
    return dict(**kwargs, sources={name: SOURCE_HF for name in kwargs}, remarks=tuple(remarks))


__all__ = ["preprocessor_fields", "timm_fields", "zerobias_fields"]
