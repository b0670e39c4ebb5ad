"""Model cards (the Hub ``README.md``) of zoo entries, rendered from a Jinja template.

The text lives in ``captum_fau/zoo/templates/model_card.md.j2``; the functions here only
build what the template fills in. huggingface_hub's :meth:`ModelCard.from_template` renders
it with the YAML metadata (license, tags, datasets, ``model-index`` with the measured
metrics). An entry's ``metrics.json`` (in its zoo folder) is the single source of the
numbers: :func:`render_card` writes them in, :func:`check_card` refuses a card whose
``model-index`` disagrees with them. The committed cards are ``model_cards/<name>.md``.

Examples::

    >>> from captum_fau.zoo import cards
    >>> card = cards.render_card("zerobias-synthfacs-8class")
    >>> cards.card_metrics(card)["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from captum_fau.errors import ConfigError, WeightsError, ZooWeightsUnavailable
from captum_fau._utils.io import atomic_write_text
from captum_fau.zoo import registry
from captum_fau.zoo.registry import ZooEntry

TEMPLATE_FILE = Path(__file__).resolve().parent / "templates" / "model_card.md.j2"
PAPER_TITLE = "Do Deep Neural Networks Learn Facial Action Units When Doing Expression Recognition?"
PAPER_ARXIV = "1510.02969"
#: Keys of ``model-index`` metrics and the ``metrics.json`` keys they come from (first found wins).
METRIC_SOURCES: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy_mean", "accuracy"),
    "accuracy_std": ("accuracy_std",),
}
_METRIC_NAMES = {"accuracy": "Test accuracy (mean)", "accuracy_std": "Test accuracy (std)"}
_TAGS = ["facial-expression-recognition", "facial-action-units", "zero-bias-cnn", "captum", "timm", "safetensors",
         "image-classification"]  # fmt: skip
_DATASETS = {"synthfacs": "SynthFACS", "ckplus": "Extended Cohn-Kanade (CK+)", "tfd": "Toronto Face Database (TFD)"}


# ----------------------------------------------------------------------------- metrics


def load_metrics(folder: str | Path) -> dict[str, Any]:
    """Read ``metrics.json`` of a zoo folder, raising :class:`WeightsError` when it is missing or unreadable."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise WeightsError(
            f"{path} is missing: a zoo folder must say how well its model does before it is published. "
            "captum-fau reproduce writes it next to the weights."
        )
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path} is not valid JSON ({err}); regenerate it with the training script.") from err
    if "accuracy" not in measured_metrics(metrics):
        raise WeightsError(
            f"{path} has no accuracy ('accuracy_mean' or 'accuracy'); regenerate it with the training script."
        )
    return metrics


