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
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from captum_fau.errors import ConfigError, DatasetError, DistributedError, LayerError, OutputError

STEPS = ("scan", "faukl", "accuracy", "report")


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


class _AdaptedInputs(Dataset):
    """Items of a dataset with images converted to what the model expects."""

    def __init__(self, base: Dataset, expected: tuple[int, int, int] | None) -> None:
        self.base = base
        self.expected = expected

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        from captum_fau.zoo.resolve import adapt_images

        item = dict(self.base[index])
        item["image"] = adapt_images(item["image"][None], self.expected)[0][0]
        return item


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

    ``extra`` entries are added under ``"model"`` (e.g. the model's input specification).
    """
    from captum_fau._utils.fingerprint import dataset_fingerprint, state_dict_hash
    from captum_fau.data.transforms import recorded_local_mean_padding

    model_part = {"class": f"{type(model).__module__}.{type(model).__qualname__}", "state_dict": state_dict_hash(model),
                  "local_mean_padding": recorded_local_mean_padding(model), **extra}  # fmt: skip
    return {"model": model_part, "data": dataset_fingerprint(dataset)}


def _scan_inputs(run: "_Run") -> dict[str, Any]:
    """What the scan reads: the model's and the data's fingerprints, without the data's label hash (the steps
    that read labels key on the label arrays themselves)."""
    fingerprint = run.manifest.fingerprint
    return {"model": fingerprint["model"], "data": {k: v for k, v in fingerprint["data"].items() if k != "labels"}}


def _scan_key(run: "_Run") -> str:
    """The scan's key: :func:`_scan_inputs` and the scan's parameters."""
    config = run.config
    return run.manifest.key("scan", **_scan_inputs(run), layer=config.layer, n=config.n, rule=config.rule)


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
        checkpoint (str or Path, optional): Safetensors weights for ``timm:``/``module:`` model
            specs (or to replace a zoo model's). Default: None
        au_csv (str or Path, optional): AU labels (OpenFace / py-feat csv) for ``folder:`` data.
        n_featured (int): Filters shown in the figures. Default: 10
        permutations (int): Label permutations for p-values. Default: 1000
        bootstrap (int): Bootstrap resamples for CIs. Default: 200
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
    checkpoint: str | Path | None = None
    au_csv: str | Path | None = None
    n_featured: int = 10
    permutations: int = 1000
    bootstrap: int = 200
    batch_size: int = 64
    device: str | torch.device = "cpu"
    seed: int = 0
    progress: bool = True
    resume: bool = True
    title: str | None = None
    checkpoint_every_s: float = 60.0

    def __post_init__(self) -> None:
        from captum_fau.attr.rules import check_rule

        if not isinstance(self.layer, str) or not self.layer.strip():
            raise LayerError(f"AnalysisConfig.layer must be a dotted module name such as 'conv3', got {self.layer!r}.")
        if not isinstance(self.out, (str, os.PathLike)):
            raise ConfigError(f"AnalysisConfig.out must be a folder path, got {type(self.out).__name__}.")
        self.out = Path(self.out)
        for name in ("n", "n_featured", "batch_size"):
            _check_count(name, getattr(self, name), 1)
        every = self.checkpoint_every_s
        if isinstance(every, bool) or not isinstance(every, (int, float, np.integer, np.floating)) or not every >= 0:
            raise ConfigError(
                f"AnalysisConfig.checkpoint_every_s must be a number of seconds >= 0, got {every!r}; "
                "pass e.g. checkpoint_every_s=60."
            )
        for name in ("permutations", "bootstrap", "seed"):
            _check_count(name, getattr(self, name), 0)
        check_rule(self.rule)


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
    top_values = topn.values[:, 0].numpy()
    return [int(topn.filters[i]) for i in np.argsort(-top_values, kind="stable")[:count]]


def _masks_fn(faces: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """Ground-truth AU regions for dataset indices, when the data can render them (SynthFACS)."""
    meta = getattr(faces, "meta", None) or {}
    if getattr(faces, "name", "") != "synthfacs" or "seed" not in meta:
        return None
    from captum_fau.data.synthfacs import region_masks

    names = getattr(faces, "names", None)

    def masks_for(indices: np.ndarray) -> np.ndarray:
        global_idx = np.asarray(names)[indices].astype(np.int64) if names is not None else np.asarray(indices)
        return region_masks(meta["seed"], global_idx, size=meta["size"], mode=meta["mode"], n_subjects=meta["n_subjects"])

    return masks_for


def emotion_accuracy(logits: np.ndarray, emotions: np.ndarray, class_names: Sequence[str]) -> dict[str, Any] | None:
    """:func:`~captum_fau.train.evaluate.accuracy_summary` of the labelled images (``emotions >= 0``).

    Returns None when no image is labelled or the model's outputs do not match ``class_names``.
    """
    from captum_fau.train.evaluate import accuracy_summary

    labelled = np.asarray(emotions) >= 0
    if not labelled.any() or logits.ndim != 2 or logits.shape[1] != len(class_names):
        return None
    return accuracy_summary(np.asarray(emotions)[labelled], logits[labelled].argmax(1), class_names)


def analyze(model: nn.Module | str, data: Any, config: AnalysisConfig | None = None, **overrides: Any) -> AnalysisResult:
    r"""Run top-N deconvolution, FAU-KL and accuracy on one model and dataset; write a report.

    Args:
        model (nn.Module or str): A model, or a spec accepted by
            :func:`captum_fau.zoo.resolve.load_model_spec` (zoo name, Hub folder, ``timm:NAME``,
            ``module:factory``).
        data: A :class:`~captum_fau.data.base.FaceSet` (or other dataset of dict items), or a
            spec accepted by :func:`captum_fau.data.spec.load_data_spec` (``synthfacs:N``,
            ``ckplus:PATH``, ``tfd:PATH``, ``fer2013:PATH``, ``folder:PATH``).
        config (AnalysisConfig, optional): The analysis parameters. Default: ``AnalysisConfig()``
        **overrides: Fields of :class:`AnalysisConfig` to change, e.g. ``layer="conv2", n=5``.

    Runs on one process or on every rank of a ``torch.distributed`` group: under
    ``torchrun`` (``WORLD_SIZE > 1`` in the environment) it joins the group itself
    (``gloo`` on CPU, ``nccl`` on CUDA with one GPU per rank). Each rank scans a
    contiguous part of the data and reconstructs a share of the filters; rank 0
    merges them, computes the statistics and writes every output. Other ranks
    return an :class:`AnalysisResult` with a note and no results.

    Returns:
        AnalysisResult

    Examples::

        >>> from captum_fau.analyze import AnalysisConfig, analyze
        >>> config = AnalysisConfig(layer="conv3", out="report", n=5, progress=False)
        >>> result = analyze("zerobias-synthfacs-8class", "synthfacs:200", config)  # doctest: +SKIP
        >>> again = analyze("zerobias-synthfacs-8class", "synthfacs:200", config, n=10)  # doctest: +SKIP
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
    with _timed(run.timings, "report"):
        featured = featured_filters(scanned.topn, faukl, run.layer, min(config.n_featured, int(scanned.topn.filters.numel())))
        localisation = _localisation_step(run, scanned.topn, faukl)
        report = _report_step(run, scanned.topn, faukl, accuracy, localisation, featured)
    return AnalysisResult(out=run.out, topn=scanned.topn, faukl=faukl, accuracy=accuracy, localisation=localisation,
                          featured=featured, notes=run.notes, report=report, timings=run.timings)  # fmt: skip


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
        model = load_model_spec(model, checkpoint=config.checkpoint, device=dev)
    model = model.to(dev).eval()
    layer_name(model, config.layer)
    progress = config.progress and rank == 0
    faces = _open_data(data, config.au_csv, config.seed, progress) if isinstance(data, str) else data
    from captum_fau.data.base import preprocessed_for

    # Preprocess as the model was trained (its config records the local mean's border padding).
    faces = preprocessed_for(faces, model)
    if len(faces) == 0:
        raise DatasetError(f"The dataset {data_name} is empty.")
    dataset, notes = adapt_inputs(model, faces)
    params = {"model": model_name, "data": data_name, "layer": config.layer, "n": config.n, "rule": config.rule,
              "seed": config.seed, "permutations": config.permutations, "bootstrap": config.bootstrap,
              "n_images": len(faces)}  # fmt: skip
    manifest = _Manifest(config.out, _fingerprint(model, dataset), params, resume=config.resume)
    return _Run(config=config, model=model, faces=faces, dataset=dataset, model_name=model_name, data_name=data_name,
                params=params, manifest=manifest, rank=rank, world_size=world_size, notes=notes)  # fmt: skip


