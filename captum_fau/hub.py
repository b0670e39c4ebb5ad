"""Publishing zoo models to a Hugging Face Hub repository.

A zoo entry is published as one Hub repository holding exactly three files:

* ``config.json`` -- the constructor arguments in timm's Hub layout (what
  :meth:`ZeroBiasCNN.from_pretrained` and ``timm.create_model("hf-hub:...")`` read);
* ``model.safetensors`` -- the weights (never a pickle);
* ``README.md`` -- the model card, ``model_cards/<name>.md``: Hub YAML metadata
  (license, tags, datasets, ``model-index`` with the measured metrics) and the
  description, usage, training, evaluation, limitations and citation.

The weights come from the entry's *zoo folder*: ``zoo/<name>/`` as written by
``scripts/reproduce_paper.py``, or, for the model that ships inside the package,
``captum_fau/weights/<name>/``. Its ``metrics.json`` is the single source of the
numbers in the card: :func:`render_card` writes them in, :func:`check_card`
refuses a card whose ``model-index`` disagrees with them.

:func:`publish` assembles the folder, verifies that it loads, uploads it in one
commit, tags that commit and returns the commit hash to pin in
``captum_fau/zoo_registry.json`` (:func:`pin_registry` writes it, atomically,
only after a successful upload). ``scripts/publish_to_hub.py`` is its command line.

Examples::

    >>> from captum_fau import hub
    >>> card = hub.render_card("zerobias-synthfacs-8class")
    >>> hub.card_metrics(card)["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from captum_fau import zoo
from captum_fau._utils.io import atomic_write_text
from captum_fau.errors import ConfigError, HubError, WeightsError, ZooWeightsUnavailable

#: The files of a published repository, in upload order.
HUB_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "README.md")
#: The repository checkout this module belongs to (holds ``model_cards/`` and ``zoo/``).
REPO_ROOT = zoo.PACKAGE_DIR.parent
DEFAULT_CARDS_DIR = REPO_ROOT / "model_cards"
DEFAULT_ZOO_DIR = REPO_ROOT / "zoo"
PAPER_TITLE = "Do Deep Neural Networks Learn Facial Action Units When Doing Expression Recognition?"
PAPER_ARXIV = "1510.02969"
#: Keys of ``model-index`` metrics and the ``metrics.json`` keys they come from (first found wins).
METRIC_SOURCES: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy_mean", "accuracy"),
    "accuracy_std": ("accuracy_std",),
}
_REPO_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


# ----------------------------------------------------------------------------- inputs


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it reads ``ORG/NAME`` as the Hub allows, else raise :class:`ConfigError`.

    Args:
        repo_id (str): e.g. ``"my-lab/zerobias-ckplus-8class"``.

    Returns:
        str: ``repo_id``.
    """
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ConfigError(
            f"Repository id {repo_id!r} is not valid: it must read ORG/NAME (letters, digits, '-', '_', '.', "
            "no '--' or '..', at most 96 characters each), e.g. --repo-id my-lab/zerobias-ckplus-8class."
        )
    return repo_id


def zoo_folder(name: str, zoo_dir: str | Path | None = None) -> Path:
    """The folder holding the trained model of zoo entry ``name``.

    ``ZOO_DIR/<name>/`` when it exists (the output of ``scripts/reproduce_paper.py``),
    otherwise the weights packaged inside ``captum_fau`` for entries that ship them.

    Args:
        name (str): A zoo name.
        zoo_dir (str or Path, optional): Where trained model folders are. Default: ``zoo/``
            next to the package.

    Returns:
        Path: A folder with ``config.json``, ``model.safetensors`` and ``metrics.json``.

    Raises:
        UnknownModelError: ``name`` is not in the zoo.
        ZooWeightsUnavailable: no trained model exists for ``name``; the message names the
            command that trains it.
    """
    entry = zoo.info(name)
    base = Path(zoo_dir) if zoo_dir is not None else DEFAULT_ZOO_DIR
    candidates = [base / name]
    if entry.packaged:
        candidates.append(entry.packaged_dir)
    for folder in candidates:
        if (folder / zoo.WEIGHTS_FILENAME).is_file():
            return folder
    raise ZooWeightsUnavailable(
        f"There is no trained model for {name!r} to publish: none of {', '.join(str(c) for c in candidates)} "
        f"holds {zoo.WEIGHTS_FILENAME}.\n  Train it first ({entry.training_data}; {entry.dataset_hint})\n"
        f"  with: {entry.train_command}\n  which writes zoo/{name}/; or pass --zoo-dir to the folder that holds it."
    )


