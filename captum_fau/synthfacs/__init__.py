"""SynthFACS: rendered faces with known facial action units, the library's licence-free AU ground truth.

Two styles share one label sampler, one seeding scheme and one API: ``"cartoon"`` (flat shapes drawn
with OpenCV, :mod:`captum_fau.synthfacs.geometry`; the packaged zoo model's training data) and
``"photo"`` (a shaded height-field head with skin texture, teeth and FACS appearance changes,
:mod:`captum_fau.synthfacs.photo`).

Examples::

    >>> from captum_fau.synthfacs import render
    >>> render(2, seed=0, style="photo").images.shape
    (2, 96, 96)
"""

from __future__ import annotations

from captum_fau.synthfacs.sets import (
    IMAGES_PER_SUBJECT,
    MODES,
    PROTOTYPES,
    STYLES,
    SYNTHFACS_AUS,
    Prototype,
    SynthBatch,
    SynthFACS,
    default_n_subjects,
    load_synthfacs,
    nearest_prototype,
    region_masks,
    render,
    render_with_aus,
    subject_of,
)

__all__ = [
    "IMAGES_PER_SUBJECT",
    "MODES",
    "PROTOTYPES",
    "Prototype",
    "STYLES",
    "SYNTHFACS_AUS",
    "SynthBatch",
    "SynthFACS",
    "default_n_subjects",
    "load_synthfacs",
    "nearest_prototype",
    "region_masks",
    "render",
    "render_with_aus",
    "subject_of",
]
