"""Moved to :mod:`captum_fau.inputs.probe`; this name keeps working for one release."""

from __future__ import annotations

from captum_fau.inputs.probe import (  # re-exports for one release
    PROBE_SIZES,
    ProbeResult,
    check_single_input,
    forward_shape,
    probe_input,
)

__all__ = [
    "PROBE_SIZES",
    "ProbeResult",
    "check_single_input",
    "forward_shape",
    "probe_input",
]
