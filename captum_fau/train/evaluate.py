"""Results tables in the layout of the paper's Tables 1-3.

The paper reports, per dataset, the accuracy of each training variant
(plain, +D, +A, +AD) as ``mean ± std`` over the cross-validation folds
(Tables 1 and 2), and a confusion matrix of the best variant with per-class
accuracies in percent, rows = true class, columns = predicted class
(Table 3). :class:`ResultsTable` holds per-fold results and renders both as
Markdown; :func:`evaluate_model` produces one fold's result.

Standard deviations are population standard deviations over folds
(``numpy.std`` with ``ddof=0``); the paper does not say which it used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import nn

from captum_fau._utils.io import atomic_write_text
from captum_fau.data.base import FaceSet
from captum_fau.errors import DatasetError, LabelError, OutputError
from captum_fau.train.trainer import check_labelled, predict

#: Display order of the paper's training variants.
VARIANT_ORDER: tuple[str, ...] = ("plain", "+D", "+A", "+AD")


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[C, C]``: row = true class, column = predicted class.

    Args:
        y_true (array-like): True classes in ``0..num_classes-1``.
        y_pred (array-like): Predicted classes, same length.
        num_classes (int): ``C``.

    Returns:
        np.ndarray: int64 counts.

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
    """Recall per true class (diagonal / row sum); NaN for a class absent from the test set."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.where(totals > 0, totals, 1), np.nan)