def measured_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The ``model-index`` metrics of a ``metrics.json``: ``{"accuracy": ..., "accuracy_std": ...}``."""
    out = {}
    for key, sources in METRIC_SOURCES.items():
        for source in sources:
            if isinstance(metrics.get(source), (int, float)):
                out[key] = float(metrics[source])
                break
    return out


def model_size(architecture: dict[str, Any]) -> dict[str, float]:
    """Parameter count and GMACs of one forward pass of a single image.

    MACs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and
    matrix products; one MAC = two FLOPs).

    Args:
        architecture (dict): Keyword arguments of :class:`ZeroBiasCNN`.

    Returns:
        dict: ``{"params": int, "gmacs": float}``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from captum_fau.models.zerobias import ZeroBiasCNN

    model = ZeroBiasCNN(**architecture, init_k=1.0).eval()
    x = torch.zeros(1, model.in_chans, model.img_size, model.img_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return {"params": sum(p.numel() for p in model.parameters()), "gmacs": counter.get_total_flops() / 2e9}


# ----------------------------------------------------------------------------- what the template fills in


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _dataset_id(entry: ZooEntry) -> str:
    return next((key for key in ("synthfacs", "ckplus") if key in entry.name), "tfd")


def _protocol(entry: ZooEntry, metrics: dict[str, Any]) -> str:
    if "evaluation" in entry.metrics and "synthfacs" in entry.name:
        return str(entry.metrics["evaluation"])
    folds = metrics.get("fold_accuracies")
    n = len(folds) if isinstance(folds, list) else metrics.get("folds_measured", 1)
    return f"test folds, mean over {n} subject-independent fold(s)"


def card_data(entry: ZooEntry, metrics: dict[str, Any] | None) -> Any:
    """The card's YAML metadata (:class:`huggingface_hub.ModelCardData`); results only when trained."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = _dataset_id(entry)
    eval_results = None
    if metrics is not None:
        eval_results = [
            EvalResult(
                task_type="image-classification",
                task_name="Facial expression recognition",
                dataset_type=dataset,
                dataset_name=_DATASETS[dataset],
                dataset_split=_protocol(entry, metrics),
                metric_type=key,
                metric_name=_METRIC_NAMES[key],
                metric_value=value,
            )
            for key, value in measured_metrics(metrics).items()
        ]
    return ModelCardData(
        license="bsd-3-clause",
        library_name="captum-fau",
        pipeline_tag="image-classification",
        tags=list(_TAGS),
        datasets=[dataset],
        metrics=["accuracy"],
        model_name=entry.name,
        eval_results=eval_results,
    )


def _training_context(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Bullets after the fixed training text (iterations, selection, note) and the recipe as JSON."""
    if metrics is None:
        return {"training_lines": [], "recipe_json": None}
    recipe = metrics.get("recipe", {})
    iterations = f"Iterations: {metrics.get('iterations', recipe.get('iterations', 'n/a'))}"
    if "reference_iterations" in metrics:
        iterations += f" (the reference trained {metrics['reference_iterations']:,})"
    lines = [iterations]
    lines += [
        f"{label}: {metrics[key]}" for key, label in (("selection", "Selection"), ("note", "Note")) if key in metrics
    ]
    return {"training_lines": lines, "recipe_json": json.dumps(recipe, indent=2, sort_keys=True) if recipe else None}


def _evaluation_context(entry: ZooEntry, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The rows of the evaluation table and the per-class accuracies of a trained entry."""
    if metrics is None:
        return {"evaluation_rows": [], "per_class": None}
    measured = measured_metrics(metrics)
    std = measured.get("accuracy_std")
    rows = [
        f"| Accuracy | {_pct(measured['accuracy'])}% ± {_pct(std) if std is not None else 'n/a'} | "
        f"{_protocol(entry, metrics)}; std: {metrics.get('accuracy_std_kind', 'std')} |"
    ]
    if "accuracy_ci95" in metrics:
        lo, hi = metrics["accuracy_ci95"]
        rows.append(
            f"| Accuracy 95% CI | {_pct(lo)}% - {_pct(hi)}% | {metrics.get('accuracy_ci95_kind', 'bootstrap')} |"
        )
    if isinstance(metrics.get("fold_accuracies"), list):
        rows.append(
            f"| Fold accuracies | {', '.join(_pct(a) for a in metrics['fold_accuracies'])} | one per test fold |"
        )
    if "accuracy_pooled" in metrics:
        rows.append(
            f"| Accuracy pooled over folds | {_pct(metrics['accuracy_pooled'])}% | every test image counted once |"
        )
    test_sel = metrics.get("comparison_reference_test_selection")
    if isinstance(test_sel, dict) and "accuracy_mean" in test_sel:
        rows.append(
            f"| Checkpoint chosen on the test fold (comparison only) | {_pct(test_sel['accuracy_mean'])}% ± "
            f"{_pct(test_sel['accuracy_std'])} | the paper-era code's optimistic selection, not the result |"
        )
    paper = entry.metrics.get("paper_accuracy")
    if paper:
        rows.append(f"| Paper (for comparison, not measured here) | {paper} | CK+/TFD, the paper's protocol |")
    per_class = metrics.get("per_class_accuracy")
    table = None
    if isinstance(per_class, dict) and per_class:
        table = {"names": [*per_class], "accuracies": [f"{_pct(v)}%" for v in per_class.values()]}
    return {"evaluation_rows": rows, "per_class": table}


def card_context(entry: ZooEntry, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Every variable of the card template for ``entry`` (``metrics``: its ``metrics.json``, or ``None``)."""
    size = model_size(entry.architecture)
    pre = entry.preprocessing
    return {
        "entry": entry,
        "trained": metrics is not None,
        "n_classes": len(entry.class_names),
        "classes": ", ".join(f"{i} `{c}`" for i, c in enumerate(entry.class_names)),
        "in_chans": entry.architecture["in_chans"],
        "size": pre["size"],
        "face_crop": pre["face_crop"],
        "pixel_scale": pre["pixel_scale"],
        "local_mean": pre["local_mean_subtraction"],
        "params": f"{size['params']:,}",
        "gmacs": f"{size['gmacs']:.3f}",
        "paper": entry.metrics.get("paper_accuracy"),
        "paper_title": PAPER_TITLE,
        "paper_arxiv": PAPER_ARXIV,
        **_training_context(metrics),
        **_evaluation_context(entry, metrics),
    }


# ----------------------------------------------------------------------------- cards


def render_card(name: str, zoo_dir: str | Path | None = None) -> str:
    """The model card (Hub ``README.md``) of a zoo entry.

    Trained entries (a zoo folder with ``metrics.json``) get ``model-index`` results equal to
    the measured metrics. Entries without trained weights get a card that says so, quotes
    the paper's numbers as the paper's and gives the command that trains them.

    Args:
        name (str): A zoo name.
        zoo_dir (str or Path, optional): Where trained model folders are. Default: ``zoo/``.

    Returns:
        str: Markdown with a YAML front matter.
    """
    from huggingface_hub import ModelCard

    entry = registry.info(name)
    try:
        metrics = load_metrics(registry.zoo_folder(name, zoo_dir))
    except ZooWeightsUnavailable:
        metrics = None
    card = ModelCard.from_template(
        card_data(entry, metrics), template_path=str(TEMPLATE_FILE), **card_context(entry, metrics)
    )
    return str(card)


def card_metrics(card_text: str) -> dict[str, float]:
    """The ``model-index`` metric values of a card, ``{metric type: value}``.

    Args:
        card_text (str): A model card (Markdown with YAML front matter).

    Returns:
        dict: e.g. ``{"accuracy": 0.938, "accuracy_std": 0.0116}``; empty when the card has no results.

    Raises:
        ConfigError: the YAML front matter is missing or invalid.
    """
    from huggingface_hub import ModelCard

    if not card_text.lstrip().startswith("---"):
        raise ConfigError("The model card has no YAML front matter (a block between '---' lines at the top).")
    try:
        card = ModelCard(card_text, ignore_metadata_errors=False)
    except Exception as err:  # yaml.YAMLError, ValueError from model-index parsing
        raise ConfigError(f"The model card's YAML metadata is invalid ({err}).") from err
    return {r.metric_type: float(r.metric_value) for r in (card.data.eval_results or [])}


def check_card(name: str, card_text: str, metrics: dict[str, Any] | None) -> None:
    """Raise :class:`ConfigError` unless the card's ``model-index`` equals the measured metrics.

    Args:
        name (str): The zoo name (for the message).
        card_text (str): The card.
        metrics (dict or None): The zoo folder's ``metrics.json``; ``None`` for untrained entries,
            whose card must then claim no results.
    """
    found = card_metrics(card_text)
    expected = measured_metrics(metrics) if metrics is not None else {}
    if found != expected:
        raise ConfigError(
            f"The model card of {name!r} disagrees with its metrics.json: the card's model-index says "
            f"{found or 'nothing'}, metrics.json says {expected or 'nothing (no trained weights)'}. "
            f"Regenerate the card in Python: captum_fau.zoo.cards.write_card({name!r})"
        )


def card_path(name: str, cards_dir: str | Path | None = None) -> Path:
    """``model_cards/<name>.md`` (``cards_dir`` defaults to :data:`~captum_fau.zoo.registry.CARDS_DIR`)."""
    return Path(cards_dir if cards_dir is not None else registry.CARDS_DIR) / f"{name}.md"


def write_card(name: str, cards_dir: str | Path | None = None, zoo_dir: str | Path | None = None) -> Path:
    """Render the card of ``name`` and write it (atomically) to ``model_cards/<name>.md``."""
    return atomic_write_text(card_path(name, cards_dir), render_card(name, zoo_dir))


__all__ = [
    "METRIC_SOURCES",
    "TEMPLATE_FILE",
    "card_context",
    "card_data",
    "card_metrics",
    "card_path",
    "check_card",
    "load_metrics",
    "measured_metrics",
    "model_size",
    "render_card",
    "write_card",
]
