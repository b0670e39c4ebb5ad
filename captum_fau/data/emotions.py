"""The emotion vocabulary: canonical names, FER2013's order and accepted synonyms.

:func:`canonical_emotion` reads one name (``"Angry"`` -> ``"anger"``). Mapping a dataset's
classes onto a model's outputs by these names, and accuracy through that mapping, live in
:mod:`captum_fau.inputs.classes` (its names are re-exported here for one release).

The canonical names are the library's CK+ names (:data:`CANONICAL_EMOTIONS`). "calm" (as
in RAVDESS) is not read as neutral; pass ``synonyms={"calm": "neutral"}`` where that is meant.
"""

from __future__ import annotations

from typing import Any, Mapping

#: The canonical emotion names (CK+ codes 0..7, the library's 8-class order).
CANONICAL_EMOTIONS: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "sadness",
    "surprise",
)
#: FER2013's class order as third-party FER models name it (labels 0..6 of ``fer2013.csv``).
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: Accepted spellings (lower case) of each canonical emotion.
EMOTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "neutrality"),
    "anger": ("anger", "angry", "mad"),
    "contempt": ("contempt", "contemptuous"),
    "disgust": ("disgust", "disgusted"),
    "fear": ("fear", "fearful", "afraid", "scared"),
    "happy": ("happy", "happiness", "joy", "joyful"),
    "sadness": ("sadness", "sad"),
    "surprise": ("surprise", "surprised"),
}
_LOOKUP: dict[str, str] = {spelling: name for name, spellings in EMOTION_SYNONYMS.items() for spelling in spellings}


def _key(name: str) -> str:
    return " ".join(str(name).strip().lower().replace("_", " ").replace("-", " ").split())


def _lookup(synonyms: Mapping[str, str] | None) -> dict[str, str]:
    table = dict(_LOOKUP)
    for spelling, meaning in (synonyms or {}).items():
        target = _key(meaning)
        table[_key(spelling)] = _LOOKUP.get(target, target)
    return table


def canonical_emotion(name: str, synonyms: Mapping[str, str] | None = None) -> str | None:
    """The canonical name of an emotion, or ``None`` when the name is not known.

    Args:
        name (str): Any spelling: case, ``_``/``-`` and surrounding spaces are ignored.
        synonyms (Mapping, optional): Extra spellings -> meaning (a canonical name or a
            known synonym of one); a name mapped to itself becomes a class of its own.

    Examples::

        >>> canonical_emotion(" Angry "), canonical_emotion("happiness"), canonical_emotion("calm")
        ('anger', 'happy', None)
        >>> canonical_emotion("calm", synonyms={"calm": "neutral"})
        'neutral'
    """
    return _lookup(synonyms).get(_key(name))


def known_vocabulary() -> str:
    """The accepted names, one group per emotion, for error messages."""
    return "; ".join(
        f"{name} ({'/'.join(s for s in spellings if s != name)})" for name, spellings in EMOTION_SYNONYMS.items()
    )


#: Names that moved to :mod:`captum_fau.inputs.classes`; importing them from here keeps working for one release.
_MOVED = ("ClassMapping", "class_names_from_config", "confusion_matrix", "mapped_accuracy", "model_class_mapping",
          "model_class_names", "parse_class_names", "per_class_accuracy")  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from captum_fau.inputs import classes

        return getattr(classes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CANONICAL_EMOTIONS",
    "EMOTION_SYNONYMS",
    "FER2013_CLASSES",
    "canonical_emotion",
    "known_vocabulary",
    *_MOVED,
]
