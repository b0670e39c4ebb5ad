"""Captum attributions: top-N deconvolution, backward rules, receptive fields.

Names are imported on first use, so that the rule registry (:mod:`captum_fau.attr.rules`) is read
without torch (the command line's ``--rule`` choices and ``--help``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "RULES": "captum_fau.attr.rules",
    "ReluRuleMode": "captum_fau.attr.rules",
    "ReceptiveFields": "captum_fau.attr.receptive_field",
    "receptive_fields": "captum_fau.attr.receptive_field",
    "SanityOptions": "captum_fau.attr.sanity",
    "SizeCheckedModule": "captum_fau.attr.crops",
    "TopNDeconv": "captum_fau.attr.topn_deconv",
    "TopNOptions": "captum_fau.attr.topn_pipeline",
    "TopNResult": "captum_fau.attr.topn_result",
    "TopNSearch": "captum_fau.attr.topn_result",
}

if TYPE_CHECKING:
    from captum_fau.attr.receptive_field import ReceptiveFields, receptive_fields
    from captum_fau.attr.rules import RULES, ReluRuleMode
    from captum_fau.attr.crops import SizeCheckedModule
    from captum_fau.attr.sanity import SanityOptions
    from captum_fau.attr.topn_deconv import TopNDeconv
    from captum_fau.attr.topn_pipeline import TopNOptions
    from captum_fau.attr.topn_result import TopNResult, TopNSearch


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'captum_fau.attr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["RULES", "ReceptiveFields", "ReluRuleMode", "SanityOptions", "SizeCheckedModule", "TopNDeconv", "TopNOptions",
           "TopNResult", "TopNSearch", "receptive_fields"]  # fmt: skip