def load_metrics(folder: str | Path) -> dict[str, Any]:
    """Read ``metrics.json`` of a zoo folder, raising :class:`WeightsError` when it is missing or unreadable."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise WeightsError(
            f"{path} is missing: a zoo folder must say how well its model does before it is published. "
            "scripts/reproduce_paper.py and scripts/train_synthfacs_zoo.py write it next to the weights."
        )
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path} is not valid JSON ({err}); regenerate it with the training script.") from err
    measured = measured_metrics(metrics)
    if "accuracy" not in measured:
        raise WeightsError(f"{path} has no accuracy ('accuracy_mean' or 'accuracy'); regenerate it with the training script.")
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


# ----------------------------------------------------------------------------- cards


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _yaml_header(entry: zoo.ZooEntry, metrics: dict[str, Any] | None) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    trained = metrics is not None
    dataset = _dataset_ids(entry)
    eval_results = None
    if trained:
        measured = measured_metrics(metrics)
        split = _protocol(entry, metrics)
        eval_results = [
            EvalResult(
                task_type="image-classification",
                task_name="Facial expression recognition",
                dataset_type=dataset[0],
                dataset_name=_dataset_name(entry),
                dataset_split=split,
                metric_type=key,
                metric_name={"accuracy": "Test accuracy (mean)", "accuracy_std": "Test accuracy (std)"}[key],
                metric_value=value,
            )
            for key, value in measured.items()
        ]
    data = ModelCardData(
        license="bsd-3-clause",
        library_name="captum-fau",
        pipeline_tag="image-classification",
        tags=[
            "facial-expression-recognition",
            "facial-action-units",
            "zero-bias-cnn",
            "captum",
            "timm",
            "safetensors",
            "image-classification",
        ],
        datasets=dataset,
        metrics=["accuracy"],
        model_name=entry.name,
        eval_results=eval_results,
    )
    return data.to_yaml()


def _dataset_ids(entry: zoo.ZooEntry) -> list[str]:
    if "synthfacs" in entry.name:
        return ["synthfacs"]
    if "ckplus" in entry.name:
        return ["ckplus"]
    return ["tfd"]


def _dataset_name(entry: zoo.ZooEntry) -> str:
    return {"synthfacs": "SynthFACS", "ckplus": "Extended Cohn-Kanade (CK+)", "tfd": "Toronto Face Database (TFD)"}[
        _dataset_ids(entry)[0]
    ]


def _protocol(entry: zoo.ZooEntry, metrics: dict[str, Any]) -> str:
    if "evaluation" in entry.metrics and "synthfacs" in entry.name:
        return str(entry.metrics["evaluation"])
    folds = metrics.get("fold_accuracies")
    n = len(folds) if isinstance(folds, list) else metrics.get("folds_measured", 1)
    return f"test folds, mean over {n} subject-independent fold(s)"


def _json_block(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


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
    entry = zoo.info(name)
    try:
        folder: Path | None = zoo_folder(name, zoo_dir)
    except ZooWeightsUnavailable:
        folder = None
    metrics = load_metrics(folder) if folder is not None else None
    size = model_size(entry.architecture)
    classes = ", ".join(f"{i} `{c}`" for i, c in enumerate(entry.class_names))
    pre = entry.preprocessing
    paper = entry.metrics.get("paper_accuracy")
    lines: list[str] = ["---", _yaml_header(entry, metrics).rstrip("\n"), "---", "", f"# {entry.name}", ""]
    add = lines.append

    if metrics is None:
        add(
            f"> **Weights not yet trained or published.** This card describes the model that "
            f"`{entry.train_command}` produces. No accuracy below was measured with these weights: "
            f'the numbers quoted are the paper\'s. `zoo.load("{entry.name}")` raises '
            "`ZooWeightsUnavailable` until the weights are trained (or published and pinned)."
        )
        add("")
    add(
        f"A zero-bias CNN (Khorrami, Paine & Huang, ICCV Workshops 2015) that classifies "
        f"{len(entry.class_names)} facial expressions from a {pre['size']}x{pre['size']} grayscale face, "
        f"trained on {entry.training_data}. It is part of the "
        "captum-fau model zoo, whose top-N deconvolution "
        "(`TopNDeconv`) and filter-action-unit analysis (`FAUKL`) ask what its filters learned."
    )
    add("")

    add("## Model details")
    add("")
    add("| | |")
    add("|---|---|")
    add("| Architecture | zero-bias CNN: conv 5x5 64 / 128 / 256 filters without biases, ReLU, 2x2 max pooling "
        "after conv1 and conv2, quadrant max pooling (1,024 features), dropout 0.5, fc 300 + ReLU, linear output |")
    add(f"| Parameters | {size['params']:,} |")
    add(f"| GMACs (one image) | {size['gmacs']:.3f} |")
    add(f"| Input | `[batch, {entry.architecture['in_chans']}, {pre['size']}, {pre['size']}]` float32 |")
    add(f"| Classes (output index) | {classes} |")
    add(f"| Face crop | {pre['face_crop']} |")
    add(f"| Pixel scale | `{pre['pixel_scale']}`, then subtraction of the local {pre['local_mean_subtraction']}x"
        f"{pre['local_mean_subtraction']} mean |")
    add("| Weights | `model.safetensors` (safetensors only) + `config.json` (timm Hub layout) |")
    add("| License | BSD-3-Clause (code and weights); the training data keep their own licenses |")
    add("")

    add("## How to use")
    add("")
    add("```bash")
    add("pip install captum-fau")
    add("```")
    add("")
    if metrics is not None:
        add("Load it from the zoo (checksum-verified, pinned revision):")
        add("")
        add("```python")
        add("import torch")
        add("from captum_fau import zoo")
        add("")
        add(f'model = zoo.load("{entry.name}")  # eval mode, checksum verified')
        add("x = torch.zeros(1, 1, 96, 96)  # a preprocessed face")
        add("probs = model(x).softmax(-1)")
        add('print(model.config["zoo"]["class_names"][int(probs.argmax())])')
        add("```")
        add("")
        add("or with timm (importing `captum_fau` registers the architecture):")
        add("")
        add("```python")
        add("import timm")
        add("import captum_fau  # noqa: F401  (registers zerobias_cnn with timm)")
        add("")
        add(f'timm_model = timm.create_model("hf-hub:{entry.repo_id}", pretrained=True).eval()')
        add("```")
    else:
        add("Train it, then load the trained folder through the zoo (which attaches the metadata):")
        add("")
        add("```bash")
        add(entry.train_command)
        add("```")
        add("")
        add("```python")
        add("import torch")
        add("from captum_fau import zoo")
        add("")
        add(f'model = zoo.load("{entry.name}", weights="zoo/{entry.name}")')
        add("x = torch.zeros(1, 1, 96, 96)  # a preprocessed face")
        add('print(model.config["zoo"]["class_names"][int(model(x).argmax())])')
        add("```")
        add("")
        add(f'Once published and pinned, `zoo.load("{entry.name}")` and '
            f'`timm.create_model("hf-hub:{entry.repo_id}", pretrained=True)` load it without the folder.')
    add("")
    add("What do its conv3 filters respond to? Top-N deconvolution and the filter-AU association, "
        "on built-in SynthFACS faces with known action units:")
    add("")
    add("```python")
    add("from captum_fau import FAUKL, TopNDeconv")
    add("from captum_fau.data.synthfacs import load_synthfacs")
    add("")
    add("faces = load_synthfacs(64, seed=0)")
    add('topn = TopNDeconv(model, "conv3", rule="guided")')
    add("res = topn.top_n(faces, n=3, filters=range(4), progress=False)")
    add("print(res.indices.shape)  # [4 filters, 3 images]")
    add('fau = FAUKL(model, layers=["conv3"], n_permutations=20, n_bootstrap=0, progress=False)')
    add("scores = fau.interpret(faces)")
    add("print(scores.top_au(0))  # the action unit filter 0 tracks best")
    add("```")
    add("")

    add("## Training")
    add("")
    add(f"* Data: {entry.training_data}. {entry.dataset_hint}")
    add("* Recipe: the reference code's (SGD, lr 0.01, momentum 0.9, weight decay 1e-5, batch 64 sampled "
        "with replacement, dropout 0.5 on the pooled features, per-image augmentation: rotation +-5 degrees, "
        "scale 0.7-1.4, translation, horizontal flip, intensity gamma).")
    add("* Protocol: subject-independent folds; the checkpoint is selected on a **validation** fold, never on "
        "the test fold (the paper-era code selected on test; that choice is only reported as a labelled "
        "comparison).")
    add(f"* Command: `{entry.train_command}`")
    if metrics is not None:
        recipe = metrics.get("recipe", {})
        add(f"* Iterations: {metrics.get('iterations', recipe.get('iterations', 'n/a'))}"
            + (f" (the reference trained {metrics['reference_iterations']:,})" if "reference_iterations" in metrics else ""))
        if "selection" in metrics:
            add(f"* Selection: {metrics['selection']}")
        if "note" in metrics:
            add(f"* Note: {metrics['note']}")
        if recipe:
            add("")
            add("<details><summary>Full recipe</summary>")
            add("")
            add("```json")
            add(_json_block(recipe))
            add("```")
            add("")
            add("</details>")
    add("")

    add("## Evaluation")
    add("")
    if metrics is not None:
        measured = measured_metrics(metrics)
        std = measured.get("accuracy_std")
        std_kind = metrics.get("accuracy_std_kind", "std")
        add("| Metric | Value (mean ± std) | Protocol |")
        add("|---|---|---|")
        add(f"| Accuracy | {_pct(measured['accuracy'])}% ± {_pct(std) if std is not None else 'n/a'} | "
            f"{_protocol(entry, metrics)}; std: {std_kind} |")
        if "accuracy_ci95" in metrics:
            lo, hi = metrics["accuracy_ci95"]
            add(f"| Accuracy 95% CI | {_pct(lo)}% - {_pct(hi)}% | {metrics.get('accuracy_ci95_kind', 'bootstrap')} |")
        if isinstance(metrics.get("fold_accuracies"), list):
            add(f"| Fold accuracies | {', '.join(_pct(a) for a in metrics['fold_accuracies'])} | one per test fold |")
        if "accuracy_pooled" in metrics:
            add(f"| Accuracy pooled over folds | {_pct(metrics['accuracy_pooled'])}% | every test image counted once |")
        test_sel = metrics.get("comparison_reference_test_selection")
        if isinstance(test_sel, dict) and "accuracy_mean" in test_sel:
            add(f"| Checkpoint chosen on the test fold (comparison only) | {_pct(test_sel['accuracy_mean'])}% ± "
                f"{_pct(test_sel['accuracy_std'])} | the paper-era code's optimistic selection, not the result |")
        if paper:
            add(f"| Paper (for comparison, not measured here) | {paper} | CK+/TFD, the paper's protocol |")
        per_class = metrics.get("per_class_accuracy")
        if isinstance(per_class, dict) and per_class:
            add("")
            add("Per-class accuracy:")
            add("")
            add("| " + " | ".join(per_class) + " |")
            add("|" + "---|" * len(per_class))
            add("| " + " | ".join(f"{_pct(v)}%" for v in per_class.values()) + " |")
    else:
        add("Not measured: the weights are not trained yet. The paper reports, for this model "
            f"(zero-bias CNN with augmentation and dropout): **{paper}** (the paper's number, "
            "selected on the test fold by the paper-era code). `scripts/reproduce_paper.py` measures "
            "mean ± std over the folds with validation selection and writes them to `metrics.json`; "
            "regenerate this card from it before publishing.")
    add("")

    add("## Limitations and ethical considerations")
    add("")
    add("* **An expression is not an emotion.** The model labels facial configurations; it does not know "
        "what a person feels. Posed or acted expressions (as in CK+ and TFD) differ from spontaneous ones, "
        "and the same expression means different things across people, cultures and contexts.")
    add("* **Consent.** Only analyse faces of people who agreed to it, for a purpose they were told about. "
        "Faces are biometric data under the GDPR and similar laws.")
    add("* **Demographic coverage.** CK+ has 123 adult subjects aged 18-50 (about 69% female, 81% "
        "Euro-American, 13% Afro-American, 6% other, as its authors report); TFD aggregates several posed-"
        "expression collections whose demographics are not documented. Accuracy on other ages, skin tones, "
        "head poses, lighting or cameras is unknown and likely lower. SynthFACS faces are synthetic renderings, "
        "not people: accuracy on them says nothing about real faces.")
    add("* **Legal limits.** The EU AI Act (Regulation 2024/1689, Art. 5(1)(f)) prohibits AI systems that infer "
        "emotions of people in workplaces and education institutions, except for medical or safety reasons, "
        "and classifies other emotion recognition as high-risk. Other jurisdictions restrict biometric "
        "processing too. Do not use this model to judge, hire, grade, monitor or police people.")
    add("* **Intended use.** Research on what expression networks learn (the paper's question), teaching, "
        "and reproducing the paper.")
    add("")

    add("## Citation")
    add("")
    add("```bibtex")
    add("@inproceedings{khorrami2015deep,")
    add(f"  title     = {{{PAPER_TITLE}}},")
    add("  author    = {Khorrami, Pooya and Paine, Tom Le and Huang, Thomas S.},")
    add("  booktitle = {Proceedings of the IEEE International Conference on Computer Vision Workshops (ICCVW)},")
    add("  year      = {2015},")
    add(f"  eprint    = {{{PAPER_ARXIV}}},")
    add("  archivePrefix = {arXiv}")
    add("}")
    add("```")
    add("")
    return "\n".join(lines)


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
            f"Regenerate the card: python scripts/publish_to_hub.py {name} --write-card"
        )


def card_path(name: str, cards_dir: str | Path | None = None) -> Path:
    """``model_cards/<name>.md``."""
    return Path(cards_dir if cards_dir is not None else DEFAULT_CARDS_DIR) / f"{name}.md"


def write_card(name: str, cards_dir: str | Path | None = None, zoo_dir: str | Path | None = None) -> Path:
    """Render the card of ``name`` and write it (atomically) to ``model_cards/<name>.md``."""
    return atomic_write_text(card_path(name, cards_dir), render_card(name, zoo_dir))


# ----------------------------------------------------------------------------- the Hub folder


@dataclass
class HubFolder:
    """A folder ready to upload.

    Attributes:
        name: The zoo name.
        path: The folder (holds exactly :data:`HUB_FILES`).
        files: ``{file name: {"size": bytes, "sha256": hex}}``.
    """

    name: str
    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Checksum of ``model.safetensors`` (what the registry pins)."""
        return self.files[zoo.WEIGHTS_FILENAME]["sha256"]

    def describe(self) -> str:
        """One line per file: size and sha256."""
        return "\n".join(f"  {f:18s} {d['size']:>10,d} bytes  sha256 {d['sha256']}" for f, d in self.files.items())


