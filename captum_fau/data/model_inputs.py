"""Moved to :mod:`captum_fau.inputs.model_inputs`; this name keeps working for one release."""

from __future__ import annotations

from captum_fau.inputs.model_inputs import (  # re-exports for one release
    ModelInputs,
    raw_item,
    raw_shape,
)

__all__ = [
    "ModelInputs",
    "raw_item",
    "raw_shape",
]
