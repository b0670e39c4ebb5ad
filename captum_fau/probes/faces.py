"""The counterfactual faces of an AU probe: one SynthFACS face per identity, each AU swept 0..5.

Face ``k`` is image ``k`` of a SynthFACS set rendered with ``n_subjects = n_faces``, so every
face is a different identity with its own pose, lighting and sensor noise; only the AU vector
changes between the renders of one face (:func:`captum_fau.synthfacs.render_with_aus`).

Each AU is swept on a *condition*: the neutral face (every other AU at 0), and each emotion
prototype whose recipe contains the AU (its other prototype AUs held at a fixed intensity), so
that an AU's effect is also measured in the context it usually appears in.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from captum_fau.data.base import CKPLUS_CLASSES
from captum_fau.synthfacs.sets import MAX_SIZE, MIN_SIZE, PROTOTYPES, render_with_aus
from captum_fau.synthfacs.geometry import AU_INDEX, SYNTHFACS_AUS
from captum_fau.errors import ConfigError

#: Intensities of a full sweep (0 = absent, 1..5 = FACS A..E).
INTENSITIES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)


def normalise_au(name: Any) -> str:
    """``"AU12"``, ``"au12"``, ``12`` -> ``"AU12"``; ``"R12"`` stays; unknown names raise.

    Raises:
        ConfigError: an AU the SynthFACS renderer cannot draw; the message lists those it can.
    """
    text = str(name).strip().upper()
    if text.isdigit():
        text = f"AU{int(text)}"
    if text not in AU_INDEX:
        raise ConfigError(
            f"The SynthFACS renderer cannot draw {name!r}, so no counterfactual faces can show it. AUs it draws: "
            f"{', '.join(SYNTHFACS_AUS)}; pass aus= a subset of these."
        )
    return text


def resolve_aus(aus: Sequence[Any] | None) -> tuple[str, ...]:
    """The probed AUs in :data:`SYNTHFACS_AUS` order (all of them for ``None``), checked."""
    if aus is None:
        return SYNTHFACS_AUS
    if isinstance(aus, (str, int)):
        aus = [aus]
    names = {normalise_au(a) for a in aus}
    if not names:
        raise ConfigError("aus is empty; pass None for every AU or a list such as ['AU6', 'AU12'].")
    return tuple(a for a in SYNTHFACS_AUS if a in names)


def render_size(spec: Any) -> tuple[int, list[str]]:
    """The square side to render at for the model's input spec, and notes.

    Raises:
        ConfigError: the spec asks for a non-square input or a side outside the renderer's range.
    """
    notes: list[str] = []
    size = getattr(spec, "size", None)
    if size is None:
        notes.append("The input spec does not fix a size; counterfactual faces are rendered at 96x96.")
        return 96, notes
    h, w = int(size[0]), int(size[1])
    if h != w:
        raise ConfigError(
            f"The model takes {h}x{w} inputs, but the SynthFACS renderer draws square faces only; stretching them "
            "would change the face geometry. Pass an input_spec with a square size (e.g. InputSpec(size=96))."
        )
    if not MIN_SIZE <= h <= MAX_SIZE:
        raise ConfigError(
            f"The model takes {h}x{w} inputs, outside the renderer's {MIN_SIZE}..{MAX_SIZE} pixels; pass an "
            f"input_spec with a size in that range."
        )
    if getattr(spec, "channels", 1) == 3:
        notes.append("SynthFACS faces are gray; the model's 3 input channels receive the same gray image.")
    return h, notes


def check_style(style: str | None) -> dict[str, Any]:
    """Keyword arguments that pass ``style`` to the renderer; refuses a style it does not take."""
    if style is None:
        return {}
    if "style" not in inspect.signature(render_with_aus).parameters:
        raise ConfigError(f"style={style!r} was asked for, but this SynthFACS renderer has no styles; pass style=None.")
    return {"style": style}


def conditions(au: str, context_intensity: float, prototypes: bool) -> list[tuple[str, np.ndarray]]:
    """``(name, base AU vector)`` of each condition ``au`` is swept on: neutral, then the prototypes with it."""
    out = [("neutral", np.zeros(len(SYNTHFACS_AUS), np.float32))]
    if not prototypes:
        return out
    for code, proto in PROTOTYPES.items():
        members = set(proto.core) | {a for group in proto.one_of for a in group} | set(proto.optional)
        if au not in members:
            continue
        base = np.zeros(len(SYNTHFACS_AUS), np.float32)
        for a in proto.core:
            base[AU_INDEX[a]] = context_intensity
        for group in proto.one_of:
            base[AU_INDEX[au if au in group else group[0]]] = context_intensity
        out.append((CKPLUS_CLASSES[code], base))
    return out


def render_sweep(
    seed: int, n_faces: int, base: np.ndarray, au: str, intensities: Sequence[int], size: int, extra: dict[str, Any]
) -> np.ndarray:
    """uint8 ``[n_faces, len(intensities), size, size]``: each face with ``au`` at each intensity on ``base``."""
    out = np.empty((n_faces, len(intensities), size, size), np.uint8)
    for k in range(n_faces):
        for i, level in enumerate(intensities):
            vector = base.copy()
            vector[AU_INDEX[au]] = float(level)
            out[k, i] = render_with_aus(seed, k, vector, size=size, n_subjects=n_faces, **extra)[0]
    return out


def union_masks(seed: int, n_faces: int, au: str, size: int, level: float = 5.0) -> np.ndarray:
    """bool ``[size, size]``: where ``au`` at ``level`` acts on any of the ``n_faces`` neutral faces."""
    vector = np.zeros(len(SYNTHFACS_AUS), np.float32)
    vector[AU_INDEX[au]] = level
    out = np.zeros((size, size), bool)
    for k in range(n_faces):
        out |= render_with_aus(seed, k, vector, size=size, n_subjects=n_faces)[1][AU_INDEX[au]]
    return out


__all__ = [
    "INTENSITIES",
    "check_style",
    "conditions",
    "normalise_au",
    "render_size",
    "render_sweep",
    "resolve_aus",
    "union_masks",
]
