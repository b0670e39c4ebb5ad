"""Former home of SynthFACS, kept for one release: the renderer lives in :mod:`captum_fau.synthfacs`.

``from captum_fau.data.synthfacs import render_with_aus, load_synthfacs`` keeps working; the names
are looked up in :mod:`captum_fau.synthfacs` on first use (by name, so that ``data`` stays below
``synthfacs`` in the layers of docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_NAMES = (
    "IMAGES_PER_SUBJECT", "MODES", "PROTOTYPES", "Prototype", "STYLES", "SYNTHFACS_AUS", "SynthBatch", "SynthFACS",
    "default_n_subjects", "load_synthfacs", "nearest_prototype", "region_masks", "render", "render_with_aus",
    "subject_of",
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(import_module("captum_fau.synthfacs"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'captum_fau.data.synthfacs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(_NAMES)


__all__ = list(_NAMES)
