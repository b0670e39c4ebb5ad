"""Moved to :mod:`captum_fau.inputs.spec` (the spec) and :mod:`captum_fau.inputs.sources` (what a model
declares); this name keeps working for one release."""

from __future__ import annotations

from captum_fau.inputs.sources import (  # re-exports for one release
    discover_input_spec,
)
from captum_fau.inputs.spec import (  # re-exports for one release
    BT601_LUMA,
    CLI_FLAGS,
    INTERPOLATIONS,
    InputSpec,
    LOCAL_MEAN_PADDINGS,
    SOURCE_DATA,
    SOURCE_DEFAULT,
    SOURCE_EXPLICIT,
    SOURCE_HF,
    SOURCE_PROBE,
    SOURCE_TIMM,
    SOURCE_ZEROBIAS,
    local_mean_subtract,
    parse_pixel_range,
    parse_size,
)

__all__ = [
    "BT601_LUMA",
    "CLI_FLAGS",
    "INTERPOLATIONS",
    "InputSpec",
    "LOCAL_MEAN_PADDINGS",
    "SOURCE_DATA",
    "SOURCE_DEFAULT",
    "SOURCE_EXPLICIT",
    "SOURCE_HF",
    "SOURCE_PROBE",
    "SOURCE_TIMM",
    "SOURCE_ZEROBIAS",
    "discover_input_spec",
    "local_mean_subtract",
    "parse_pixel_range",
    "parse_size",
]
