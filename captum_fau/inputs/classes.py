"""Class names and the mapping of a dataset's classes onto a model's outputs, by name.

Datasets and models name the same emotions differently (``anger`` / ``angry``, ``sadness`` /
``sad``) and order them differently (CK+ codes, FER2013's order, alphabetical folders).
Accuracy is only meaningful when each data class is matched to the model output of the same
emotion, so this module matches **names**, case-insensitively and with the usual synonyms,
and never indices:

* :func:`canonical_emotion` reads one name (``"Angry"`` -> ``"anger"``);
* :class:`ClassMapping` maps data class indices to model output indices (-1 where the
  model lacks the class, e.g. contempt for a 7-class FER2013 model) and says so in notes;
* :func:`mapped_accuracy` scores logits against data labels through a mapping: accuracy
  over the images whose class the model has, the confusion matrix in the model's class
  order, and per-class accuracy.

The canonical names are the library's CK+ names (:data:`CANONICAL_EMOTIONS`). "calm" (as
in RAVDESS) is not read as neutral; pass ``synonyms={"calm": "neutral"}`` where that is meant.

Examples::

    >>> import numpy as np
    >>> m = ClassMapping.build(FER2013_CLASSES, ("neutral", "anger", "contempt", "happy"))
    >>> m.index.tolist()
    [6, 0, -1, 3]
    >>> m.remap(np.array([0, 1, 2, -1])).tolist()
    [6, 0, -1, -1]
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from captum_fau.data.emotions import (
    _LOOKUP,
    CANONICAL_EMOTIONS,
    EMOTION_SYNONYMS,
    FER2013_CLASSES,
    _key,
    _lookup,
    canonical_emotion,
    known_vocabulary,
)
from captum_fau.errors import ConfigError, LabelError

_MODEL_FIX = (
    "Fix the name in --class-names / the config's id2label, or declare it with synonyms={'NAME': 'EMOTION'} "
    "(a name mapped to itself is a class of its own)."
)
_DATA_FIX = (
    "Rename the folders / labels.csv values to emotion names, pass class_names= to the loader, or declare the "
    "spelling with synonyms={'NAME': 'EMOTION'}."
)


def _unknown_message(side: str, names: Sequence[str], fix: str) -> str:
    parts = []
    for name in names:
        close = difflib.get_close_matches(_key(name), list(_LOOKUP), n=1, cutoff=0.75)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (
        f"{side} class name(s) {', '.join(parts)} are not emotion names captum-fau knows. Known names: "
        f"{known_vocabulary()}. {fix}"
    )


def parse_class_names(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"angry,disgust,fear"`` (``--class-names``) or a sequence -> a tuple of names.

    Raises:
        ConfigError: empty names, or the same emotion listed twice (also as synonyms).

    Examples::

        >>> parse_class_names("angry, disgust,fear")
        ('angry', 'disgust', 'fear')
    """
    raw = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(str(n).strip() for n in raw)
    if not names or any(not n for n in names):
        raise ConfigError(
            f"--class-names must list one non-empty name per model output, comma-separated "
            f"(e.g. {','.join(FER2013_CLASSES)}); got {text!r}."
        )
    _check_duplicates(names, None, ConfigError, "--class-names / the model's class names")
    return names


def _check_duplicates(
    names: Sequence[str], synonyms: Mapping[str, str] | None, error: type[Exception], what: str
) -> None:
    table = _lookup(synonyms)
    seen: dict[str, str] = {}
    for name in names:
        meaning = table.get(_key(name), _key(name))
        if meaning in seen:
            same = "are the same name" if _key(seen[meaning]) == _key(name) else f"both mean {meaning!r}"
            raise error(
                f"{what} list {seen[meaning]!r} and {name!r}, which {same}; list each class once, in output order."
            )
        seen[meaning] = name