def accuracy_summary(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, confusion matrix and per-class accuracy of predictions, as plain JSON-ready values.

    The one place where captum-fau scores predictions: :func:`evaluate_model`, :class:`ResultsTable`
    and :func:`captum_fau.analyze` all read their numbers from :func:`confusion_matrix` and
    :func:`per_class_accuracy` through here.

    Args:
        y_true (array-like): True classes in ``0..len(class_names)-1``.
        y_pred (array-like): Predicted classes, same length.
        class_names (sequence of str): Class names in label order.

    Returns:
        dict: ``accuracy`` (float), ``n`` (images), ``class_names``, ``confusion`` (nested lists, row =
        true class) and ``per_class_accuracy`` (name -> recall, None for a class absent from ``y_true``).

    Examples::

        >>> s = accuracy_summary([0, 1, 1], [0, 1, 0], ("a", "b"))
        >>> s["accuracy"], s["per_class_accuracy"]
        (0.6666666666666666, {'a': 1.0, 'b': 0.5})
    """
    names = [str(name) for name in class_names]
    confusion = confusion_matrix(y_true, y_pred, len(names))
    total = int(confusion.sum())
    return {
        "accuracy": float(np.trace(confusion) / max(1, total)),
        "n": total,
        "class_names": names,
        "confusion": confusion.tolist(),
        "per_class_accuracy": {
            name: None if np.isnan(a) else float(a) for name, a in zip(names, per_class_accuracy(confusion))
        },
    }


@dataclass
class FoldResult:
    """One trained model evaluated on one held-out fold.

    Attributes:
        fold: Fold (or split) index.
        variant: ``plain``, ``+D``, ``+A`` or ``+AD``.
        accuracy: Fraction of test images classified correctly.
        confusion: ``[C, C]`` counts (row = true, column = predicted).
        selected_iteration: Iteration of the checkpoint that was evaluated.
        selection: ``"valid"``, ``"last"`` or ``"test"`` (the reference's optimistic choice).
        extra: Anything else worth keeping (valid accuracy, wall time, ...).
    """

    fold: int
    variant: str
    accuracy: float
    confusion: np.ndarray
    selected_iteration: int = 0
    selection: str = "valid"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_test(self) -> int:
        return int(np.asarray(self.confusion).sum())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["confusion"] = np.asarray(self.confusion).tolist()
        d["n_test"] = self.n_test
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FoldResult":
        d = {k: v for k, v in d.items() if k != "n_test"}
        d["confusion"] = np.asarray(d["confusion"], dtype=np.int64)
        return cls(**d)


def evaluate_model(
    model: nn.Module,
    data: FaceSet,
    *,
    fold: int = 0,
    variant: str = "+AD",
    selected_iteration: int = 0,
    selection: str = "valid",
    device: str = "cpu",
    batch_size: int = 256,
    input_spec: Any = None,
) -> FoldResult:
    """Evaluate ``model`` on ``data``'s labelled images.

    Args:
        model (nn.Module): A classifier over ``len(data.class_names)`` classes.
        data (FaceSet): The held-out images.
        fold (int, optional): Fold index to record. Default: 0
        variant (str, optional): Training variant to record. Default: ``"+AD"``
        selected_iteration (int, optional): Checkpoint iteration to record. Default: 0
        selection (str, optional): How the checkpoint was selected. Default: ``"valid"``
        device (str, optional): Where to run. Default: ``"cpu"``
        batch_size (int, optional): Images per forward pass. Default: 256
        input_spec (InputSpec or dict, optional): Explicit input-spec fields; the rest is what
            the model declares (see :func:`~captum_fau.train.trainer.predict`). Default: None

    Returns:
        FoldResult: accuracy and confusion matrix.
    """
    labelled = check_labelled(data, "test")
    truth = data.emotions[labelled]
    preds = predict(model, data.subset(labelled), device, batch_size, input_spec)
    scores = accuracy_summary(truth, preds, data.class_names)
    return FoldResult(
        fold=fold,
        variant=variant,
        accuracy=scores["accuracy"],
        confusion=np.asarray(scores["confusion"], dtype=np.int64),
        selected_iteration=selected_iteration,
        selection=selection,
    )


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=0))


@dataclass
class ResultsTable:
    """Per-fold results of every variant of one protocol.

    Args:
        title (str): E.g. ``"CK+ 8-class, 10 subject folds"``.
        class_names (sequence of str): Class names in label order.
        folds (list of FoldResult): Results, any variants, any folds.
        meta (dict): Protocol, budget, device, data description.

    Examples::

        >>> import numpy as np
        >>> t = ResultsTable("demo", ("a", "b"), [
        ...     FoldResult(0, "+AD", 1.0, np.array([[2, 0], [0, 2]])),
        ...     FoldResult(1, "+AD", 0.5, np.array([[1, 1], [1, 1]]))])
        >>> t.summary()["+AD"]["mean"], t.summary()["+AD"]["std"]
        (0.75, 0.25)
    """

    title: str
    class_names: tuple[str, ...]
    folds: list[FoldResult] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.class_names = tuple(self.class_names)

    @property
    def variants(self) -> list[str]:
        present = {f.variant for f in self.folds}
        return [v for v in VARIANT_ORDER if v in present] + sorted(present - set(VARIANT_ORDER))

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per variant: mean and std of the fold accuracies, the folds, and the summed confusion."""
        out: dict[str, dict[str, Any]] = {}
        for variant in self.variants:
            rows = [f for f in self.folds if f.variant == variant]
            mean, std = _mean_std([f.accuracy for f in rows])
            confusion = np.sum([np.asarray(f.confusion) for f in rows], axis=0)
            out[variant] = {
                "mean": mean,
                "std": std,
                "n_folds": len(rows),
                "fold_accuracies": [f.accuracy for f in rows],
                "confusion": confusion.tolist(),
                "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class_accuracy(confusion)],
                "selections": sorted({f.selection for f in rows}),
            }
        return out

    def best_variant(self) -> str:
        if not self.folds:
            raise DatasetError(f"Results table {self.title!r} is empty; run the protocol first.")
        summary = self.summary()
        return max(summary, key=lambda v: summary[v]["mean"])

    def to_markdown(self, confusion_variant: str | None = None) -> str:
        """Accuracy table (Tables 1-2 layout) and confusion matrix (Table 3 layout) as Markdown."""
        if not self.folds:
            raise DatasetError(f"Results table {self.title!r} is empty; run the protocol first.")
        summary = self.summary()
        lines = [f"### {self.title}", "", "| Method | Accuracy (%) | Folds | Selection |", "|---|---|---|---|"]
        for variant, s in summary.items():
            selection = ", ".join(s["selections"])
            if "test" in s["selections"]:
                selection += " (checkpoint chosen on the test fold: optimistic, the reference's protocol)"
            lines.append(
                f"| Zero-bias CNN {variant if variant != 'plain' else ''}".rstrip()
                + f" | {100 * s['mean']:.1f} ± {100 * s['std']:.1f} | {s['n_folds']} | {selection} |"
            )
        variant = confusion_variant or self.best_variant()
        if variant not in summary:
            raise DatasetError(f"No results for variant {variant!r}; available: {list(summary)}.")
        cm = np.asarray(summary[variant]["confusion"], dtype=np.float64)
        rows = cm.sum(1, keepdims=True)
        pct = np.divide(100 * cm, rows, out=np.full_like(cm, np.nan), where=rows > 0)
        names = self.class_names
        lines += [
            "",
            f"Confusion matrix, Zero-bias CNN {variant}, summed over folds (% of each true class; rows = true, "
            "columns = predicted):",
            "",
            "| | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for i, name in enumerate(names):
            cells = ["–" if np.isnan(v) else f"{v:.1f}" for v in pct[i]]
            cells[i] = f"**{cells[i]}**"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "class_names": list(self.class_names),
            "meta": self.meta,
            "summary": self.summary() if self.folds else {},
            "folds": [f.to_dict() for f in self.folds],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ResultsTable":
        return cls(
            title=d["title"],
            class_names=tuple(d["class_names"]),
            folds=[FoldResult.from_dict(f) for f in d.get("folds", [])],
            meta=d.get("meta", {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (atomically)."""
        path = Path(path)
        try:
            atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        except OSError as err:
            raise OutputError(f"Cannot write results to {path} ({err}); choose a writable location.") from err
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ResultsTable":
        """Read a table written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"Results file {path} does not exist; run `captum-fau train` with --out first.")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DatasetError(f"{path} is not a results file written by captum-fau ({err}).") from err


__all__ = [
    "VARIANT_ORDER",
    "FoldResult",
    "ResultsTable",
    "accuracy_summary",
    "confusion_matrix",
    "evaluate_model",
    "per_class_accuracy",
]
