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
from captum_fau._utils.validate import with_settings
from captum_fau.data.base import FaceSet
from captum_fau.inputs.classes import (
    ClassMapping,
    confusion_matrix,
    mapped_accuracy,
    model_class_mapping,
    per_class_accuracy,
)
from captum_fau.errors import DatasetError, LabelError, OutputError
from captum_fau.train.predict import check_labelled, predict

#: Display order of the paper's training variants.
VARIANT_ORDER: tuple[str, ...] = ("plain", "+D", "+A", "+AD")


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


@dataclass(frozen=True)
class EvaluateOptions:
    """How :func:`evaluate_model` runs and what its :class:`FoldResult` records.

    Attributes:
        fold (int): Fold index to record. Default: 0
        variant (str): Training variant to record. Default: ``"+AD"``
        selected_iteration (int): Checkpoint iteration to record. Default: 0
        selection (str): How the checkpoint was selected. Default: ``"valid"``
        device (str): Where to run. Default: ``"cpu"``
        batch_size (int): Images per forward pass. Default: 256
        class_names (str or sequence of str, optional): The model's class names in output
            order (``"angry,disgust,..."``). Default: what the model declares
        input_spec (InputSpec or dict, optional): Explicit input-spec fields; the rest is what
            the model declares (see :func:`~captum_fau.train.predict.predict`). Default: None
    """

    fold: int = 0
    variant: str = "+AD"
    selected_iteration: int = 0
    selection: str = "valid"
    device: str = "cpu"
    batch_size: int = 256
    class_names: str | Sequence[str] | None = None
    input_spec: Any = None


def evaluate_model(
    model: nn.Module, data: FaceSet, options: EvaluateOptions | None = None, **settings: Any
) -> FoldResult:
    """Evaluate ``model`` on ``data``'s labelled images, matching classes by name.

    The model's class names (``class_names``, else its ``class_names`` / ``config`` /
    ``pretrained_cfg``) are mapped onto ``data.class_names`` by emotion name
    (:func:`~captum_fau.inputs.classes.model_class_mapping`); images of classes the model
    lacks are left out and counted in ``extra["notes"]``. Scores come from
    :func:`~captum_fau.inputs.classes.mapped_accuracy`.

    Args:
        model (nn.Module): A classifier.
        data (FaceSet): The held-out images.
        options (EvaluateOptions, optional): Device, batch size, class names, input spec and what the
            result records. Default: ``EvaluateOptions()``
        **settings: :class:`EvaluateOptions` fields as keywords (``device="cuda", class_names=...``); they
            override ``options``.

    Returns:
        FoldResult: accuracy and confusion matrix (in the model's class order, see
        ``extra["class_names"]``), with the mapping in ``extra["mapping"]``.

    Raises:
        LabelError: the mapping cannot be built (no class names, a count that differs from
            the model's outputs, names that are not emotions) or no image has a class of the model.
    """
    opts = with_settings(EvaluateOptions, options, settings)
    mapping = evaluation_mapping(model, data, opts.class_names)
    labelled = check_labelled(data, "test")
    preds = predict(model, data.subset(labelled), opts.device, opts.batch_size, opts.input_spec)
    scores = mapped_accuracy(preds, data.emotions[labelled], mapping)
    if scores["accuracy"] is None:
        raise LabelError(f"No test image has a class of the model: {'; '.join(scores['notes'] + list(mapping.notes))}.")
    return FoldResult(
        fold=opts.fold,
        variant=opts.variant,
        accuracy=scores["accuracy"],
        confusion=np.asarray(scores["confusion"], dtype=np.int64),
        selected_iteration=opts.selected_iteration,
        selection=opts.selection,
        extra={
            "class_names": scores["class_names"],
            "mapping": mapping.to_dict(),
            "notes": list(mapping.notes),
            "n_left_out": scores["n_left_out"],
        },
    )


def evaluation_mapping(model: nn.Module, data: FaceSet, class_names: str | Sequence[str] | None = None) -> ClassMapping:
    """The mapping :func:`evaluate_model` scores through; raise when there is none.

    Raises:
        ConfigError: explicit ``class_names`` with duplicates or the wrong count.
        LabelError: the model declares no usable class names, or names that are not emotions.
    """
    outputs = getattr(model, "num_classes", None)
    labels = data.emotions if data.emotions is not None else None
    mapping, notes = model_class_mapping(
        model, data.class_names, class_names=class_names, labels=labels,
        num_outputs=outputs if isinstance(outputs, int) else None,
    )  # fmt: skip
    if mapping is None:
        raise LabelError(
            f"Cannot match the model's classes to the data's {tuple(data.class_names)}: " + "; ".join(notes) + "."
        )
    return mapping


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=0))


#: How a results table names the model of its rows unless ``meta["method"]`` says otherwise.
DEFAULT_METHOD = "Zero-bias CNN"


def model_label(model: nn.Module, spec: str | None = None) -> str:
    """The name a results row gives ``model``: its architecture, and the spec it was loaded from.

    Examples::

        >>> from torch import nn
        >>> model_label(nn.Sequential(), "my_pkg.models:build")
        'Sequential (my_pkg.models:build)'
    """
    from captum_fau.models.zerobias import ZeroBiasCNN

    if isinstance(model, ZeroBiasCNN):
        kind = DEFAULT_METHOD
    else:
        kind = str((getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__)
    return f"{kind} ({spec})" if spec and spec != kind else kind


@dataclass
class ResultsTable:
    """Per-fold results of every variant of one protocol.

    Args:
        title (str): E.g. ``"CK+ 8-class, 10 subject folds"``.
        class_names (sequence of str): Class names in label order.
        folds (list of FoldResult): Results, any variants, any folds.
        meta (dict): Protocol, budget, device, data description; ``meta["method"]`` names the model in
            the rows (default ``"Zero-bias CNN"``, what :func:`~captum_fau.train.protocols.run_protocol` trains;
            :func:`model_label` for any other model).

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
        method = self.meta.get("method", DEFAULT_METHOD)
        lines = [f"### {self.title}", "", "| Method | Accuracy (%) | Folds | Selection |", "|---|---|---|---|"]
        label = {v: f"{method} {v if v != 'plain' else ''}".rstrip() for v in summary}
        for variant, s in summary.items():
            selection = ", ".join(s["selections"])
            if "test" in s["selections"]:
                selection += " (checkpoint chosen on the test fold: optimistic, the reference's protocol)"
            lines.append(
                f"| {label[variant]} | {100 * s['mean']:.1f} ± {100 * s['std']:.1f} | {s['n_folds']} | {selection} |"
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
            f"Confusion matrix, {label[variant]}, summed over folds (% of each true class; rows = true, "
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
        except OutputError:
            raise  # already names the folder and the fix (a full disk, a read-only folder)
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
    "DEFAULT_METHOD",
    "EvaluateOptions",
    "VARIANT_ORDER",
    "FoldResult",
    "ResultsTable",
    "confusion_matrix",
    "evaluate_model",
    "model_label",
    "evaluation_mapping",
    "per_class_accuracy",
]