def class_names_from_config(config: Mapping[str, Any]) -> tuple[str, ...] | None:
    """A model's class names from its config: ``class_names``, ``label_names``, ``id2label``
    (Hugging Face, keys are output indices) or a zoo entry's ``zoo.class_names``.

    Returns:
        tuple of str or None: names in output order; ``None`` when the config has none.

    Raises:
        ConfigError: an ``id2label`` whose keys are not exactly ``0..K-1``.

    Examples::

        >>> class_names_from_config({"id2label": {"1": "happy", "0": "sad"}})
        ('sad', 'happy')
    """
    for key in ("class_names", "label_names"):
        if config.get(key):
            return tuple(str(n) for n in config[key])
    if config.get("id2label"):
        id2label = config["id2label"]
        try:
            by_index = {int(k): str(v) for k, v in id2label.items()}
        except (TypeError, ValueError):
            by_index = {}
        if sorted(by_index) != list(range(len(id2label))):
            raise ConfigError(
                f"id2label keys must be the output indices 0..{len(id2label) - 1}, got {sorted(map(str, id2label))}; "
                "fix config.json or pass --class-names."
            )
        return tuple(by_index[i] for i in range(len(by_index)))
    zoo = config.get("zoo")
    if isinstance(zoo, Mapping) and zoo.get("class_names"):
        return tuple(str(n) for n in zoo["class_names"])
    return None


