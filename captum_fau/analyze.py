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

import os
import shutil
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from captum_fau._utils import shell
from captum_fau._utils.manifest import StepManifest
from captum_fau.errors import ConfigError, DatasetError, DistributedError, OutputError

from captum_fau.analysis_config import AnalysisConfig, AnalysisResult, _resolve_config
from captum_fau.featured import featured_filters


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


def analyze(
    model: nn.Module | str, data: Any, config: AnalysisConfig | None = None, **overrides: Any
) -> AnalysisResult:
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
    manifest: StepManifest
    rank: int
    world_size: int
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mapping: Any = None
    spec: Any = None

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
    from captum_fau.probe_steps import check_probes, run_probes

    run = _prepare(model, data, config, dev)
    if lock_note:
        run.notes.append(lock_note)
    check_probes(run)  # before the scan: a probe asked for that cannot run is refused now
    scanned = _scan_step(run, dev)
    if scanned is None:  # a rank other than 0: rank 0 writes the results
        return _other_rank_result(run.out, run.rank, run.world_size)
    if scanned.topn.rule_caveat:  # --relu-like: said wherever the rule is named, the notes first
        run.notes.append(f"WARNING: {scanned.topn.rule_caveat}.")
    with _timed(run.timings, "faukl"):
        faukl = _faukl_step(run, scanned)
    with _timed(run.timings, "accuracy"):
        accuracy = _accuracy_step(run, scanned)
    with _timed(run.timings, "reconstruct"):
        scanned = scanned._replace(topn=_reconstruct_step(run, scanned.topn, faukl))
    featured = featured_filters(scanned.topn, faukl, run.layer, min(config.n_featured, len(scanned.topn.top_values())))
    with _timed(run.timings, "sanity"):
        sanity = _sanity_step(run, scanned.topn, featured)
    probes = run_probes(run, scanned.labels, faukl)
    with _timed(run.timings, "report"):
        localisation = _localisation_step(run, scanned.topn, faukl)
        report = _report_step(run, scanned.topn, faukl, accuracy, localisation, featured, sanity, probes)
    return AnalysisResult(out=run.out, topn=scanned.topn, faukl=faukl, accuracy=accuracy, localisation=localisation,
                          featured=featured, notes=run.notes, report=report, timings=run.timings,
                          sanity=sanity, probes=probes)  # fmt: skip


def _prepare(model: nn.Module | str, data: Any, config: AnalysisConfig, dev: torch.device) -> _Run:
    """Check the output folder, run the preflight (model, data, inputs, the one forward check, labels), open
    the manifest."""
    from captum_fau import preflight
    from captum_fau._utils import distributed

    rank, world_size = distributed.world()
    torch.manual_seed(config.seed)
    _check_out(config.out)
    ready = preflight.prepare(model, data, config, dev, progress=config.progress and rank == 0)
    params = {"model": ready.model_name, "data": ready.data_name, "layer": config.layer, "n": config.n,
              "rule": config.rule, "relu_like": config.relu_like,
              "seed": config.seed, "statistics": asdict(config.statistics),
              "n_images": len(ready.faces), "data_provenance": ready.provenance, "input_spec": ready.spec.to_dict(),
              "class_names": None if ready.mapping is None else list(ready.mapping.model_classes),
              "face_crop": config.face_crop}  # fmt: skip
    fingerprint = _fingerprint(ready.model, ready.dataset, input_spec=ready.spec.to_dict())
    manifest = StepManifest(config.out, fingerprint, params, resume=config.resume)
    return _Run(config=config, model=ready.model, faces=ready.faces, dataset=ready.dataset, model_name=ready.model_name,
                data_name=ready.data_name, params=params, manifest=manifest, rank=rank, world_size=world_size,
                notes=ready.notes, mapping=ready.mapping, spec=ready.spec)  # fmt: skip


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
    from captum_fau._utils.fingerprint import hash_arrays
    from captum_fau._utils.io import atomic_npz
    from captum_fau.attr import TopNResult
    from captum_fau.data.lazy import LazyFaceSet
    from captum_fau.stats.batching import is_face_set

    topn = TopNResult.load(run.out)
    with np.load(maxima_file, allow_pickle=False) as z:
        maxima, order, logits = z["maxima"], z["indices"], z["logits"]
        stored = {key[len("label_") :]: z[key] for key in z.files if key.startswith("label_")}
    # The dataset's label arrays win over the stored ones; a FaceSet's are all it has (one it lost is dropped).
    current = _labels(run.faces, {}, order)
    labels = current if is_face_set(run.faces) or isinstance(run.faces, LazyFaceSet) else {**stored, **current}
    if run.rank == 0 and hash_arrays(*labels.values(), sorted(labels)) != hash_arrays(*stored.values(), sorted(stored)):
        atomic_npz(maxima_file, maxima=maxima, indices=order, logits=logits,
                   **{f"label_{k}": v for k, v in labels.items()})  # fmt: skip
    return _Scanned(topn, maxima, logits, labels)


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
    options = config.scan_options.with_changes(device=dev, progress=run.progress, keep_outputs=emotions_known,
                                               checkpoint=checkpoint_dir, fingerprint=_scan_inputs(run))  # fmt: skip
    result = scan(run.model, run.layer, run.dataset, options)
    run.notes.extend(result.notes)
    if result.resumed_batches:
        run.notes.append(f"The scan resumed from a checkpoint after {result.resumed_batches} batch(es).")
    # The search only: which filters are back-projected is decided after FAU-KL (_reconstruct_step).
    topn = TopNDeconv(run.model, run.layer, rule=config.rule, relu_like=config.relu_like).from_scan(
        result, progress=run.progress, reconstruct=[]
    )
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
    topn.meta.setdefault("input_spec", run.params["input_spec"])  # the windows shown as the model saw them
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
            f"the other {len(topn.pending_filters)} are found but not back-projected. Complete them with "
            f"{shell.captum_fau('topn', '--out', run.out, '--filters', 'K,...')} (the same --model/--data/--layer/--rule), "
            "or rerun with "
            "--topn-budget-mb 0 (Python: topn_budget_mb=0)."
        )
    return topn