def assemble_hub_folder(
    name: str,
    out: str | Path,
    *,
    zoo_dir: str | Path | None = None,
    cards_dir: str | Path | None = None,
) -> HubFolder:
    """Copy a zoo entry's weights, config and checked card into ``out`` (the exact Hub layout).

    Args:
        name (str): A zoo name.
        out (str or Path): An empty or new folder.
        zoo_dir (str or Path, optional): Where trained model folders are. Default: ``zoo/``.
        cards_dir (str or Path, optional): Where the model cards are. Default: ``model_cards/``.

    Returns:
        HubFolder: The assembled folder.

    Raises:
        ZooWeightsUnavailable: the entry has no trained model (the message names the train command).
        WeightsError: ``metrics.json`` or ``config.json`` is missing.
        ConfigError: the card is missing, its YAML invalid, or its metrics disagree with ``metrics.json``.
    """
    source = zoo_folder(name, zoo_dir)
    metrics = load_metrics(source)
    if not (source / "config.json").is_file():
        raise WeightsError(f"{source / 'config.json'} is missing; save the model with ZeroBiasCNN.save_pretrained().")
    card_file = card_path(name, cards_dir)
    if not card_file.is_file():
        raise ConfigError(
            f"The model card {card_file} is missing. Write it from metrics.json with: "
            f"python scripts/publish_to_hub.py {name} --write-card"
        )
    card = card_file.read_text(encoding="utf-8")
    check_card(name, card, metrics)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; give a new or empty folder to assemble the Hub repository in.")
    shutil.copyfile(source / "config.json", out / "config.json")
    shutil.copyfile(source / zoo.WEIGHTS_FILENAME, out / zoo.WEIGHTS_FILENAME)
    (out / "README.md").write_text(card, encoding="utf-8")
    folder = HubFolder(name=name, path=out)
    for f in HUB_FILES:
        folder.files[f] = {"size": (out / f).stat().st_size, "sha256": zoo.sha256_file(out / f)}
    return folder