@dataclass(frozen=True)
class ClassMapping:
    """Data class index -> model output index, matched by emotion name.

    Build it with :meth:`build`. Attributes:
        model_classes: The model's class names in output order.
        data_classes: The data's class names in label order.
        index: ``[len(data_classes)]`` int64: the model output of each data class, -1 where
            the model lacks it.
        notes: Human-readable notes: classes matched under different spellings, data classes
            the model lacks (with image counts when labels were given), model classes without
            images.
        present: Data class indices that occur in the labels given to :meth:`build` (all
            classes when none were given).
    """

    model_classes: tuple[str, ...]
    data_classes: tuple[str, ...]
    index: np.ndarray = field(compare=False)
    notes: tuple[str, ...] = ()
    present: tuple[int, ...] = ()

    @classmethod
    def build(
        cls,
        model_classes: Sequence[str],
        data_classes: Sequence[str],
        *,
        labels: np.ndarray | Sequence[int] | None = None,
        synonyms: Mapping[str, str] | None = None,
    ) -> "ClassMapping":
        """Match data classes to model classes by name.

        Names are compared case-insensitively through :data:`EMOTION_SYNONYMS` (plus
        ``synonyms``); a name outside the vocabulary matches only the same spelling on the
        other side.

        Args:
            model_classes (sequence of str): The model's class names in output order.
            data_classes (sequence of str): The data's class names in label order.
            labels (array-like, optional): The data's labels (-1 = unlabelled), to count the
                images left out and to judge :attr:`complete` on the classes that occur.
            synonyms (Mapping, optional): Extra spellings -> meaning, e.g. ``{"calm": "neutral"}``;
                ``{"pain": "pain"}`` declares a class outside the vocabulary.

        Returns:
            ClassMapping: the mapping and its notes.

        Raises:
            ConfigError: no model class names, duplicates among them (also as synonyms), or
                one that is not a known emotion and not spelled the same in the data.
            LabelError: the same for the data's class names, or labels outside their range.

        Examples::

            >>> m = ClassMapping.build(("sad", "happy"), ("happiness", "sadness", "contempt"), labels=[0, 2, 2, 1])
            >>> m.index.tolist(), m.complete
            ([1, 0, -1], False)
            >>> m.notes[-1]
            'contempt: not a class of the model; 2 images left out of accuracy'
        """
        model_classes = tuple(str(n) for n in model_classes)
        data_classes = tuple(str(n) for n in data_classes)
        if not model_classes:
            raise ConfigError(
                "the model has no class names; pass --class-names (Python: class_names=) in output order."
            )
        _check_duplicates(model_classes, synonyms, ConfigError, "the model's class names")
        _check_duplicates(data_classes, synonyms, LabelError, "the data's class names")
        table = _lookup(synonyms)
        model_meaning = [table.get(_key(n), _key(n)) for n in model_classes]
        data_meaning = [table.get(_key(n), _key(n)) for n in data_classes]
        known = set(table.values())
        sides = (
            (model_classes, model_meaning, data_meaning, ConfigError, "model", _MODEL_FIX),
            (data_classes, data_meaning, model_meaning, LabelError, "data", _DATA_FIX),
        )
        for names, meanings, other, error, side, fix in sides:
            unknown = [n for n, m in zip(names, meanings) if m not in known and m not in other]
            if unknown:
                raise error(_unknown_message(side, unknown, fix))
        where = {m: i for i, m in enumerate(model_meaning)}
        index = np.array([where.get(m, -1) for m in data_meaning], dtype=np.int64)
        counts = _label_counts(labels, len(data_classes))
        present = tuple(range(len(data_classes))) if counts is None else tuple(int(i) for i in np.flatnonzero(counts))
        notes = _mapping_notes(model_classes, data_classes, index, counts)
        return cls(model_classes, data_classes, index, tuple(notes), present)

    @property
    def complete(self) -> bool:
        """Every data class that occurs (all of them when no labels were given) has a model output."""
        return bool(all(self.index[i] >= 0 for i in self.present))

    @property
    def missing(self) -> tuple[str, ...]:
        """Data classes the model lacks."""
        return tuple(name for name, i in zip(self.data_classes, self.index) if i < 0)

    def remap(self, labels: np.ndarray | Sequence[int]) -> np.ndarray:
        """Data labels -> model output indices; -1 for unlabelled images and classes the model lacks.

        Raises:
            LabelError: a label outside ``-1 .. len(data_classes) - 1``.
        """
        arr = np.asarray(labels)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise LabelError(f"labels must be integer class indices, got dtype {arr.dtype}.")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < -1 or arr.max() >= len(self.data_classes)):
            raise LabelError(
                f"labels must be -1 (unlabelled) or 0..{len(self.data_classes) - 1} for the data's classes "
                f"{self.data_classes}; got values in [{arr.min()}, {arr.max()}]."
            )
        return np.where(arr >= 0, self.index[np.clip(arr, 0, None)], -1)

    def check_outputs(self, num_outputs: int) -> None:
        """Raise unless the model has one output per class name.

        Raises:
            ConfigError: the counts differ; the message names both and the fix.
        """
        if int(num_outputs) != len(self.model_classes):
            raise ConfigError(
                f"the model has {num_outputs} outputs but {len(self.model_classes)} class names "
                f"({','.join(self.model_classes)}); pass --class-names (Python: class_names=) with {num_outputs} "
                "names in output order."
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: model and data classes, the index and the notes."""
        return {
            "model_classes": list(self.model_classes),
            "data_classes": list(self.data_classes),
            "index": self.index.tolist(),
            "complete": self.complete,
            "notes": list(self.notes),
        }


def _label_counts(labels: np.ndarray | Sequence[int] | None, k: int) -> np.ndarray | None:
    if labels is None:
        return None
    arr = np.asarray(labels).astype(np.int64).ravel()
    if arr.size and (arr.min() < -1 or arr.max() >= k):
        raise LabelError(f"labels must be -1 (unlabelled) or 0..{k - 1}; got values in [{arr.min()}, {arr.max()}].")
    return np.bincount(arr[arr >= 0], minlength=k)


def _mapping_notes(
    model_classes: tuple[str, ...], data_classes: tuple[str, ...], index: np.ndarray, counts: np.ndarray | None
) -> list[str]:
    notes = []
    renamed = [
        f"{d}={model_classes[i]}" for d, i in zip(data_classes, index) if i >= 0 and _key(d) != _key(model_classes[i])
    ]
    if renamed:
        notes.append(f"data classes matched to the model's by name: {', '.join(renamed)}")
    unused = [name for j, name in enumerate(model_classes) if j not in set(index.tolist())]
    if unused:
        notes.append(f"model classes with no data class: {', '.join(unused)} (predicting them counts as an error)")
    for d, (name, i) in enumerate(zip(data_classes, index)):
        if i >= 0:
            continue
        if counts is None:
            notes.append(f"{name}: not a class of the model; its images are left out of accuracy")
        elif counts[d]:
            notes.append(f"{name}: not a class of the model; {int(counts[d])} images left out of accuracy")
    return notes


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """Counts ``[C, C]``: row = true class, column = predicted class.

    Args:
        y_true (array-like): True classes in ``0..num_classes-1``.
        y_pred (array-like): Predicted classes, same length.
        num_classes (int): ``C``.

    Returns:
        np.ndarray: int64 counts.

    Raises:
        LabelError: arrays of different lengths or classes out of range.

    Examples::

        >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
        [[1, 0], [1, 1]]
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise LabelError(f"y_true {t.shape} and y_pred {p.shape} must be 1-D arrays of the same length.")
    for what, arr in (("y_true", t), ("y_pred", p)):
        if len(arr) and (arr.min() < 0 or arr.max() >= num_classes):
            raise LabelError(f"{what} holds classes outside 0..{num_classes - 1}.")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall per true class (diagonal / row sum); NaN for a class absent from the test set.

    Examples::

        >>> per_class_accuracy(np.array([[1, 0], [1, 1]])).tolist()
        [1.0, 0.5]
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.where(totals > 0, totals, 1), np.nan)


