"""Registration of :class:`ZeroBiasCNN` with timm.

Importing this module (``import captum_fau`` does) makes
``timm.create_model("zerobias_cnn", num_classes=8)`` work, and lets timm load
Hub folders written by :meth:`ZeroBiasCNN.save_pretrained` through
``timm.create_model("hf-hub:ORG/NAME")`` or ``"local-dir:PATH"``.
"""

from __future__ import annotations

import inspect
from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from captum_fau.models.zerobias import CONSTRUCTOR_ARGS, ZeroBiasCNN, reject_unknown_kwargs

#: What ``timm.create_model`` hands every entry point for its builder (``pretrained_cfg``,
#: ``pretrained_cfg_overlay``, ``cache_dir``, ...): the builder's own parameters.
BUILDER_ARGS: frozenset[str] = frozenset(
    name
    for name, param in inspect.signature(build_model_with_cfg).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY or param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
) - {"model_cls", "variant", "pretrained"}


def _cfg(**overrides: Any) -> dict[str, Any]:
    return {
        "num_classes": 8,
        "input_size": (1, 96, 96),
        "pool_size": (2, 2),
        "crop_pct": 1.0,
        "crop_mode": "center",
        "interpolation": "bilinear",
        "mean": (0.0,),
        "std": (1.0,),
        "first_conv": "conv1",
        "classifier": "fc_out",
        "license": "bsd-3-clause",
        "paper_ids": "arXiv:1510.02969",
        **overrides,
    }


default_cfgs = generate_default_cfgs({"zerobias_cnn": _cfg()})


@register_model
def zerobias_cnn(pretrained: bool = False, **kwargs: Any) -> ZeroBiasCNN:
    """The zero-bias CNN (Khorrami et al., 2015); see :class:`captum_fau.ZeroBiasCNN`.

    The builder's arguments go to timm's builder, the constructor's to :class:`ZeroBiasCNN`;
    anything else (``drop_path_rate``, ``features_only``, a misspelt name) is refused with a
    :class:`~captum_fau.errors.ConfigError` naming the closest valid argument.
    """
    builder = {k: kwargs.pop(k) for k in [*kwargs] if k in BUILDER_ARGS}
    unknown = {k: v for k, v in kwargs.items() if k not in CONSTRUCTOR_ARGS}
    reject_unknown_kwargs(unknown, CONSTRUCTOR_ARGS, "timm.create_model('zerobias_cnn')")
    return build_model_with_cfg(ZeroBiasCNN, "zerobias_cnn", pretrained, **builder, **kwargs)


__all__ = ["zerobias_cnn"]
