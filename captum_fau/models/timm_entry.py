"""Registration of :class:`ZeroBiasCNN` with timm.

Importing this module (``import captum_fau`` does) makes
``timm.create_model("zerobias_cnn", num_classes=8)`` work, and lets timm load
Hub folders written by :meth:`ZeroBiasCNN.save_pretrained` through
``timm.create_model("hf-hub:ORG/NAME")`` or ``"local-dir:PATH"``.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from captum_fau.models.zerobias import ZeroBiasCNN


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
    """The zero-bias CNN (Khorrami et al., 2015); see :class:`captum_fau.ZeroBiasCNN`."""
    return build_model_with_cfg(ZeroBiasCNN, "zerobias_cnn", pretrained, **kwargs)


__all__ = ["zerobias_cnn"]