def _predictions(scores: Any, k: int, mapping: ClassMapping) -> np.ndarray:
    """``[N, K]`` logits or ``[N]`` predicted output indices -> ``[N]`` int64 predictions."""
    arr = scores.detach().float().cpu().numpy() if hasattr(scores, "detach") else np.asarray(scores)
    if arr.ndim == 2:
        mapping.check_outputs(arr.shape[1])
        return arr.argmax(1).astype(np.int64)
    if arr.ndim == 1 and (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        if arr.size and (arr.min() < 0 or arr.max() >= k):
            raise LabelError(
                f"predicted classes must be model outputs 0..{k - 1}; got values in [{arr.min()}, {arr.max()}]."
            )
        return arr.astype(np.int64)
    raise LabelError(
        f"pass [N, K] logits or [N] integer predictions, got an array of shape {arr.shape}, dtype {arr.dtype}."
    )


def mapped_accuracy(logits: Any, data_labels: np.ndarray | Sequence[int], mapping: ClassMapping) -> dict[str, Any]:
    """Accuracy of a model on data labels, matched through ``mapping`` (never by index).

    The one place where captum-fau scores a model: :func:`captum_fau.analyze`,
    :func:`captum_fau.train.evaluate.evaluate_model` and the report's confusion matrix all read
    their numbers from here. Images whose class the model lacks are left out and counted;
    unlabelled images (-1) are ignored. Predictions range over all model outputs, so
    predicting a class the data never has counts as an error.

    Args:
        logits (array-like): ``[N, K]`` model outputs (numpy or torch), ``K`` = number of
            model classes, or ``[N]`` integer predicted output indices.
        data_labels (array-like): ``[N]`` data class indices, -1 = unlabelled.
        mapping (ClassMapping): From :meth:`ClassMapping.build`.

    Returns:
        dict: ``accuracy`` (float, or None when no image is mappable), ``n`` (images scored),
        ``n_left_out`` (labelled images of classes the model lacks), ``n_unlabelled``,
        ``left_out`` (data class -> count), ``class_names`` (model order), ``confusion``
        (``[K, K]`` list of lists in model class order, rows = true, columns = predicted, over
        the scored images), ``per_class_accuracy`` (model class -> recall, None for classes
        with no scored image), ``notes`` and ``mapping`` (:meth:`ClassMapping.to_dict`).

    Raises:
        ConfigError: ``K`` differs from the mapping's model classes.
        LabelError: labels and logits of different lengths, or labels out of range.

    Examples::

        >>> import numpy as np
        >>> m = ClassMapping.build(("sad", "happy"), ("happiness", "sadness"))
        >>> logits = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
        >>> res = mapped_accuracy(logits, np.array([0, 1, 0]), m)
        >>> res["accuracy"], res["confusion"]
        (0.6666666666666666, [[1, 0], [1, 1]])
        >>> mapped_accuracy(np.array([1, 0, 0]), [0, 1, 0], m)["accuracy"]
        0.6666666666666666
    """
    k = len(mapping.model_classes)
    preds = _predictions(logits, k, mapping)
    labels = np.asarray(data_labels).astype(np.int64).ravel()
    if len(labels) != len(preds):
        raise LabelError(
            f"{len(labels)} labels for {len(preds)} rows of logits (predictions); they must align image by image."
        )
    truth = mapping.remap(labels)
    labelled, scored = labels >= 0, truth >= 0
    confusion = confusion_matrix(truth[scored], preds[scored], k)
    left = np.bincount(labels[labelled & ~scored], minlength=len(mapping.data_classes))
    left_out = {mapping.data_classes[d]: int(c) for d, c in enumerate(left) if c}
    notes = [f"{name}: not a class of the model; {c} images left out of accuracy" for name, c in left_out.items()]
    n = int(scored.sum())
    if n == 0:
        notes.append("accuracy skipped: no labelled image has a class of the model")
    return {
        "accuracy": float(np.trace(confusion) / n) if n else None,
        "n": n,
        "n_left_out": int(left.sum()),
        "n_unlabelled": int((~labelled).sum()),
        "left_out": left_out,
        "class_names": list(mapping.model_classes),
        "confusion": confusion.tolist(),
        "per_class_accuracy": {
            name: (None if np.isnan(a) else float(a))
            for name, a in zip(mapping.model_classes, per_class_accuracy(confusion))
        },
        "notes": notes,
        "mapping": mapping.to_dict(),
    }


def emotion_accuracy(logits: np.ndarray, emotions: np.ndarray, mapping: ClassMapping) -> dict[str, Any] | None:
    """:func:`mapped_accuracy` of the labelled images, or None when no labelled image has a class of the model.

    Args:
        logits (np.ndarray): ``[N, K]`` model outputs.
        emotions (np.ndarray): ``[N]`` data class indices (-1 = unlabelled).
        mapping (ClassMapping): Data classes -> model outputs (:func:`model_class_mapping`).

    Returns:
        dict or None: :func:`mapped_accuracy`'s scores; None when there is nothing to score.

    Raises:
        ConfigError: the logits have a number of columns other than the mapping's model classes.
    """
    scores = mapped_accuracy(logits, emotions, mapping)
    return scores if scores["accuracy"] is not None else None


def model_class_names(model: Any, class_names: str | Sequence[str] | None = None) -> tuple[str, ...] | None:
    """A model's class names in output order: ``class_names`` when given, else what the model declares.

    Read, first found: ``class_names`` (parsed by :func:`parse_class_names`); the model's
    ``class_names`` attribute (:class:`~captum_fau.models.ZeroBiasCNN`); its ``config``
    (a mapping, or an object with ``id2label`` as in ``transformers``) through
    :func:`class_names_from_config`; timm's ``pretrained_cfg["label_names"]``.

    Args:
        model (nn.Module): Any model (only its attributes are read).
        class_names (str or sequence of str, optional): Explicit names
            (``"angry,disgust,..."`` or a sequence). Default: None

    Returns:
        tuple of str or None: ``None`` when the model declares no names.

    Raises:
        ConfigError: explicit names that are empty or list an emotion twice.

    Examples::

        >>> from torch import nn
        >>> model_class_names(nn.Linear(2, 2)) is None
        True
        >>> model_class_names(nn.Linear(2, 2), "sad,happy")
        ('sad', 'happy')
    """
    if class_names is not None:
        return parse_class_names(class_names)
    own = getattr(model, "class_names", None)
    if isinstance(own, (list, tuple)) and own:
        return tuple(str(n) for n in own)
    config = getattr(model, "config", None)
    if config is not None and not isinstance(config, Mapping):
        config = {key: getattr(config, key, None) for key in ("class_names", "label_names", "id2label")}
    if isinstance(config, Mapping):
        found = class_names_from_config(config)
        if found:
            return found
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, Mapping) and cfg.get("label_names"):
        return tuple(str(n) for n in cfg["label_names"])
    return None