def adapt_inputs(model: nn.Module, faces: Any) -> tuple[Dataset, list[str]]:
    """``faces`` as ``model`` expects its inputs, with a note per change made.

    Channels are repeated or averaged and images resized when the model says what it expects
    (:func:`captum_fau.zoo.resolve.expected_input`); otherwise ``faces`` is returned unchanged.

    Args:
        model (nn.Module): The model the images are for.
        faces (Dataset): Items are dicts with an ``"image"`` tensor ``[C, H, W]``.

    Returns:
        tuple: The dataset to feed the model (``faces`` itself when nothing changes) and the notes.
    """
    from captum_fau.zoo.resolve import adapt_images, expected_input

    expected = expected_input(model)
    sample = faces[0]["image"]
    if expected is None or (
        sample.shape[0] == expected[0] and (expected[1] <= 0 or tuple(sample.shape[1:]) == tuple(expected[1:]))
    ):
        return faces, []
    notes = [f"Input adapted to the model: {note}." for note in adapt_images(sample[None], expected)[1]]
    return _AdaptedInputs(faces, expected), notes


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
    topn = TopNDeconv(run.model, run.layer, rule=config.rule).from_scan(result, progress=run.progress)
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
    topn.save(run.out)
    maxima = result.layers[run.layer].maxima.float().numpy()
    order = result.indices.numpy()
    outputs = result.outputs
    logits = outputs.numpy() if outputs is not None and outputs.dim() == 2 else np.zeros((0, 0))
    labels = _labels(run.faces, result.extras, order)
    atomic_npz(maxima_file, maxima=maxima, indices=order, logits=logits, **{f"label_{k}": v for k, v in labels.items()})
    run.manifest.mark("scan", {"images": int(len(order)), "processes": run.world_size})
    return _Scanned(topn, maxima, logits, labels)


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
                     bootstrap=config.bootstrap, seed=config.seed)  # fmt: skip
    if run.manifest.finished("faukl", path):
        return FAUKLResult.load(path)
    subjects = scanned.labels.get("subject")
    groups = scanned.labels.get("sequence", subjects)
    fau = FAUKL(run.model, [run.layer], n_permutations=config.permutations, n_bootstrap=config.bootstrap,
                seed=config.seed, progress=run.progress)  # fmt: skip
    faukl = fau.interpret_activations(
        {run.layer: scanned.maxima}, aus, au_ids=au_ids, groups=groups, bootstrap_groups=subjects,
        meta={"model": run.model_name, "data": run.data_name},
    )  # fmt: skip
    from captum_fau._utils.faults import pause_point

    pause_point("faukl")
    faukl.save(path)
    faukl.to_csv(run.out / "fau_kl.csv")
    run.manifest.mark("faukl")
    return faukl


