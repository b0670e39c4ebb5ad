"""The Facial Action Coding System's action units: number, name, facial region.

Covers every AU that CK+'s FACS files use, plus the head and eye positions
FACS codes as 50s/60s. AUs are identified by strings: ``"AU12"`` for a
bilateral AU, ``"R12"`` / ``"L12"`` for the unilateral (right / left)
variants that FACS writes with a prefix (e.g. R12 and R14 in contempt).

Examples::

    >>> from captum_fau.data.au import au_name, au_region, parse_au
    >>> au_name("AU12")
    'Lip Corner Puller'
    >>> au_name("R14")
    'Dimpler (right)'
    >>> au_region(25)
    'mouth'
    >>> parse_au("au 9.0")
    'AU9'
"""

from __future__ import annotations

import re
from typing import NamedTuple

from captum_fau.errors import LabelError


class ActionUnit(NamedTuple):
    number: int
    name: str
    region: str  # brows, eyes, cheeks, nose, mouth, chin, jaw, head, gaze


_AUS: tuple[ActionUnit, ...] = (
    ActionUnit(1, "Inner Brow Raiser", "brows"),
    ActionUnit(2, "Outer Brow Raiser", "brows"),
    ActionUnit(4, "Brow Lowerer", "brows"),
    ActionUnit(5, "Upper Lid Raiser", "eyes"),
    ActionUnit(6, "Cheek Raiser", "cheeks"),
    ActionUnit(7, "Lid Tightener", "eyes"),
    ActionUnit(8, "Lips Toward Each Other", "mouth"),
    ActionUnit(9, "Nose Wrinkler", "nose"),
    ActionUnit(10, "Upper Lip Raiser", "mouth"),
    ActionUnit(11, "Nasolabial Deepener", "cheeks"),
    ActionUnit(12, "Lip Corner Puller", "mouth"),
    ActionUnit(13, "Sharp Lip Puller", "mouth"),
    ActionUnit(14, "Dimpler", "mouth"),
    ActionUnit(15, "Lip Corner Depressor", "mouth"),
    ActionUnit(16, "Lower Lip Depressor", "mouth"),
    ActionUnit(17, "Chin Raiser", "chin"),
    ActionUnit(18, "Lip Pucker", "mouth"),
    ActionUnit(19, "Tongue Show", "mouth"),
    ActionUnit(20, "Lip Stretcher", "mouth"),
    ActionUnit(21, "Neck Tightener", "chin"),
    ActionUnit(22, "Lip Funneler", "mouth"),
    ActionUnit(23, "Lip Tightener", "mouth"),
    ActionUnit(24, "Lip Pressor", "mouth"),
    ActionUnit(25, "Lips Part", "mouth"),
    ActionUnit(26, "Jaw Drop", "jaw"),
    ActionUnit(27, "Mouth Stretch", "jaw"),
    ActionUnit(28, "Lip Suck", "mouth"),
    ActionUnit(29, "Jaw Thrust", "jaw"),
    ActionUnit(30, "Jaw Sideways", "jaw"),
    ActionUnit(31, "Jaw Clencher", "jaw"),
    ActionUnit(32, "Lip Bite", "mouth"),
    ActionUnit(33, "Cheek Blow", "cheeks"),
    ActionUnit(34, "Cheek Puff", "cheeks"),
    ActionUnit(35, "Cheek Suck", "cheeks"),
    ActionUnit(36, "Tongue Bulge", "mouth"),
    ActionUnit(37, "Lip Wipe", "mouth"),
    ActionUnit(38, "Nostril Dilator", "nose"),
    ActionUnit(39, "Nostril Compressor", "nose"),
    ActionUnit(41, "Lid Droop", "eyes"),
    ActionUnit(42, "Slit", "eyes"),
    ActionUnit(43, "Eyes Closed", "eyes"),
    ActionUnit(44, "Squint", "eyes"),
    ActionUnit(45, "Blink", "eyes"),
    ActionUnit(46, "Wink", "eyes"),
    ActionUnit(51, "Head Turn Left", "head"),
    ActionUnit(52, "Head Turn Right", "head"),
    ActionUnit(53, "Head Up", "head"),
    ActionUnit(54, "Head Down", "head"),
    ActionUnit(55, "Head Tilt Left", "head"),
    ActionUnit(56, "Head Tilt Right", "head"),
    ActionUnit(57, "Head Forward", "head"),
    ActionUnit(58, "Head Back", "head"),
    ActionUnit(61, "Eyes Turn Left", "gaze"),
    ActionUnit(62, "Eyes Turn Right", "gaze"),
    ActionUnit(63, "Eyes Up", "gaze"),
    ActionUnit(64, "Eyes Down", "gaze"),
)

#: FACS number -> :class:`ActionUnit`.
CATALOGUE: dict[int, ActionUnit] = {au.number: au for au in _AUS}

_SIDES = {"AU": "", "R": " (right)", "L": " (left)"}
_AU_PATTERN = re.compile(r"^\s*(AU|R|L)?\s*0*(\d+)(?:\.0*)?\s*$", re.IGNORECASE)


def parse_au(value: str | int | float) -> str:
    """Normalise an AU identifier: ``12``, ``12.0``, ``"AU12"``, ``"au 12"``, ``"AU012"`` -> ``"AU12"``;
    ``"R12"`` -> ``"R12"``.

    Raises:
        LabelError: the value is not an AU identifier, or the number is not a FACS AU.
    """
    if isinstance(value, float):
        if not value.is_integer():
            raise LabelError(f"AU identifier {value!r} is not a whole number.")
        value = int(value)
    match = _AU_PATTERN.match(str(value))
    if match is None:
        raise LabelError(
            f"{value!r} is not an action-unit identifier; expected forms like 12, 12.0, 'AU12', 'AU012' or 'R12'."
        )
    prefix = (match.group(1) or "AU").upper()
    number = int(match.group(2))
    if number not in CATALOGUE:
        raise LabelError(f"AU{number} is not a FACS action unit known to captum-fau (known: {sorted(CATALOGUE)}).")
    return f"{prefix}{number}"


def au_number(au: str | int) -> int:
    """The FACS number of an AU identifier (``"R12"`` -> 12)."""
    return int(_AU_PATTERN.match(parse_au(au)).group(2))  # type: ignore[union-attr]


def au_name(au: str | int) -> str:
    """FACS name, with the side for unilateral variants: ``"R12"`` -> ``"Lip Corner Puller (right)"``."""
    key = parse_au(au)
    prefix = "AU" if key.startswith("AU") else key[0]
    return CATALOGUE[au_number(key)].name + _SIDES[prefix]


def au_region(au: str | int) -> str:
    """The facial region the AU acts on (brows, eyes, cheeks, nose, mouth, chin, jaw, head, gaze)."""
    return CATALOGUE[au_number(au)].region


def au_label(au: str | int) -> str:
    """``"AU12: Lip Corner Puller"``, the form of the paper's Table 4."""
    return f"{parse_au(au)}: {au_name(au)}"


__all__ = ["CATALOGUE", "ActionUnit", "au_label", "au_name", "au_number", "au_region", "parse_au"]
