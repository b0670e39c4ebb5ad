"""Causal probes: does a filter respond to an AU, and does the model's decision depend on it?

* :class:`AUProbe` — counterfactual SynthFACS faces, one AU swept 0..5, per filter x AU effects;
* :class:`AUOcclusion` — the AU's region replaced on labelled data (SynthFACS masks or landmarks);
* :class:`FilterImportance` — each filter ablated at the layer, the head run from cached activations;
* :func:`facs_table` — the important filters' AUs against the EMFACS prototypes.
"""

from captum_fau.probes.au_probe import AUProbe, AUProbeResult, ProbeOptions
from captum_fau.probes.facs import EMFACS_PROTOTYPES, FACSTable, facs_table
from captum_fau.probes.importance import FilterImportance, ImportanceResult
from captum_fau.probes.occlusion import AUOcclusion, OcclusionResult, synthfacs_masks

__all__ = [
    "EMFACS_PROTOTYPES",
    "AUOcclusion",
    "AUProbe",
    "AUProbeResult",
    "FACSTable",
    "FilterImportance",
    "ImportanceResult",
    "OcclusionResult",
    "ProbeOptions",
    "facs_table",
    "synthfacs_masks",
]
