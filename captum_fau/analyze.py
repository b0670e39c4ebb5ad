"""The whole paper analysis on one model and one dataset, in one call.

:func:`analyze` reads the data **once** at the chosen layer, and from that one
scan builds the top-N deconvolution of every filter (paper §4.3) and the
FAU-KL association with statistics (§4.4, when the data has AU labels); it
adds accuracy and a confusion matrix when the data has emotion labels the
model can predict, and writes a self-contained HTML report with the paper's
figures plus machine-readable results.

Every step writes its outputs atomically and is recorded in
``OUT/analysis.json`` together with the parameters; rerunning with the same
parameters reuses finished steps, so an interrupted run resumes.

Examples::

    >>> from captum_fau.analyze import AnalysisConfig, analyze
    >>> config = AnalysisConfig(out="report", progress=False)
    >>> result = analyze("zerobias-synthfacs-8class", "synthfacs:200", config)  # doctest: +SKIP
    >>> result.report                                                    # doctest: +SKIP
    PosixPath('report/index.html')
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from captum_fau.errors import ConfigError, DatasetError, DistributedError, LabelError, LayerError, OutputError

STEPS = ("scan", "faukl", "accuracy", "sanity", "report")


@dataclass
class AnalysisResult:
    """What :func:`analyze` produced (``None`` for skipped parts).

    Attributes:
        out (Path): The output folder.
        topn: :class:`~captum_fau.attr.TopNResult` of the layer's filters.
        faukl: :class:`~captum_fau.concept.FAUKLResult`, or None without AU labels.
        accuracy (dict or None): ``accuracy``, ``confusion``, ``class_names``, ``n``.
        localisation (dict or None): Agreement of FAU-KL with AU regions (SynthFACS).
        featured (list of int): The filters shown in the figures.
        notes (list of str): What was adapted or skipped, and why.
        report (Path or None): ``index.html``.
        timings (dict): Seconds per step (0 for reused steps).
        sanity: :class:`~captum_fau.attr.sanity.SanityCheckResult` of the model-randomisation
            check, or None when it was switched off (``sanity_check=False``).
    """

    out: Path
    topn: Any
    faukl: Any | None
    accuracy: dict[str, Any] | None
    localisation: dict[str, Any] | None
    featured: list[int]
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    sanity: Any | None = None


class _Manifest:
    """``OUT/analysis.json``: the key of every finished step and what went into the keys, rewritten atomically
    after each step.

    A step's key hashes everything its result depends on (:func:`_step_keys`): the model's weights and
    preprocessing, the data's contents, the labels it reads, its own parameters and the keys of the steps
    it builds on. A step is reused only when its key and its files are unchanged.
    """

    FORMAT = 2

    def __init__(self, out: Path, fingerprint: dict[str, Any], params: dict[str, Any], resume: bool = True) -> None:
        self.path = out / "analysis.json"
        self.fingerprint = fingerprint
        self.params = params
        self.keys: dict[str, str] = {}
        self.done: dict[str, dict[str, Any]] = {}
        self._old: dict[str, Any] = {}
        if resume and self.path.is_file():
            try:
                old = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                old = {}
            if isinstance(old, dict) and old.get("format") == self.FORMAT and isinstance(old.get("steps"), dict):
                self._old = old["steps"]

    def key(self, step: str, **parts: Any) -> str:
        """Record and return the key of ``step`` from the named ``parts`` it depends on."""
        from captum_fau._utils.fingerprint import key

        self.keys[step] = key(parts)
        return self.keys[step]

    def finished(self, step: str, *files: Path) -> bool:
        """Whether an earlier run finished ``step`` with the key recorded by :meth:`key` and left ``files``."""
        old = self._old.get(step)
        return isinstance(old, dict) and step in self.keys and old.get("key") == self.keys[step] and all(
            f.exists() for f in files
        )

    def info(self, step: str) -> Any:
        """What the earlier run recorded for a finished ``step``."""
        return self._old[step].get("info")

    def mark(self, step: str, info: Any = True) -> None:
        from captum_fau._utils.io import atomic_write_text

        self.done[step] = {"key": self.keys.get(step), "info": info}
        self._old[step] = self.done[step]
        payload = {"format": self.FORMAT, "params": self.params, "fingerprint": self.fingerprint,
                   "steps": self._old}  # fmt: skip
        atomic_write_text(self.path, json.dumps(payload, indent=2, default=str) + "\n")


def _fingerprint(model: nn.Module, dataset: Dataset, **extra: Any) -> dict[str, Any]:
    """What identifies the inputs of the scan: the model (weights, class, preprocessing) and the data's contents.

    ``extra`` entries are added under ``"model"`` (the model's input specification: how raw crops become
    its inputs, local-mean padding included).
    """
    from captum_fau._utils.fingerprint import dataset_fingerprint, state_dict_hash

    model_part = {"class": f"{type(model).__module__}.{type(model).__qualname__}", "state_dict": state_dict_hash(model),
                  **extra}  # fmt: skip
    return {"model": model_part, "data": dataset_fingerprint(dataset)}


def _scan_inputs(run: "_Run") -> dict[str, Any]:
    """What the scan reads: the model's and the data's fingerprints, without the data's label hash (the steps
    that read labels key on the label arrays themselves)."""
    fingerprint = run.manifest.fingerprint
    return {"model": fingerprint["model"], "data": {k: v for k, v in fingerprint["data"].items() if k != "labels"}}


def _scan_key(run: "_Run") -> str:
    """The scan's key: :func:`_scan_inputs` and the scan's parameters."""
    config = run.config
    return run.manifest.key("scan", **_scan_inputs(run), layer=config.layer, n=config.n, rule=config.rule,
                            relu_like=config.relu_like)  # fmt: skip


def _label_key(scanned: "_Scanned", *names: str, **extra: Any) -> str:
    from captum_fau._utils.fingerprint import hash_arrays

    return hash_arrays(*[scanned.labels.get(name) for name in names], extra)


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"  # one per process: ranks share the folder
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"Cannot write to the output folder {out} ({err}); choose a writable --out.") from err


@dataclass
class AnalysisConfig:
    """Everything :func:`analyze` needs besides the model and the data, checked on construction.

    Invalid values raise a :mod:`captum_fau.errors` exception here, before any model is loaded
    or any image is read.

    Attributes:
        layer (str): Dotted name of the analysed layer. Default: ``"conv3"``
        out (Path): Output folder (a string is converted). Default: ``"captum-fau-report"``
        n (int): Top images per filter, the paper's N. Default: 10
        rule (str): ``"guided"``, ``"deconv"`` or ``"gradient"``. Default: ``"guided"``
        relu_like (bool): Apply ``deconv``/``guided`` to non-ReLU activations (GELU, SiLU, clamp, ...)
            as if they were ReLUs; without it such models are refused for those rules (see
            :class:`~captum_fau.attr.TopNDeconv`). Default: False
        checkpoint (str or Path, optional): Safetensors weights for ``timm:``/``module:`` model
            specs (or to replace a zoo model's). Default: None
        au_csv (str or Path, optional): AU labels (OpenFace / py-feat csv) for ``folder:`` data.
        cache (bool): Cache the face crops of ``ckplus:``/``folder:`` data in
            :func:`~captum_fau.data.cache.default_cache_dir`; False writes nothing outside ``out``. Default: True
        n_featured (int): Filters shown in the figures. Default: 10
        permutations (int): Label permutations for p-values. Default: 1000
        bootstrap (int): 0 skips the AUROC intervals. Default: 200
        stratify (str, optional): A per-image label (``"emotion"``) whose levels become strata of
            extra FAU-KL tests: association beyond what the label explains. Default: None
        batch_size (int): Images per forward pass. Default: 64
        device (str or torch.device): Default: ``"cpu"``
        seed (int): Seeds data rendering and the statistics. Default: 0
        progress (bool): Progress bars. Default: True
        resume (bool): Reuse finished steps found in ``out``; an interrupted scan continues
            from its last checkpoint. Default: True
        title (str, optional): Report title. Default: None
        checkpoint_every_s (float): Seconds between scan checkpoints (in ``out/scan-checkpoint``,
            removed once the scan's results are written); the scan also checkpoints when it ends,
            and every other step records its result when it finishes. Default: 60
        sanity_check (bool): Run the model-randomisation check of the reconstructions
            (:meth:`~captum_fau.attr.TopNDeconv.sanity_check` on the top 3 images of
            ``sanity_filters`` filters), written to ``out/sanity.json`` and shown in the report;
            False skips it, with a note that the pictures are unchecked. Default: True
        topn_budget_mb (float): Size budget of the reconstructions kept (``topn.safetensors``, stored as
            float16 with 8-bit input windows): the featured filters are always reconstructed, then the
            significant ones and the others by strength while they fit; the rest stay pending (their
            top-N images are found, not back-projected), as the report and ``results.json`` say, and
            ``captum-fau topn --out OUT --filters ...`` completes them. 0 reconstructs every filter. Default: 48
        sanity_filters (int): Filters the sanity check looks at: the featured ones first, then a
            sample of the other live filters seeded by ``seed`` (the choice is stated in the report
            and ``results.json``); 0 checks every filter. Default: 32
        class_names (str or tuple of str, optional): The model's class names in output order
            (``"angry,disgust,fear,happy,sad,surprise,neutral"`` or a sequence), matched to the
            data's emotions by name. Default: None (the model's ``class_names`` / ``id2label`` /
            ``label_names``; without names accuracy is skipped with a note)
        face_crop (str): Faces in ``folder:`` data: ``"auto"``, ``"haar"`` or ``"none"``
            (see :func:`captum_fau.data.folder.load_folder`). Default: ``"auto"``
        stream (bool, optional): ``ckplus:`` / ``folder:`` specs as streamed data
            (:class:`~captum_fau.data.lazy.LazyFaceSet`: the same items, cut per read in worker
            processes); ``None`` streams sources of 20,000 files or more. Default: None
        workers (int, optional): Worker processes of streamed data. Default: the usable cores, at most 8
        input_spec (InputSpec or dict, optional): How raw face crops become the model's input
            (:class:`~captum_fau.data.input_spec.InputSpec`, or a dict of its fields such as
            ``{"size": 48, "mean": 0.5, "std": 0.5}``). Given fields win over what the model
            declares, with a note; the rest is discovered (:func:`captum_fau.zoo.resolve.resolve_input_spec`).
            Default: None (all discovered)
        input_spec_sources (dict, optional): Field -> how it was given (the CLI passes its flag
            names, :data:`~captum_fau.data.input_spec.CLI_FLAGS`). Default: None (``"explicit"``)

    Examples::

        >>> config = AnalysisConfig(layer="conv2", n=5, progress=False)
        >>> config.out
        PosixPath('captum-fau-report')
        >>> AnalysisConfig(n=0)
        Traceback (most recent call last):
        ...
        captum_fau.errors.ConfigError: AnalysisConfig.n must be an integer >= 1, got 0; ...
    """

    layer: str = "conv3"
    out: Path = Path("captum-fau-report")
    n: int = 10
    rule: str = "guided"
    relu_like: bool = False
    checkpoint: str | Path | None = None
    au_csv: str | Path | None = None
    cache: bool = True
    n_featured: int = 10
    permutations: int = 1000
    bootstrap: int = 200
    stratify: str | None = None
    batch_size: int = 64
    device: str | torch.device = "cpu"
    seed: int = 0
    progress: bool = True
    resume: bool = True
    title: str | None = None
    checkpoint_every_s: float = 60.0
    sanity_check: bool = True
    sanity_filters: int = 32
    topn_budget_mb: float = 48.0
    class_names: str | tuple[str, ...] | None = None
    face_crop: str = "auto"
    stream: bool | None = None
    workers: int | None = None
    input_spec: Any = None
    input_spec_sources: dict[str, str] | None = None

    def __post_init__(self) -> None:
        from captum_fau.attr.rules import check_rule
        from captum_fau.data.emotions import parse_class_names
        from captum_fau.data.folder import check_face_crop
        from captum_fau.data.input_spec import InputSpec

        if self.class_names is not None:
            self.class_names = parse_class_names(self.class_names)
        check_face_crop(self.face_crop)
        if self.input_spec is not None and not isinstance(self.input_spec, (InputSpec, dict)):
            raise ConfigError(
                f"AnalysisConfig.input_spec must be an InputSpec or a dict of its fields, got "
                f"{type(self.input_spec).__name__}; e.g. input_spec={{'size': 48, 'mean': 0.5, 'std': 0.5}}."
            )

        if not isinstance(self.relu_like, bool):
            raise ConfigError(f"AnalysisConfig.relu_like must be True or False, got {self.relu_like!r}.")
        if not isinstance(self.layer, str) or not self.layer.strip():
            raise LayerError(f"AnalysisConfig.layer must be a dotted module name such as 'conv3', got {self.layer!r}.")
        if not isinstance(self.out, (str, os.PathLike)):
            raise ConfigError(f"AnalysisConfig.out must be a folder path, got {type(self.out).__name__}.")
        self.out = Path(self.out)
        for name in ("checkpoint", "au_csv"):
            if not isinstance(getattr(self, name), (str, os.PathLike, type(None))):
                raise ConfigError(f"AnalysisConfig.{name} must be a file path, got {type(getattr(self, name)).__name__}.")
        for name in ("n", "n_featured", "batch_size"):
            _check_count(name, getattr(self, name), 1)
        budget = self.topn_budget_mb
        if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)) or not budget >= 0:
            raise ConfigError(
                f"AnalysisConfig.topn_budget_mb must be a number of megabytes >= 0 (0: every filter), got {budget!r}; "
                "pass e.g. topn_budget_mb=48."
            )
        every = self.checkpoint_every_s
        if isinstance(every, bool) or not isinstance(every, (int, float, np.integer, np.floating)) or not every >= 0:
            raise ConfigError(
                f"AnalysisConfig.checkpoint_every_s must be a number of seconds >= 0, got {every!r}; "
                "pass e.g. checkpoint_every_s=60."
            )
        for name in ("permutations", "bootstrap", "seed", "sanity_filters"):
            _check_count(name, getattr(self, name), 0)
        if self.workers is not None:
            _check_count("workers", self.workers, 0)
        check_rule(self.rule)
        if not isinstance(self.sanity_check, bool):
            raise ConfigError(f"AnalysisConfig.sanity_check must be True or False, got {self.sanity_check!r}.")


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"AnalysisConfig.{name} must be an integer >= {minimum}, got {value!r}; "
            f"pass e.g. {name}={max(minimum, 1)}."
        )


def _resolve_config(config: AnalysisConfig | None, overrides: dict[str, Any]) -> AnalysisConfig:
    """``config`` with keyword ``overrides`` applied (and validated again)."""
    if config is not None and not isinstance(config, AnalysisConfig):
        raise ConfigError(
            f"analyze's third argument is an AnalysisConfig, got {type(config).__name__}; "
            "pass the layer and the output folder by keyword (layer='conv3', out='report')."
        )
    known = {f.name for f in fields(AnalysisConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        hints = [f"{key} (did you mean {', '.join(difflib.get_close_matches(key, known, 1)) or '?'})" for key in unknown]
        raise ConfigError(f"analyze got unknown options {', '.join(hints)}; it accepts {', '.join(sorted(known))}.")
    if config is None:
        return AnalysisConfig(**overrides)
    return replace(config, **overrides) if overrides else config


def featured_filters(topn: Any = None, faukl: Any = None, layer: str | None = None, count: int = 10) -> list[int]:
    """The ``count`` most informative filters: strongest significant AU association, else strongest response.

    Args:
        topn (TopNResult, optional): Ranks its filters by their largest activation when
            ``faukl`` is None.
        faukl (FAUKLResult, optional): Ranks filters with a significant association (q < 0.05)
            first, then by null-corrected KL.
        layer (str, optional): The FAU-KL layer. Default: the result's own.
        count (int, optional): How many filters. Default: 10

    Returns:
        list of int: Filter indices, most informative first.
    """
    if faukl is not None:
        st = faukl.stats(layer)
        strength = np.where(st.testable, st.kl_corrected, -np.inf).max(axis=1)
        best_q = np.where(st.testable, st.q, np.inf).min(axis=1)
        order = np.lexsort((-strength, best_q >= 0.05))  # significant first, then by corrected KL
        return [int(f) for f in order[:count]]
    if topn is None:
        raise ConfigError("featured_filters needs a TopNResult or a FAUKLResult.")
    top = topn.top_values()  # reconstructed and pending filters
    filters, top_values = np.array(list(top), dtype=np.int64), np.array(list(top.values()))
    return [int(filters[i]) for i in np.argsort(-top_values, kind="stable")[:count]]


def _masks_fn(faces: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """Ground-truth AU regions for dataset indices, when the data can render them (SynthFACS)."""
    meta = getattr(faces, "meta", None) or {}
    if getattr(faces, "name", "") != "synthfacs" or "seed" not in meta:
        return None
    from captum_fau.data.synthfacs import region_masks

    names = getattr(faces, "names", None)

    def masks_for(indices: np.ndarray) -> np.ndarray:
        global_idx = np.asarray(names)[indices].astype(np.int64) if names is not None else np.asarray(indices)
        global_idx = global_idx + int(meta.get("start", 0))
        return region_masks(meta["seed"], global_idx, size=meta["size"], mode=meta["mode"], n_subjects=meta["n_subjects"])

    return masks_for


def emotion_accuracy(logits: np.ndarray, emotions: np.ndarray, mapping: Any) -> dict[str, Any] | None:
    """:func:`~captum_fau.data.emotions.mapped_accuracy` of the labelled images, classes matched by name.

    Args:
        logits (np.ndarray): ``[N, K]`` model outputs.
        emotions (np.ndarray): ``[N]`` data class indices (-1 = unlabelled).
        mapping (ClassMapping): Data classes -> model outputs
            (:func:`~captum_fau.data.emotions.model_class_mapping`).

    Returns:
        dict or None: None when no labelled image has a class of the model.

    Raises:
        ConfigError: the logits have a number of columns other than the mapping's model classes.
    """
    from captum_fau.data.emotions import mapped_accuracy

    scores = mapped_accuracy(logits, emotions, mapping)
    return scores if scores["accuracy"] is not None else None


def _class_mapping(model: nn.Module, faces: Any, class_names: tuple[str, ...] | None) -> tuple[Any, list[str]]:
    """The data's classes mapped onto the model's outputs by name (None and a note when they cannot be)."""
    from captum_fau.data.emotions import model_class_mapping

    data_classes = tuple(getattr(faces, "class_names", ()) or ())
    if not data_classes:
        return None, []
    outputs = getattr(model, "num_classes", None)
    mapping, notes = model_class_mapping(
        model, data_classes, class_names=class_names, labels=getattr(faces, "emotions", None),
        num_outputs=outputs if isinstance(outputs, int) and not isinstance(outputs, bool) else None,
    )  # fmt: skip
    return mapping, [_mapping_note(note) for note in notes]


def _mapping_note(note: str) -> str:
    """A note of the class mapping as the report lists it."""
    note = note if note.endswith(".") else note + "."
    return "A" + note[1:] if note.startswith("accuracy skipped") else f"Class mapping: {note}"


def analyze(model: nn.Module | str, data: Any, config: AnalysisConfig | None = None, **overrides: Any) -> AnalysisResult:
    r"""Run top-N deconvolution, FAU-KL and accuracy on one model and dataset; write a report.

    Args:
        model (nn.Module or str): A model, or a spec accepted by
            :func:`captum_fau.zoo.resolve.load_model_spec` (zoo name, Hub folder, ``timm:NAME``,
            ``module:factory``).
        data: A :class:`~captum_fau.data.base.FaceSet` (or other dataset of dict items), or a
            spec accepted by :func:`captum_fau.data.spec.load_data_spec` (``synthfacs:N``,
            ``ckplus:PATH``, ``tfd:PATH``, ``fer2013:PATH``, ``folder:PATH``), or a float tensor
            ``[N, C, H, W]`` of images already preprocessed for the model (analysed without labels,
            so FAU-KL and accuracy are skipped, with a note; a ``uint8`` tensor is refused, since its
            scale would be a guess).
        config (AnalysisConfig, optional): The analysis parameters. Default: ``AnalysisConfig()``
        **overrides: Fields of :class:`AnalysisConfig` to change, e.g. ``layer="conv2", n=5``.

    Runs on one process or on every rank of a ``torch.distributed`` group: under
    ``torchrun`` (``WORLD_SIZE > 1`` in the environment) it joins the group itself
    (``gloo`` on CPU, ``nccl`` on CUDA with one GPU per rank). Each rank scans a
    contiguous part of the data and reconstructs a share of the filters; rank 0
    merges them, computes the statistics and writes every output. Other ranks
    return an :class:`AnalysisResult` with a note and no results.

    Everything that can be checked is checked before the first batch (:mod:`captum_fau.preflight`):
    the options, one forward pass up to the layer, the item format, and that enough images carry
    AU labels; bad input raises a :mod:`captum_fau.errors` exception naming the fix.

    Returns:
        AnalysisResult

    Examples::

        >>> from captum_fau.analyze import AnalysisConfig, analyze
        >>> config = AnalysisConfig(layer="conv3", out="report", n=5, progress=False)
        >>> result = analyze("zerobias-synthfacs-8class", "synthfacs:200", config)  # doctest: +SKIP
        >>> again = analyze("zerobias-synthfacs-8class", "synthfacs:200", config, n=10)  # doctest: +SKIP
        >>> # Your 48x48 model trained on [-1, 1] inputs: say so; the rest is discovered or probed.
        >>> mine = analyze("models.py:build", "folder:faces/", config, checkpoint="w.safetensors",
        ...                input_spec={"size": 48, "mean": 0.5, "std": 0.5})  # doctest: +SKIP
    """
    config = _resolve_config(config, overrides)
    from captum_fau._utils.device import resolve_device
    from captum_fau._utils import distributed

    with distributed.process_group_from_env(resolve_device(config.device)) as dev:
        return _analyze(model, data, config, dev)


@dataclass
class _Run:
    """One analysis in progress: the resolved inputs and what the steps have recorded so far."""

    config: AnalysisConfig
    model: nn.Module
    faces: Any
    dataset: Dataset
    model_name: str
    data_name: str
    params: dict[str, Any]
    manifest: _Manifest
    rank: int
    world_size: int
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mapping: Any = None

    @property
    def out(self) -> Path:
        return self.config.out

    @property
    def layer(self) -> str:
        return self.config.layer

    @property
    def progress(self) -> bool:
        return self.config.progress and self.rank == 0


class _Scanned(NamedTuple):
    """What the scan step leaves for the later steps (rank 0 only)."""

    topn: Any
    maxima: np.ndarray
    logits: np.ndarray
    labels: dict[str, np.ndarray]


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = time.perf_counter() - started


def _lock_out(out: Path) -> Any:
    """Rank 0 takes the exclusive lock on ``out`` (:class:`~captum_fau._utils.outlock.OutputLock`); every rank
    raises if it cannot. Returns the lock on rank 0, None elsewhere."""
    from captum_fau._utils import distributed
    from captum_fau._utils.outlock import OutputLock

    lock, error = None, None
    if distributed.world()[0] == 0:
        try:
            _check_out(out)
            lock = OutputLock(out).acquire()
        except Exception as err:  # noqa: BLE001 - every rank learns of it in agree()
            error = err
    distributed.agree(error)
    return lock


def _analyze(model: nn.Module | str, data: Any, config: AnalysisConfig, dev: torch.device) -> AnalysisResult:
    lock = _lock_out(config.out)
    try:
        return _analyze_locked(model, data, config, dev, lock.note if lock is not None else None)
    finally:
        if lock is not None:
            lock.release()


def _analyze_locked(model: nn.Module | str, data: Any, config: AnalysisConfig, dev: torch.device,
                    lock_note: str | None) -> AnalysisResult:  # fmt: skip
    run = _prepare(model, data, config, dev)
    if lock_note:
        run.notes.append(lock_note)
    scanned = _scan_step(run, dev)
    if scanned is None:  # a rank other than 0: rank 0 writes the results
        return _other_rank_result(run.out, run.rank, run.world_size)
    with _timed(run.timings, "faukl"):
        faukl = _faukl_step(run, scanned)
    with _timed(run.timings, "accuracy"):
        accuracy = _accuracy_step(run, scanned)
    with _timed(run.timings, "reconstruct"):
        scanned = scanned._replace(topn=_reconstruct_step(run, scanned.topn, faukl))
    featured = featured_filters(scanned.topn, faukl, run.layer, min(config.n_featured, len(scanned.topn.top_values())))
    with _timed(run.timings, "sanity"):
        sanity = _sanity_step(run, scanned.topn, featured)
    with _timed(run.timings, "report"):
        localisation = _localisation_step(run, scanned.topn, faukl)
        report = _report_step(run, scanned.topn, faukl, accuracy, localisation, featured, sanity)
    return AnalysisResult(out=run.out, topn=scanned.topn, faukl=faukl, accuracy=accuracy, localisation=localisation,
                          featured=featured, notes=run.notes, report=report, timings=run.timings,
                          sanity=sanity)  # fmt: skip


def _prepare(model: nn.Module | str, data: Any, config: AnalysisConfig, dev: torch.device) -> _Run:
    """Check the output folder, resolve the model and the data, adapt the inputs, open the manifest."""
    from captum_fau.zoo.resolve import load_model_spec
    from captum_fau._utils import distributed
    from captum_fau._utils.modules import layer_name

    rank, world_size = distributed.world()
    torch.manual_seed(config.seed)
    _check_out(config.out)
    model_name = model if isinstance(model, str) else type(model).__name__
    data_name = data if isinstance(data, str) else repr(data)[:120]
    if isinstance(model, str):
        # a timm architecture gets one output per --class-names entry (the head of your checkpoint)
        outputs = len(config.class_names) if config.class_names and model.strip().startswith("timm:") else None
        model = load_model_spec(model, checkpoint=config.checkpoint, device=dev, num_classes=outputs)
    model = model.to(dev).eval()
    layer_name(model, config.layer)
    progress = config.progress and rank == 0
    faces, notes, provenance = _resolve_data(data, config, progress, model_name)
    if len(faces) == 0:
        raise DatasetError(f"The dataset {data_name} is empty.")
    from captum_fau.preflight import check_items

    check_items(faces)  # before an item is read for the model
    dataset, spec, spec_notes = model_inputs(model, faces, config.input_spec, config.input_spec_sources)
    notes += spec_notes
    if progress:  # before the long work: what the model will see
        print("\n".join(f"note: {note}" for note in spec_notes), file=sys.stderr, flush=True)
    _preflight(model, faces, dataset, config, dev)
    params = {"model": model_name, "data": data_name, "layer": config.layer, "n": config.n, "rule": config.rule,
              "relu_like": config.relu_like,
              "seed": config.seed, "permutations": config.permutations, "bootstrap": config.bootstrap,
              "n_images": len(faces), "data_provenance": provenance, "input_spec": spec.to_dict()}  # fmt: skip
    if provenance.get("held_out"):
        notes.insert(0, f"Held-out faces: {provenance['reason']}.")
    mapping, mapping_notes = _class_mapping(model, faces, config.class_names)  # checked before the scan
    from captum_fau.data.folder import face_crop_note
    from captum_fau.data.lazy import stream_note

    mapping_notes += [n for n in (face_crop_note(getattr(faces, "meta", None) or {}), stream_note(faces)) if n]
    params.update(class_names=None if mapping is None else list(mapping.model_classes), face_crop=config.face_crop)
    manifest = _Manifest(config.out, _fingerprint(model, dataset, input_spec=spec.to_dict()), params, resume=config.resume)
    return _Run(config=config, model=model, faces=faces, dataset=dataset, model_name=model_name, data_name=data_name,
                params=params, manifest=manifest, rank=rank, world_size=world_size, notes=notes + mapping_notes,
                mapping=mapping)  # fmt: skip


def _resolve_data(data: Any, config: AnalysisConfig, progress: bool, model_name: str) -> tuple[Any, list[str], dict[str, Any]]:
    """The dataset ``data`` names (a spec, a dataset, or a float tensor ``[N, C, H, W]``), its notes, and
    whether the model saw it (``held_out``, ``reason``, ...)."""
    from captum_fau.preflight import tensor_dataset

    unknown = {"held_out": False, "reason": "the data were passed as an object: captum-fau cannot tell whether "
               "the model saw these images in training"}  # fmt: skip
    if isinstance(data, torch.Tensor):
        return (*tensor_dataset(data), unknown)
    if isinstance(data, str):
        faces, provenance = _open_data(data, config.au_csv, config.seed, progress, model_name, config.face_crop,
                                       config.cache, config.stream, config.workers)  # fmt: skip
        return faces, [], provenance
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise DatasetError(
            f"analyze's data is a {type(data).__name__}; pass a data spec such as 'synthfacs:500' or "
            "'folder:PATH', a FaceSet, a map-style dataset of dict items, or a float tensor [N, C, H, W]."
        )
    return data, [], unknown


def _preflight(model: nn.Module, faces: Any, dataset: Dataset, config: AnalysisConfig, dev: torch.device) -> None:
    """Everything that can be checked before the first batch (:mod:`captum_fau.preflight`)."""
    from captum_fau import preflight

    if config.n > len(faces):
        raise ConfigError(f"n={config.n} images per filter were requested but the dataset has only {len(faces)}; "
                          f"pass --n / n <= {len(faces)}.")  # fmt: skip
    preflight.check_forward(model, dataset, config.layer, dev)
    preflight.check_au_labels(faces)


def model_inputs(
    model: nn.Module, faces: Any, explicit: Any = None, explicit_sources: dict[str, str] | None = None
) -> tuple[Any, Any, list[str]]:
    """``faces`` as ``model``'s input: its resolved spec applied to the raw face crops, and notes.

    Args:
        model (nn.Module): The model the images are for.
        faces (Dataset): Raw face crops (a FaceSet, a lazy SynthFACS, any dataset of dict items).
        explicit (InputSpec or dict, optional): Fields given by the user (they win, with a note).
        explicit_sources (dict, optional): Field -> how it was given (e.g. the CLI flag).

    Returns:
        tuple: ``(ModelInputs, InputSpec, notes)``; the notes say where the spec came from and
        what it does to these data (conversions, resizing, probes, overrides).

    Raises:
        ConfigError / InputShapeError: conflicting or impossible specs, data that are not raw
            face crops (RGBA, 16-bit, 0..255 floats), a model that needs two inputs or runs at no size.
    """
    from captum_fau.data.model_inputs import ModelInputs, raw_shape
    from captum_fau.zoo.resolve import resolve_input_spec

    shape = raw_shape(faces)
    spec = resolve_input_spec(model, shape, explicit, explicit_sources)
    notes = [f"Input: {spec.describe()}."] + [f"Input: {note}." for note in spec.notes(shape)]
    return ModelInputs(faces, spec), spec, notes


def _scan_step(run: _Run, dev: torch.device) -> _Scanned | None:
    """Step 1, one pass over the data: per-image maxima + running top-N, then reconstructions.

    Returns None on ranks other than 0.
    """
    from captum_fau._utils import distributed

    maxima_file = run.out / "maxima.npz"
    _scan_key(run)
    with _timed(run.timings, "scan"):
        if distributed.broadcast_flag(run.manifest.finished("scan", run.out / "topn.safetensors", maxima_file)):
            return _load_scan(run, maxima_file) if run.rank == 0 else None
        return _run_scan(run, dev, maxima_file)


def _load_scan(run: _Run, maxima_file: Path) -> _Scanned:
    """The results of a finished scan, read back from ``out``."""
    from captum_fau.attr import TopNResult

    topn = TopNResult.load(run.out)
    with np.load(maxima_file, allow_pickle=False) as z:
        maxima, order, logits = z["maxima"], z["indices"], z["logits"]
        stored = {key[len("label_") :]: z[key] for key in z.files if key.startswith("label_")}
    # The dataset's own label arrays win over the stored ones: the label-reading steps key on them.
    return _Scanned(topn, maxima, logits, {**stored, **_labels(run.faces, {}, order)})


def _run_scan(run: _Run, dev: torch.device, maxima_file: Path) -> _Scanned | None:
    """Scan the data (resuming from ``out/scan-checkpoint``), reconstruct, and save on rank 0."""
    from captum_fau.attr import TopNDeconv
    from captum_fau._utils import distributed
    from captum_fau.stats.checkpoint import ScanCheckpoint
    from captum_fau.stats.batching import is_face_set
    from captum_fau.stats.scan import scan

    config = run.config
    # A FaceSet says up front whether it has emotion labels; other datasets may carry them per item.
    emotions_known = getattr(run.faces, "emotions", None) is not None or not is_face_set(run.faces)
    checkpoint_dir = run.out / "scan-checkpoint"
    if not config.resume and run.rank == 0 and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    distributed.barrier()  # no rank starts writing checkpoints before rank 0 has cleared them
    result = scan(run.model, run.layer, run.dataset, top_n=config.n, batch_size=config.batch_size, device=dev,
                  progress=run.progress, keep_inputs=True, keep_outputs=emotions_known, checkpoint=checkpoint_dir,
                  checkpoint_every_s=config.checkpoint_every_s, fingerprint=_scan_inputs(run),
                  gather="rank0")  # fmt: skip
    run.notes.extend(result.notes)
    if result.resumed_batches:
        run.notes.append(f"The scan resumed from a checkpoint after {result.resumed_batches} batch(es).")
    # The search only: which filters are back-projected is decided after FAU-KL (_reconstruct_step).
    topn = TopNDeconv(run.model, run.layer, rule=config.rule, relu_like=config.relu_like).from_scan(
        result, progress=run.progress, reconstruct=[])
    scanned: _Scanned | None = None
    error: BaseException | None = None
    if run.rank == 0:
        try:
            scanned = _save_scan(run, result, topn, maxima_file)
        except Exception as err:  # noqa: BLE001 - every rank learns of it in agree()
            error = err
    distributed.agree(error)
    # The results are on disk: the checkpoints are no longer needed (each rank removes its own).
    ScanCheckpoint(checkpoint_dir, {}, run.rank, run.world_size).clear()
    return scanned


def _save_scan(run: _Run, result: Any, topn: Any, maxima_file: Path) -> _Scanned:
    """Write the top-N result and the per-image maxima, logits and labels; mark the step done."""
    from captum_fau._utils.io import atomic_npz

    if topn is None:
        raise DistributedError("Rank 0 received no top-N result from the scan.")
    topn.save(run.out, compact=True)
    maxima = result.layers[run.layer].maxima.float().numpy()
    order = result.indices.numpy()
    outputs = result.outputs
    logits = outputs.numpy() if outputs is not None and outputs.dim() == 2 else np.zeros((0, 0))
    labels = _labels(run.faces, result.extras, order)
    atomic_npz(maxima_file, maxima=maxima, indices=order, logits=logits, **{f"label_{k}": v for k, v in labels.items()})
    run.manifest.mark("scan", {"images": int(len(order)), "processes": run.world_size})
    return _Scanned(topn, maxima, logits, labels)


def _reconstruct_step(run: _Run, topn: Any, faukl: Any | None) -> Any:
    """Step 2', back-projections: the featured filters, then significant and strong ones within
    ``config.topn_budget_mb``; saved into ``topn.safetensors`` every 16 filters (a killed run resumes),
    the rest left pending for ``captum-fau topn --filters``."""
    from captum_fau.attr import TopNDeconv
    from captum_fau.attr.topn_pipeline import within_budget

    config = run.config
    if not topn.pending_filters:
        return topn
    order = featured_filters(topn, faukl, run.layer, len(topn.top_values()))
    attribution = TopNDeconv(run.model, run.layer, rule=config.rule, relu_like=config.relu_like)
    wanted = order if not config.topn_budget_mb else within_budget(
        attribution, topn, order, config.topn_budget_mb, keep=config.n_featured)  # fmt: skip
    todo = [f for f in wanted if f in set(topn.pending_filters)]
    if todo:
        attribution.complete(topn, run.dataset, todo, progress=run.progress,
                             checkpoint=lambda part: part.save(run.out, compact=True))  # fmt: skip
        # What is on disk (compact) is what every later step reads, in this run and in a resumed one alike.
        topn = type(topn).load(run.out)
    if topn.pending_filters:
        run.notes.append(
            f"{len(topn.filters)} of {len(topn.top_values())} filters of {run.layer} are reconstructed (the featured, "
            f"then significant and strongest ones within topn_budget_mb={config.topn_budget_mb:g}); the top-N images of "
            f"the other {len(topn.pending_filters)} are found but not back-projected. Complete them with captum-fau "
            f"topn --out {run.out} --filters K,... (the same --model/--data/--layer/--rule), or rerun with "
            "--topn-budget-mb 0 (Python: topn_budget_mb=0)."
        )
    return topn


def _faukl_step(run: _Run, scanned: _Scanned) -> Any | None:
    """Step 2, FAU-KL from the scan's maxima (skipped without AU labels)."""
    from captum_fau.concept import FAUKL, FAUKLResult

    au_ids = tuple(getattr(run.faces, "au_ids", ()) or ())
    aus = scanned.labels.get("aus")
    path = run.out / "fau_kl.safetensors"
    if aus is None or not au_ids:
        run.notes.append("FAU-KL skipped: the data has no AU labels (use CK+ FACS files, --au-csv, or SynthFACS).")
        return None
    config = run.config
    run.manifest.key("faukl", scan=run.manifest.keys["scan"], aus=_label_key(scanned, "aus", au_ids=list(au_ids)),
                     groups=_label_key(scanned, "subject", "sequence"), permutations=config.permutations,
                     bootstrap=config.bootstrap, seed=config.seed, stratify=config.stratify,
                     strata=_label_key(scanned, config.stratify) if config.stratify else None)  # fmt: skip
    if run.manifest.finished("faukl", path):
        loaded = FAUKLResult.load(path)
        run.notes.extend(n for n in loaded.stats().notes if n.startswith("WARNING"))
        return loaded
    config = run.config
    subjects = scanned.labels.get("subject")
    # permutation units: subjects first (AUs cluster by subject), then sequences
    groups = subjects if subjects is not None else scanned.labels.get("sequence")
    strata = None
    if config.stratify is not None:
        strata = scanned.labels.get(config.stratify)
        if strata is None:
            raise LabelError(f"stratify={config.stratify!r}: the data has no such label; it has {sorted(scanned.labels)}.")
    fau = FAUKL(run.model, [run.layer], n_permutations=config.permutations, n_bootstrap=config.bootstrap,
                seed=config.seed, stratify=config.stratify, progress=run.progress)  # fmt: skip
    faukl = fau.interpret_activations(
        {run.layer: scanned.maxima}, aus, au_ids=au_ids, groups=groups, bootstrap_groups=subjects, strata=strata,
        meta={"model": run.model_name, "data": run.data_name},
    )  # fmt: skip
    run.notes.extend(n for n in faukl.stats().notes if n.startswith("WARNING"))  # e.g. no subject/sequence ids
    from captum_fau._utils.faults import pause_point

    pause_point("faukl")
    faukl.save(path)
    faukl.to_csv(run.out / "fau_kl.csv")
    run.manifest.mark("faukl")
    return faukl


def _accuracy_step(run: _Run, scanned: _Scanned) -> dict[str, Any] | None:
    """Step 3, accuracy when the data has emotion labels, the data's classes mapped to the model's by name."""
    emotions = scanned.labels.get("emotion")
    if emotions is None:
        run.notes.append("Accuracy skipped: the data has no emotion labels.")
        return None
    if run.mapping is None:  # the reason is already in the notes
        return None
    mapping = run.mapping
    run.manifest.key("accuracy", scan=run.manifest.keys["scan"],
                     emotions=_label_key(scanned, "emotion", model_classes=list(mapping.model_classes),
                                         data_classes=list(mapping.data_classes)))  # fmt: skip
    if run.manifest.finished("accuracy"):
        accuracy = run.manifest.info("accuracy") or None
    else:
        k = len(mapping.model_classes)
        if scanned.logits.ndim != 2 or scanned.logits.shape[1] != k:
            run.notes.append(
                f"Accuracy skipped: the model has {scanned.logits.shape[-1]} outputs but {k} class names "
                f"({','.join(mapping.model_classes)}); pass --class-names with one name per output."
            )
            return None
        accuracy = emotion_accuracy(scanned.logits, emotions, mapping)
        run.manifest.mark("accuracy", accuracy or {})
    if accuracy is None:
        run.notes.append("Accuracy skipped: no labelled image has a class of the model.")
    else:
        known = " ".join(run.notes)
        run.notes.extend(_mapping_note(n) for n in accuracy["notes"] if n not in known)
    return accuracy


def _localisation_step(run: _Run, topn: Any, faukl: Any | None) -> dict[str, Any] | None:
    """Step 4a, agreement of FAU-KL's top AU with the ground-truth AU regions (SynthFACS only)."""
    masks_for = _masks_fn(run.faces)
    if faukl is None or masks_for is None:
        return None
    from captum_fau.concept.localisation import localisation_agreement, region_stats

    st = faukl.stats(run.layer)
    significant = [int(f) for f in np.flatnonzero((np.where(st.testable, st.q, 1.0) < 0.05).any(axis=1))]
    significant = [f for f in significant if f not in set(topn.pending_filters)]  # reconstructed ones only
    if not significant:
        return {"rate": None, "n_filters": 0, "per_filter": []}
    rows = [topn.row(f) for f in significant]
    regions = region_stats(topn.patches[rows], topn.boxes[rows], topn.indices[rows], masks_for)
    au_ids = tuple(getattr(run.faces, "au_ids", ()) or ())
    # Normalised for mask size (energy share / area share); raw energy is kept as a labelled comparison.
    return localisation_agreement(regions, [faukl.top_au(f, run.layer) for f in significant], au_ids, significant)


def _sanity_step(run: _Run, topn: Any, featured: list[int], n: int = 3) -> Any | None:
    """Step 4a', the model-randomisation check of the reconstructions (unless switched off): ``out/sanity.json``.

    Checks the top ``n`` images of ``config.sanity_filters`` filters (the featured ones first, then a
    seeded sample; 0: all), reusing the scan's trained reconstructions. Keyed on the scan, its own
    options and the featured filters, so changing only the sanity options reruns only it and the report.
    """
    config = run.config
    if not config.sanity_check:
        run.notes.append(
            "Sanity check skipped (sanity_check=False / --no-sanity-check): nothing here says how much of the "
            f"{config.rule} reconstructions depends on the trained weights; they may show image edges alone."
        )
        return None
    from captum_fau.attr import TopNDeconv
    from captum_fau.attr.sanity import SanityCheckResult

    path = run.out / "sanity.json"
    max_filters = config.sanity_filters or None
    if max_filters is not None:
        n, max_filters = _sanity_budget(run, topn, n, max_filters)
    run.manifest.key("sanity", scan=run.manifest.keys["scan"], n=n, seed=config.seed, max_filters=max_filters,
                     featured=featured if max_filters else None, independent=True)  # fmt: skip
    figure = run.out / "sanity.png"
    if run.manifest.finished("sanity", path) and (figure.is_file() or not (run.manifest.info("sanity") or {}).get("figure")):
        return SanityCheckResult.load(path)
    from captum_fau.viz.analysis_report import sanity_figure

    try:
        sanity = TopNDeconv(run.model, run.layer, rule=config.rule, relu_like=config.relu_like).sanity_check(
            topn, run.dataset, n=n, seed=config.seed, progress=run.progress, max_filters=max_filters, featured=featured,
            keep_reconstructions=True,
        )  # fmt: skip
    except (ConfigError, DatasetError) as err:  # no weighted layer below the analysed one, or every filter dead
        run.notes.append(f"Sanity check skipped: {err}")
        return None
    drawn = sanity_figure(figure, sanity, topn, featured) is not None
    sanity.save(path)
    run.manifest.mark("sanity", {"n": n, "seed": config.seed, "filters": len(sanity.filters), "figure": drawn})
    return sanity


#: Pixels back-projected by the sanity check at most (pairs x randomisation steps x window pixels), about a
#: minute on one CPU core; --sanity-filters 0 checks every reconstructed filter whatever it costs.
SANITY_BUDGET_PIXELS = 4e7


def _sanity_budget(run: _Run, topn: Any, n: int, max_filters: int) -> tuple[int, int]:
    """``(ranks, filters)`` of the sanity check within :data:`SANITY_BUDGET_PIXELS`: fewer ranks first
    (down to the top-1 image), then fewer filters (the featured ones first); a note says so."""
    from captum_fau.attr.sanity import cascade_steps, weighted_layers

    if not len(topn.filters) or topn.patches.numel() == 0:
        return n, max_filters
    device = next(iter(run.model.parameters()), torch.empty(0)).device
    sample = torch.zeros((1, *topn.meta["input_shape"]), device=device)
    with torch.no_grad():
        steps = len(cascade_steps(weighted_layers(run.model, run.model.get_submodule(run.layer), sample), True))
    per_pair = steps * topn.patches[0, 0].numel()
    allowed = max(1, int(SANITY_BUDGET_PIXELS // max(1, per_pair)))
    filters = min(max_filters, len(topn.filters))
    ranks = min(n, max(1, allowed // filters))
    fit = min(filters, max(1, allowed // ranks))
    if (ranks, fit) != (n, filters):
        run.notes.append(
            f"The sanity check looks at the top {ranks} image(s) of {fit} filter(s) (not {n} of {filters}): each pair "
            f"is back-projected {steps} times over {tuple(topn.patches.shape[-3:])} windows, and the check is kept "
            "near a minute; --sanity-filters 0 (Python: sanity_filters=0) checks every reconstructed filter's top 3."
        )
    return ranks, fit


def _report_step(
    run: _Run, topn: Any, faukl: Any | None, accuracy: dict[str, Any] | None,
    localisation: dict[str, Any] | None, featured: list[int], sanity: Any | None = None,
) -> Path:  # fmt: skip
    """Step 4b, the HTML report with the paper's figures and the machine-readable results."""
    from captum_fau.viz.analysis_report import build_report

    report = build_report(
        run.out, model=run.model_name, data=run.data_name, layer=run.layer, faces=run.faces, topn=topn, faukl=faukl,
        accuracy=accuracy, localisation=localisation, featured=featured, notes=run.notes, params=run.params,
        title=run.config.title, sanity=sanity,
    )  # fmt: skip
    run.manifest.key("report", steps=dict(run.manifest.keys), featured=featured, title=run.config.title)
    run.manifest.mark("report")
    return report


def _open_data(
    spec: str, au_csv: str | Path | None, seed: int, progress: bool, model_name: str = "", face_crop: str = "auto",
    cache: bool = True, stream: bool | None = None, workers: int | None = None,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The dataset a spec names, and whether the model saw it (``held_out``, ``reason``, ...).

    SynthFACS is opened lazily: each rank renders only the images it scans and memory does not
    grow with N (the pixels equal those of the in-memory FaceSet). With a zoo model trained on
    SynthFACS the images start after the subjects of its training pool
    (:func:`captum_fau.zoo.held_out.held_out_synthfacs`), so the accuracy is on held-out subjects.
    """
    from captum_fau.data.spec import load_data_spec, parse_data_spec

    kind, argument = parse_data_spec(spec)
    if kind == "synthfacs" and argument.isdigit() and int(argument) >= 1 and au_csv is None:
        from captum_fau.zoo.held_out import held_out_synthfacs, synthfacs_training_pool

        if synthfacs_training_pool(model_name) is not None:
            return held_out_synthfacs(model_name, int(argument), seed=seed)
        from captum_fau.data.synthfacs import SynthFACS

        return SynthFACS(n=int(argument), seed=seed), {"held_out": False, "seed": seed, "reason": (
            f"{model_name} records no SynthFACS training set: captum-fau cannot tell whether it saw these faces")}
    unknown = {"held_out": False, "reason": f"captum-fau does not know which images {model_name} was trained on"}
    return load_data_spec(spec, au_csv=au_csv, seed=seed, progress=progress, face_crop=face_crop, cache=cache,
                          lazy=stream, workers=workers), unknown


#: Label arrays of a FaceSet (attribute) and of a scan's per-item extras (key), in scan order.
_LABELS = (("aus", "aus"), ("emotion", "emotions"), ("subject", "subjects"), ("sequence", "sequences"))


def _labels(faces: Any, extras: dict[str, Any], order: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image labels in scan order: from the dataset's label arrays, else from the items the scan read
    (lazy datasets such as :class:`~captum_fau.data.synthfacs.SynthFACS` carry them per item)."""
    labels: dict[str, np.ndarray] = {}
    for key, attribute in _LABELS:
        value = getattr(faces, attribute, None)
        if value is not None:
            value = np.asarray(value)[order]
        elif key in extras:
            value = np.asarray(extras[key])
        else:
            continue
        if value.dtype == object:  # keep the file free of pickled objects
            value = value.astype(str)
        labels[key] = value
    return labels


def _other_rank_result(out: Path, rank: int, world_size: int) -> AnalysisResult:
    return AnalysisResult(out=out, topn=None, faukl=None, accuracy=None, localisation=None, featured=[],
                          notes=[f"Rank {rank} of {world_size}: rank 0 merges the results and writes {out}."])  # fmt: skip


__all__ = ["AnalysisConfig", "AnalysisResult", "analyze", "emotion_accuracy", "featured_filters", "model_inputs"]


class _CallableModule(types.ModuleType):
    """``captum_fau.analyze`` names both this module and the function: once ``import captum_fau.analyze``
    has run, ``from captum_fau import analyze`` finds the module, so calling the module runs the function."""

    def __call__(self, model: nn.Module | str, data: Any, config: AnalysisConfig | None = None, **overrides: Any) -> AnalysisResult:
        return analyze(model, data, config, **overrides)


sys.modules[__name__].__class__ = _CallableModule