def verify_hub_folder(folder: HubFolder) -> None:
    """Check that the folder loads through both public loaders and matches the zoo entry.

    Loads it with :meth:`ZeroBiasCNN.from_pretrained` and with
    ``timm.create_model("local-dir:...")`` (the loader ``"hf-hub:..."`` uses once uploaded),
    and checks that both give the same tensors and the architecture of the registry entry.

    Raises:
        WeightsError: the folder does not load, or the two loaders disagree.
    """
    import timm

    from captum_fau.models.zerobias import ZeroBiasCNN

    entry = zoo.info(folder.name)
    try:
        mixin_model = ZeroBiasCNN.from_pretrained(str(folder.path))
        timm_model = timm.create_model(f"local-dir:{folder.path}", pretrained=True)
    except Exception as err:
        raise WeightsError(f"The assembled folder {folder.path} does not load ({type(err).__name__}: {err}).") from err
    for key, value in entry.architecture.items():
        if getattr(mixin_model, key) != value:
            raise WeightsError(
                f"{folder.path}/config.json has {key}={getattr(mixin_model, key)!r} but the zoo entry "
                f"{folder.name!r} is {key}={value!r}; this is not the model of that entry."
            )
    a, b = mixin_model.state_dict(), timm_model.state_dict()
    if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
        raise WeightsError(f"from_pretrained and timm load different tensors from {folder.path}.")


