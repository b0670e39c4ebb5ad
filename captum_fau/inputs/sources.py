"""What a model declares about its input, first found wins (:func:`discover_input_spec`), and what a loaded
model carries (:func:`declared_input_spec`): the spec a Hub folder attached, its ``config``, its timm
``pretrained_cfg``, else the channel count of its first convolution.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from captum_fau.errors import ConfigError
from captum_fau.inputs.spec import InputSpec

#: Source name of a channel count read from the model's first convolution.
SOURCE_FIRST_CONV = "first convolution"
#: Attribute :func:`captum_fau.zoo.resolve.load_model_spec` sets on a model loaded from a Hub folder: the spec
#: its files declare (``config.json``'s ``pretrained_cfg``, ``preprocessor_config.json``), or None.
INPUT_SPEC_ATTR = "captum_fau_input_spec"


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
    its ``pretrained_cfg``, or a ``model.config`` with ``fc4_init``), then ``folder``'s
    ``preprocessor_config.json`` (written for this model, so it wins over timm's architecture
    defaults), then timm's ``pretrained_cfg`` (given, or ``config["pretrained_cfg"]``).

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
    # The folder's own preprocessor_config.json describes this model's training; a timm pretrained_cfg may be
    # only the architecture's ImageNet defaults (224x224), so the folder's file wins.
    if folder is not None:
        path = Path(folder) / "preprocessor_config.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise ConfigError(
                    f"{path} is not readable JSON ({err}); fix it, or pass --input-size/--mean/--std."
                ) from None
            return InputSpec.from_preprocessor_config(data)
    timm_cfg = pretrained_cfg
    if timm_cfg is None and isinstance(config, Mapping) and isinstance(config.get("pretrained_cfg"), Mapping):
        timm_cfg = config["pretrained_cfg"]
    if isinstance(timm_cfg, Mapping) and timm_cfg.get("input_size") is not None:
        return InputSpec.from_timm_cfg(timm_cfg, in_chans=_first_conv_channels(model, timm_cfg))
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


__all__ = [
    "INPUT_SPEC_ATTR",
    "SOURCE_FIRST_CONV",
    "declared_input_spec",
    "discover_input_spec",
]
