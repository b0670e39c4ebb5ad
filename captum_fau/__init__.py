"""captum-fau: do deep networks learn facial action units?

A Captum plugin and model zoo for the analysis of Khorrami, Paine & Huang
(2015): zero-bias CNNs, Zeiler-Fergus top-N deconvolution, and the FAU-KL
association between filters and facial action units.

Every public name loads on first use, so ``import captum_fau`` (and the
``captum-fau --help`` of the command line) does not import torch. IDEs and
type checkers read the names from the ``TYPE_CHECKING`` block below.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what the lazy names below resolve to, for IDEs and type checkers
    from captum_fau import errors, zoo
    from captum_fau.analyze import AnalysisConfig, analyze
    from captum_fau.attr import TopNDeconv, TopNResult
    from captum_fau.concept import FAUKL, FAUKLResult
    from captum_fau.data.synthfacs import SynthFACS
    from captum_fau.models import ZeroBiasCNN
    from captum_fau.probes import AUProbe, AUProbeResult, FilterImportance, ImportanceResult

#: Public name -> (module, attribute in it; None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "errors": ("captum_fau.errors", None),
    "zoo": ("captum_fau.zoo", None),
    "ZeroBiasCNN": ("captum_fau.models", "ZeroBiasCNN"),
    "TopNDeconv": ("captum_fau.attr", "TopNDeconv"),
    "TopNResult": ("captum_fau.attr", "TopNResult"),
    "FAUKL": ("captum_fau.concept", "FAUKL"),
    "FAUKLResult": ("captum_fau.concept", "FAUKLResult"),
    "SynthFACS": ("captum_fau.data.synthfacs", "SynthFACS"),
    "analyze": ("captum_fau.analyze", "analyze"),
    "AnalysisConfig": ("captum_fau.analyze", "AnalysisConfig"),
    "InputSpec": ("captum_fau.inputs.spec", "InputSpec"),
    "AUProbe": ("captum_fau.probes", "AUProbe"),
    "AUProbeResult": ("captum_fau.probes", "AUProbeResult"),
    "FilterImportance": ("captum_fau.probes", "FilterImportance"),
    "ImportanceResult": ("captum_fau.probes", "ImportanceResult"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'captum_fau' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {name for name in globals() if name.startswith("__")})


__all__ = [
    "AUProbe",
    "AUProbeResult",
    "FAUKL",
    "AnalysisConfig",
    "FAUKLResult",
    "FilterImportance",
    "ImportanceResult",
    "InputSpec",
    "SynthFACS",
    "TopNDeconv",
    "TopNResult",
    "ZeroBiasCNN",
    "__version__",
    "analyze",
    "errors",
    "zoo",
]