# ----------------------------------------------------------------------------- publishing


@dataclass
class PublishResult:
    """What :func:`publish` did.

    Attributes:
        name: The zoo name.
        repo_id: The Hub repository.
        folder: The assembled folder (deleted after an upload unless kept).
        commit: The uploaded commit hash (``None`` for a dry run).
        tag: The tag created on that commit (``None`` for a dry run or without tag).
        commit_url: The commit's URL.
        pinned: Whether the registry was updated.
    """

    name: str
    repo_id: str
    folder: HubFolder
    commit: str | None = None
    tag: str | None = None
    commit_url: str | None = None
    pinned: bool = False

    def registry_pin(self) -> dict[str, Any]:
        """The registry fields to pin: ``{"repo_id", "revision", "sha256"}``."""
        return {"repo_id": self.repo_id, "revision": self.commit, "sha256": self.folder.sha256}


def _endpoint() -> str | None:
    """``HF_ENDPOINT`` as the environment says now (huggingface_hub reads it at import)."""
    value = os.environ.get("HF_ENDPOINT", "").strip()
    return value.rstrip("/") or None


def publish(
    name: str,
    repo_id: str,
    *,
    zoo_dir: str | Path | None = None,
    cards_dir: str | Path | None = None,
    tag: str | None = None,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    pin: bool = False,
    registry_file: str | Path | None = None,
    staging_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> PublishResult:
    """Assemble, verify, upload, tag and (optionally) pin one zoo entry.

    Args:
        name (str): A zoo name.
        repo_id (str): Target repository ``ORG/NAME``.
        zoo_dir (str or Path, optional): Where trained model folders are. Default: ``zoo/``.
        cards_dir (str or Path, optional): Where the cards are. Default: ``model_cards/``.
        tag (str, optional): Tag to create on the uploaded commit. Default: None
        private (bool, optional): Create the repository private. Default: False
        dry_run (bool, optional): Stop after verifying; upload nothing. Default: False
        token (str, optional): Hub token; by default huggingface_hub's own lookup
            (``HF_TOKEN``, ``hf auth login``). Never printed. Default: None
        pin (bool, optional): Write the commit and checksum into the registry after a
            successful upload. Default: False
        registry_file (str or Path, optional): The registry to pin into. Default: the package's.
        staging_dir (str or Path, optional): Where to assemble the folder (kept). Default: a
            temporary folder, removed afterwards.
        log (callable, optional): Where progress lines go. Default: ``print``

    Returns:
        PublishResult: The commit hash and what to pin.

    Raises:
        ConfigError, WeightsError, ZooWeightsUnavailable: bad inputs (nothing is uploaded).
        HubError: the upload or the tag failed (the registry is unchanged).
    """
    validate_repo_id(repo_id)
    zoo.info(name)  # unknown names fail here, listing the known ones
    tmp = None
    if staging_dir is None:
        tmp = tempfile.mkdtemp(prefix=f"captum-fau-publish-{name}-")
        staging = Path(tmp) / name
    else:
        staging = Path(staging_dir)
    try:
        folder = assemble_hub_folder(name, staging, zoo_dir=zoo_dir, cards_dir=cards_dir)
        log(f"Assembled {name} for {repo_id} in {folder.path}:\n{folder.describe()}")
        verify_hub_folder(folder)
        log("Verified: the folder loads with ZeroBiasCNN.from_pretrained and timm.create_model, identically.")
        result = PublishResult(name=name, repo_id=repo_id, folder=folder, tag=tag)
        if dry_run:
            log(f"Dry run: would upload these {len(folder.files)} files to {_endpoint() or 'https://huggingface.co'}"
                f"/{repo_id}" + (f" and tag the commit {tag!r}" if tag else "") + "; nothing was sent.")
            return result
        _upload(result, token=token, private=private, log=log)
        _check_uploaded(result, token=token)
        log(f"Verified the upload: {repo_id}@{result.commit} serves the same model.safetensors (sha256 {folder.sha256}).")
        if pin:
            pin_registry(name, result.commit, folder.sha256, repo_id=repo_id, registry_file=registry_file)
            result.pinned = True
        return result
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _upload(result: PublishResult, *, token: str | None, private: bool, log: Callable[[str], None]) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=_endpoint(), token=token)
    repo_id, folder = result.repo_id, result.folder
    step = "creating the repository"
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        step = "uploading the files"
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder.path),
            allow_patterns=list(HUB_FILES),
            commit_message=f"Upload {folder.name} (model.safetensors sha256 {folder.sha256[:12]})",
        )
        commit = getattr(info, "oid", None)
        if not commit or not re.fullmatch(r"[0-9a-f]{40}", str(commit)):
            raise HubError(f"the server answered without a commit hash ({info!r})")
        result.commit, result.commit_url = str(commit), getattr(info, "commit_url", None)
        if result.tag:
            step = f"tagging the commit {result.commit} as {result.tag!r}"
            api.create_tag(repo_id, tag=result.tag, revision=result.commit, tag_message=f"{folder.name} {folder.sha256[:12]}")
    except HubError as err:
        raise HubError(f"Publishing {folder.name} to {repo_id} failed while {step}: {err}. {_NOTHING_PINNED}") from err
    except Exception as err:  # huggingface_hub raises HTTP, connection and value errors
        hint = ""
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            hint = " Check the token (HF_TOKEN or `hf auth login`) has write access to the organisation."
        elif status == 409 and result.tag:
            hint = f" The tag {result.tag!r} exists already: choose another --tag."
        raise HubError(
            f"Publishing {folder.name} to {repo_id} failed while {step} "
            f"({type(err).__name__}: {_first_line(err).rstrip('.')}).{hint} {_NOTHING_PINNED}"
            + (f" The files were committed as {result.commit}." if result.commit else "")
        ) from err
    log(f"Uploaded {folder.name} to {repo_id}: commit {result.commit}" + (f", tag {result.tag}" if result.tag else ""))