def _accuracy_step(run: _Run, scanned: _Scanned) -> dict[str, Any] | None:
    """Step 3, accuracy when the data has emotion labels the model predicts."""
    emotions = scanned.labels.get("emotion")
    class_names = tuple(getattr(run.faces, "class_names", ()) or ())
    if emotions is None:
        run.notes.append("Accuracy skipped: the data has no emotion labels.")
        return None
    run.manifest.key("accuracy", scan=run.manifest.keys["scan"],
                     emotions=_label_key(scanned, "emotion", class_names=list(class_names)))  # fmt: skip
    if run.manifest.finished("accuracy"):
        return run.manifest.info("accuracy") or None
    accuracy = emotion_accuracy(scanned.logits, emotions, class_names)
    if accuracy is None:
        run.notes.append(f"Accuracy skipped: the model's outputs do not match the data's {len(class_names)} classes.")
    run.manifest.mark("accuracy", accuracy or {})
    return accuracy


def _localisation_step(run: _Run, topn: Any, faukl: Any | None) -> dict[str, Any] | None:
    """Step 4a, agreement of FAU-KL's top AU with the ground-truth AU regions (SynthFACS only)."""
    masks_for = _masks_fn(run.faces)
    if faukl is None or masks_for is None:
        return None
    from captum_fau.concept.localisation import localisation_agreement, region_energy

    st = faukl.stats(run.layer)
    significant = [int(f) for f in np.flatnonzero((np.where(st.testable, st.q, 1.0) < 0.05).any(axis=1))]
    if not significant:
        return {"rate": None, "n_filters": 0, "per_filter": []}
    rows = [topn.row(f) for f in significant]
    energy = region_energy(topn.patches[rows], topn.boxes[rows], topn.indices[rows], masks_for)
    au_ids = tuple(getattr(run.faces, "au_ids", ()) or ())
    return localisation_agreement(energy, [faukl.top_au(f, run.layer) for f in significant], au_ids, significant)