def model_class_mapping(
    model: Any,
    data_classes: Sequence[str],
    *,
    class_names: str | Sequence[str] | None = None,
    labels: np.ndarray | Sequence[int] | None = None,
    num_outputs: int | None = None,
    synonyms: Mapping[str, str] | None = None,
) -> tuple[ClassMapping | None, list[str]]:
    """The mapping of the data's classes onto a model's outputs, or ``None`` and why.

    Explicit ``class_names`` that do not fit (duplicates, a count other than ``num_outputs``)
    raise; names the model declares but that do not fit its outputs, a model without names,
    and class names outside the emotion vocabulary give ``None`` and a note (accuracy is then
    skipped, never computed by index).

    Args:
        model (nn.Module): The model (see :func:`model_class_names`).
        data_classes (sequence of str): The data's class names in label order.
        class_names (str or sequence of str, optional): The model's names, overriding its own.
        labels (array-like, optional): The data's labels, to count images left out.
        num_outputs (int, optional): The model's number of outputs, when known.
        synonyms (Mapping, optional): Extra spellings, see :meth:`ClassMapping.build`.

    Returns:
        tuple: ``(mapping or None, notes)``.

    Raises:
        ConfigError: explicit ``class_names`` with duplicates or the wrong count.

    Examples::

        >>> from torch import nn
        >>> m, notes = model_class_mapping(nn.Linear(2, 2), ("happy", "sad"), class_names="sad,happy")
        >>> m.index.tolist()
        [1, 0]
        >>> model_class_mapping(nn.Linear(2, 2), ("happy", "sad"))[1]
        ['accuracy skipped: the model declares no class names; pass --class-names (Python: class_names=) in output order']
    """
    names = model_class_names(model, class_names)
    if names is None:
        return None, [
            "accuracy skipped: the model declares no class names; pass --class-names (Python: class_names=) in output order"
        ]
    if num_outputs is not None and int(num_outputs) != len(names):
        message = (
            f"the model has {num_outputs} outputs but {len(names)} class names ({','.join(names)}); pass "
            f"--class-names (Python: class_names=) with {num_outputs} names in output order"
        )
        if class_names is not None:
            raise ConfigError(message + ".")
        return None, [f"accuracy skipped: {message}"]
    try:
        mapping = ClassMapping.build(names, data_classes, labels=labels, synonyms=synonyms)
    except (ConfigError, LabelError) as err:
        if class_names is not None and isinstance(err, ConfigError):
            raise
        return None, [f"accuracy skipped: {err}"]
    return mapping, list(mapping.notes)


__all__ = [
    "CANONICAL_EMOTIONS",
    "EMOTION_SYNONYMS",
    "FER2013_CLASSES",
    "ClassMapping",
    "canonical_emotion",
    "class_names_from_config",
    "known_vocabulary",
    "confusion_matrix",
    "emotion_accuracy",
    "mapped_accuracy",
    "model_class_mapping",
    "model_class_names",
    "parse_class_names",
    "per_class_accuracy",
]