_NOTHING_PINNED = "The zoo registry was not changed; fix the cause and run the command again."


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else ""


def _check_uploaded(result: PublishResult, *, token: str | None) -> None:
    """Download the weights at the new commit into a temporary cache and compare checksums;
    load the commit with ``timm.create_model("hf-hub:REPO@COMMIT")`` as users will."""
    import timm
    from huggingface_hub import hf_hub_download

    with tempfile.TemporaryDirectory(prefix="captum-fau-verify-") as cache:
        try:
            path = hf_hub_download(
                result.repo_id,
                zoo.WEIGHTS_FILENAME,
                revision=result.commit,
                cache_dir=cache,
                endpoint=_endpoint(),
                token=token,
            )
        except Exception as err:
            raise HubError(
                f"The upload of {result.name} was committed as {result.commit}, but downloading it back failed "
                f"({type(err).__name__}: {_first_line(err)}). {_NOTHING_PINNED}"
            ) from err
        if zoo.sha256_file(path) != result.folder.sha256:
            raise HubError(
                f"{result.repo_id}@{result.commit} serves a model.safetensors whose sha256 differs from the "
                f"uploaded one. {_NOTHING_PINNED}"
            )
        if _endpoint() is None or _endpoint() == _import_time_endpoint():
            # timm downloads through huggingface_hub's import-time endpoint; check it only when that is ours.
            model = timm.create_model(f"hf-hub:{result.repo_id}@{result.commit}", pretrained=True, cache_dir=cache)
            if model.num_classes != zoo.info(result.name).architecture["num_classes"]:
                raise HubError(f"timm.create_model('hf-hub:{result.repo_id}@{result.commit}') built the wrong model.")