def _report_step(
    run: _Run, topn: Any, faukl: Any | None, accuracy: dict[str, Any] | None,
    localisation: dict[str, Any] | None, featured: list[int],
) -> Path:  # fmt: skip
    """Step 4b, the HTML report with the paper's figures and the machine-readable results."""
    from captum_fau.viz.analysis_report import build_report

    report = build_report(
        run.out, model=run.model_name, data=run.data_name, layer=run.layer, faces=run.faces, topn=topn, faukl=faukl,
        accuracy=accuracy, localisation=localisation, featured=featured, notes=run.notes, params=run.params,
        title=run.config.title,
    )  # fmt: skip
    run.manifest.key("report", steps=dict(run.manifest.keys), featured=featured, title=run.config.title)
    run.manifest.mark("report")
    return report


def _open_data(spec: str, au_csv: str | Path | None, seed: int, progress: bool) -> Any:
    """The dataset a spec names. SynthFACS is opened lazily: each rank renders only the images it
    scans and memory does not grow with N (the pixels equal those of the in-memory FaceSet)."""
    from captum_fau.data.spec import load_data_spec, parse_data_spec

    kind, argument = parse_data_spec(spec)
    if kind == "synthfacs" and argument.isdigit() and int(argument) >= 1 and au_csv is None:
        from captum_fau.data.synthfacs import SynthFACS

        return SynthFACS(n=int(argument), seed=seed)
    return load_data_spec(spec, au_csv=au_csv, seed=seed, progress=progress)


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


__all__ = ["AnalysisConfig", "AnalysisResult", "adapt_inputs", "analyze", "emotion_accuracy", "featured_filters"]


class _CallableModule(types.ModuleType):
    """``captum_fau.analyze`` names both this module and the function: once ``import captum_fau.analyze``
    has run, ``from captum_fau import analyze`` finds the module, so calling the module runs the function."""

    def __call__(self, model: nn.Module | str, data: Any, config: AnalysisConfig | None = None, **overrides: Any) -> AnalysisResult:
        return analyze(model, data, config, **overrides)


sys.modules[__name__].__class__ = _CallableModule
