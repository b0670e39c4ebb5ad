"""captum-fau: do deep networks learn facial action units?

A Captum plugin and model zoo for the analysis of Khorrami, Paine & Huang
(2015): zero-bias CNNs, Zeiler-Fergus top-N deconvolution, and the FAU-KL
association between filters and facial action units.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from captum_fau import errors
from captum_fau.models import ZeroBiasCNN

__version__ = "0.1.0"

# Heavier pieces load on first use so that `import captum_fau` stays quick.
_LAZY = {
    "zoo": ("captum_fau.zoo", None),
    "TopNDeconv": ("captum_fau.attr", "TopNDeconv"),
    "TopNResult": ("captum_fau.attr", "TopNResult"),
    "FAUKL": ("captum_fau.concept", "FAUKL"),
    "FAUKLResult": ("captum_fau.concept", "FAUKLResult"),
    "SynthFACS": ("captum_fau.data.synthfacs", "SynthFACS"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'captum_fau' has no attribute {name!r}")


__all__ = ["FAUKL", "FAUKLResult", "SynthFACS", "TopNDeconv", "TopNResult", "ZeroBiasCNN", "errors", "zoo", "__version__"]
