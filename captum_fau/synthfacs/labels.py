"""SynthFACS labels: the EMFACS-style AU recipe of each emotion, and the seeded AU draws of both render modes.

``"prototype"`` mode draws an emotion, then its prototype's AUs (core, one of each group, optional ones);
``"independent"`` mode draws each AU on its own and names the emotion of the nearest prototype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from captum_fau.data.base import CKPLUS_CLASSES
from captum_fau.synthfacs.layout import AU_INDEX, SYNTHFACS_AUS


#: Probability of each AU in ``"independent"`` mode.
INDEPENDENT_AU_PROBABILITY: float = 0.2


@dataclass(frozen=True)
class Prototype:
    """EMFACS-style AU recipe of one emotion.

    ``core`` AUs are always present, one AU of each ``one_of`` group is
    present, each ``optional`` AU is present with probability 0.4.
    """

    core: tuple[str, ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    optional: tuple[str, ...] = ()


#: CK+ code -> prototype (after the EMFACS rules used to validate CK+ labels).
PROTOTYPES: dict[int, Prototype] = {
    0: Prototype(core=()),
    1: Prototype(core=("AU4", "AU7"), one_of=(("AU23", "AU24"),), optional=("AU5", "AU17")),
    2: Prototype(core=("R12", "R14")),
    3: Prototype(core=(), one_of=(("AU9", "AU10"),), optional=("AU15", "AU17", "AU25")),
    4: Prototype(core=("AU1", "AU2", "AU4", "AU5", "AU20"), optional=("AU7", "AU25", "AU26")),
    5: Prototype(core=("AU6", "AU12"), optional=("AU25", "AU26")),
    6: Prototype(core=("AU1", "AU4", "AU15"), optional=("AU17",)),
    7: Prototype(core=("AU1", "AU2", "AU5"), one_of=(("AU26", "AU27"),), optional=("AU25",)),
}
_EXTRA_AUS: tuple[str, ...] = ("AU7", "AU17", "AU25", "AU6", "AU10", "AU24", "AU14")
_PROTOTYPE_SETS: tuple[frozenset[str], ...] = tuple(
    frozenset(p.core) | frozenset(au for group in p.one_of for au in group) for p in PROTOTYPES.values()
)


def _sample_prototype(rng: np.random.Generator) -> tuple[int, np.ndarray]:
    aus = np.zeros(len(SYNTHFACS_AUS), dtype=np.float32)
    emotion = int(rng.integers(len(CKPLUS_CLASSES)))
    proto = PROTOTYPES[emotion]
    chosen = list(proto.core) + [group[int(rng.integers(len(group)))] for group in proto.one_of]
    low = 1.0 if emotion == 2 else 1.5  # contempt is subtle (CK+: R12A, R14A)
    high = 3.5 if emotion == 2 else 5.0
    for au in chosen:
        aus[AU_INDEX[au]] = rng.uniform(low, high)
    for au in proto.optional:
        if rng.random() < 0.4:
            aus[AU_INDEX[au]] = rng.uniform(1.0, 4.0)
    if emotion not in (0, 2) and rng.random() < 0.2:
        extra = _EXTRA_AUS[int(rng.integers(len(_EXTRA_AUS)))]
        if aus[AU_INDEX[extra]] == 0:
            aus[AU_INDEX[extra]] = rng.uniform(1.0, 2.5)
    return emotion, aus


def nearest_prototype(aus: np.ndarray) -> int:
    """Emotion whose prototype AU set has the highest Jaccard overlap with the present AUs.

    Neutral (0) when no AU is present; -1 when no prototype shares an AU.
    Unilateral variants count as their bilateral AU for the overlap.
    """
    present = {SYNTHFACS_AUS[j] for j in np.flatnonzero(np.asarray(aus) > 0)}
    if not present:
        return 0
    best, best_score = -1, 0.0
    for code, proto in enumerate(_PROTOTYPE_SETS):
        if not proto:
            continue
        score = len(present & proto) / len(present | proto)
        if score > best_score:
            best, best_score = code, score
    return best


def _sample_independent(rng: np.random.Generator) -> tuple[int, np.ndarray]:
    present = rng.random(len(SYNTHFACS_AUS)) < INDEPENDENT_AU_PROBABILITY
    values = rng.uniform(1.0, 5.0, size=len(SYNTHFACS_AUS))
    aus = np.where(present, values, 0.0).astype(np.float32)
    # a unilateral AU is redundant next to its bilateral form
    for bilateral, unilateral in (("AU12", "R12"), ("AU14", "R14")):
        if aus[AU_INDEX[bilateral]] > 0:
            aus[AU_INDEX[unilateral]] = 0.0
    return nearest_prototype(aus), aus


__all__ = ["INDEPENDENT_AU_PROBABILITY", "PROTOTYPES", "Prototype", "nearest_prototype"]
