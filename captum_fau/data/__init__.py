"""Datasets: SynthFACS, CK+, TFD, FER2013 and folders with AU labels; preprocessing; folds.

Every loader returns a :class:`~captum_fau.data.base.FaceSet` (``ckplus:`` and ``folder:`` data, when
streamed, its twin :class:`~captum_fau.data.lazy.LazyFaceSet`). Names load on first use so that
importing the package does not pull in OpenCV or scipy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "FaceSet": "captum_fau.data.base",
    "CKPLUS_CLASSES": "captum_fau.data.base",
    "SynthFACS": "captum_fau.synthfacs",
    "load_synthfacs": "captum_fau.synthfacs",
    "load_ckplus": "captum_fau.data.ckplus",
    "load_tfd": "captum_fau.data.tfd",
    "load_fer2013": "captum_fau.data.fer2013",
    "load_folder": "captum_fau.data.folder",
    "LazyFaceSet": "captum_fau.data.lazy",
    "index_faces": "captum_fau.data.lazy",
    "load_data_spec": "captum_fau.data.spec",
    "subject_kfold": "captum_fau.data.folds",
    "InputSpec": "captum_fau.inputs.spec",  # moved to captum_fau.inputs; kept here for one release
    "ModelInputs": "captum_fau.inputs.model_inputs",  # moved to captum_fau.inputs; kept here for one release
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'captum_fau.data' has no attribute {name!r}")


__all__ = sorted(_LAZY)