def _faukl_step(run: _Run, scanned: _Scanned) -> Any | None:
    """Step 2, FAU-KL from the scan's maxima (skipped without AU labels)."""
    from captum_fau.concept import FAUKL, FAUKLResult
    from captum_fau.concept.faukl import design_from_labels

    au_ids = tuple(getattr(run.faces, "au_ids", ()) or ())
    aus = scanned.labels.get("aus")
    path = run.out / "fau_kl.safetensors"
    if aus is None or not au_ids:
        run.notes.append("FAU-KL skipped: the data has no AU labels (use CK+ FACS files, --au-csv, or SynthFACS).")
        return None
    options = run.config.statistics
    run.manifest.key("faukl", scan=run.manifest.keys["scan"], aus=_label_key(scanned, "aus", au_ids=list(au_ids)),
                     groups=_label_key(scanned, "subject", "sequence"), statistics=asdict(options),
                     strata=_label_key(scanned, options.stratify) if options.stratify else None)  # fmt: skip
    if run.manifest.finished("faukl", path):
        loaded = FAUKLResult.load(path)
        run.notes.extend(n for n in loaded.stats().notes if n.startswith("WARNING"))
        return loaded
    design = design_from_labels(scanned.labels, options.stratify)
    fau = FAUKL(run.model, [run.layer], options, progress=run.progress)
    faukl = fau.interpret_activations({run.layer: scanned.maxima}, aus, au_ids=au_ids, design=design,
                                      meta={"model": run.model_name, "data": run.data_name})  # fmt: skip
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
        from captum_fau.inputs.classes import emotion_accuracy

        accuracy = emotion_accuracy(scanned.logits, emotions, mapping)
        run.manifest.mark("accuracy", accuracy or {})
    if accuracy is None:
        run.notes.append("Accuracy skipped: no labelled image has a class of the model.")
    else:
        from captum_fau.preflight import mapping_note

        known = " ".join(run.notes)
        run.notes.extend(mapping_note(n) for n in accuracy["notes"] if n not in known)
    return accuracy


def _localisation_step(run: _Run, topn: Any, faukl: Any | None) -> dict[str, Any] | None:
    """Step 4a, agreement of FAU-KL's top AU with the ground-truth AU regions (SynthFACS only)."""
    from captum_fau.probe_steps import masks_fn

    masks_for = masks_fn(run.faces, getattr(run.dataset, "spec", None))  # in the frame of the reconstructions
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
    from captum_fau.attr.sanity import SanityCheckResult, sanity_budget

    path = run.out / "sanity.json"
    max_filters = config.sanity_filters or None
    if max_filters is not None:
        n, max_filters, budget_note = sanity_budget(run.model, run.layer, topn, n, max_filters)
        if budget_note:
            run.notes.append(budget_note)
    run.manifest.key("sanity", scan=run.manifest.keys["scan"], n=n, seed=config.seed, max_filters=max_filters,
                     featured=featured if max_filters else None, independent=True)  # fmt: skip
    figure = run.out / "sanity.png"
    if run.manifest.finished("sanity", path) and (
        figure.is_file() or not (run.manifest.info("sanity") or {}).get("figure")
    ):
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


def _report_step(
    run: _Run, topn: Any, faukl: Any | None, accuracy: dict[str, Any] | None,
    localisation: dict[str, Any] | None, featured: list[int], sanity: Any | None = None, probes: Any = None,
) -> Path:  # fmt: skip
    """Step 4b, the HTML report with the paper's figures and the machine-readable results."""
    from captum_fau.viz.analysis_report import build_report

    report = build_report(
        run.out, model=run.model_name, data=run.data_name, layer=run.layer, faces=run.faces, topn=topn, faukl=faukl,
        accuracy=accuracy, localisation=localisation, featured=featured, notes=run.notes, params=run.params,
        title=run.config.title, sanity=sanity, probes=probes,
    )  # fmt: skip
    run.manifest.key("report", steps=dict(run.manifest.keys), featured=featured, title=run.config.title)
    run.manifest.mark("report")
    return report


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


__all__ = ["AnalysisConfig", "AnalysisResult", "analyze", "featured_filters"]


class _CallableModule(types.ModuleType):
    """``captum_fau.analyze`` names both this module and the function: once ``import captum_fau.analyze``
    has run, ``from captum_fau import analyze`` finds the module, so calling the module runs the function."""

    def __call__(
        self, model: nn.Module | str, data: Any, config: AnalysisConfig | None = None, **overrides: Any
    ) -> AnalysisResult:
        return analyze(model, data, config, **overrides)


sys.modules[__name__].__class__ = _CallableModule