def _import_time_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


# ----------------------------------------------------------------------------- the registry


def registry_text(raw: dict[str, dict[str, Any]]) -> str:
    """The registry file's layout: one entry per block, one field per line."""
    blocks = []
    for name, spec in raw.items():
        fields = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in spec.items())
        blocks.append(f"  {json.dumps(name)}: {{\n{fields}\n  }}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def pin_registry(
    name: str,
    revision: str,
    sha256: str,
    *,
    repo_id: str | None = None,
    registry_file: str | Path | None = None,
) -> Path:
    """Pin ``revision`` and ``sha256`` (and ``repo_id``) of ``name`` in the registry, atomically.

    Args:
        name (str): A zoo name.
        revision (str): The 40-hex commit hash.
        sha256 (str): The 64-hex checksum of ``model.safetensors``.
        repo_id (str, optional): The repository, when it differs from the registry's. Default: None
        registry_file (str or Path, optional): Default: ``captum_fau/zoo_registry.json``.

    Returns:
        Path: The registry file.
    """
    path = Path(registry_file) if registry_file is not None else zoo.REGISTRY_FILE
    if not re.fullmatch(r"[0-9a-f]{40}", revision or ""):
        raise ConfigError(f"Pin a full 40-character commit hash, not {revision!r} (tags and branches move).")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise ConfigError(f"{sha256!r} is not a sha256 hex digest.")
    raw = json.loads(path.read_text())
    if name not in raw:
        raise ConfigError(f"{name!r} is not in {path}; known: {', '.join(raw)}.")
    raw[name]["revision"] = revision
    raw[name]["sha256"] = sha256
    if repo_id is not None:
        raw[name]["repo_id"] = validate_repo_id(repo_id)
    atomic_write_text(path, registry_text(raw))
    if path.resolve() == zoo.REGISTRY_FILE.resolve():
        zoo._registry.cache_clear()
    return path


__all__ = [
    "HUB_FILES",
    "HubFolder",
    "PublishResult",
    "assemble_hub_folder",
    "card_metrics",
    "card_path",
    "check_card",
    "load_metrics",
    "measured_metrics",
    "model_size",
    "pin_registry",
    "publish",
    "registry_text",
    "render_card",
    "validate_repo_id",
    "verify_hub_folder",
    "write_card",
    "zoo_folder",
]
