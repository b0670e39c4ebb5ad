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

    >>> from captum_fau.analyze import analyze
    >>> result = analyze("zerobias-synthfacs-8class", "synthfacs:200", out="report",
    ...                  progress=False)                                 # doctest: +SKIP
    >>> result.report                                                    # doctest: +SKIP
    PosixPath('report/index.html')
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from captum_fau.errors import DatasetError, LayerError, OutputError

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
        from captum_fau.model_spec import adapt_images

        item = dict(self.base[index])
        item["image"] = adapt_images(item["image"][None], self.expected)[0][0]
        return item


def _params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Manifest:
    """``OUT/analysis.json``: parameters and finished steps, rewritten atomically after each step."""

    def __init__(self, out: Path, params: dict[str, Any], resume: bool = True) -> None:
        self.path = out / "analysis.json"
        self.params_hash = _params_hash(params)
        self.params = params
        self.done: dict[str, Any] = {}
        if resume and self.path.is_file():
            try:
                old = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                old = {}
            if old.get("params_hash") == self.params_hash:
                self.done = dict(old.get("done", {}))

    def finished(self, step: str, *files: Path) -> bool:
        return step in self.done and all(f.exists() for f in files)

    def mark(self, step: str, info: Any = True) -> None:
        from captum_fau.io import atomic_write_text

        self.done[step] = info
        payload = {"params_hash": self.params_hash, "params": self.params, "done": self.done}
        atomic_write_text(self.path, json.dumps(payload, indent=2, default=str) + "\n")


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"  # one per process: ranks share the folder
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"Cannot write to the output folder {out} ({err}); choose a writable --out.") from err


def _featured_filters(topn: Any, faukl: Any | None, layer: str, count: int) -> list[int]:
    """The most informative filters: strongest significant AU association, else strongest response."""
    channels = int(topn.filters.numel())
    count = min(count, channels)
    if faukl is not None:
        st = faukl.stats(layer)
        strength = np.where(st.testable, st.kl_corrected, -np.inf).max(axis=1)
        best_q = np.where(st.testable, st.q, np.inf).min(axis=1)
        order = np.lexsort((-strength, best_q >= 0.05))  # significant first, then by corrected KL
        return [int(f) for f in order[:count]]
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


def _accuracy(logits: np.ndarray, emotions: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any] | None:
    """Accuracy, confusion matrix and per-class accuracy over the labelled images (``emotions >= 0``)."""
    labelled = emotions >= 0
    if not labelled.any() or logits.ndim != 2 or logits.shape[1] != len(class_names):
        return None
    preds = logits.argmax(1)
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (emotions[labelled], preds[labelled]), 1)
    per_class = confusion.diagonal() / np.clip(confusion.sum(1), 1, None)
    return {
        "accuracy": float(confusion.diagonal().sum() / max(1, confusion.sum())),
        "n": int(labelled.sum()),
        "class_names": list(class_names),
        "confusion": confusion.tolist(),
        "per_class_accuracy": {name: float(a) for name, a in zip(class_names, per_class)},
    }


def analyze(
    model: nn.Module | str,
    data: Any,
    layer: str = "conv3",
    out: str | Path = "captum-fau-report",
    *,
    n: int = 10,
    rule: str = "guided",
    checkpoint: str | Path | None = None,
    au_csv: str | Path | None = None,
    n_featured: int = 10,
    permutations: int = 1000,
    bootstrap: int = 200,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    resume: bool = True,
    title: str | None = None,
    checkpoint_every: int = 50,
) -> AnalysisResult:
    r"""Run top-N deconvolution, FAU-KL and accuracy on one model and dataset; write a report.

    Args:
        model (nn.Module or str): A model, or a spec accepted by
            :func:`captum_fau.model_spec.load_model_spec` (zoo name, Hub folder, ``timm:NAME``,
            ``module:factory``).
        data: A :class:`~captum_fau.data.base.FaceSet` (or other dataset of dict items), or a
            spec accepted by :func:`captum_fau.data.spec.load_data_spec` (``synthfacs:N``,
            ``ckplus:PATH``, ``tfd:PATH``, ``fer2013:PATH``, ``folder:PATH``).
        layer (str, optional): Dotted name of the analysed layer. Default: ``"conv3"``
        out (str or Path, optional): Output folder. Default: ``"captum-fau-report"``
        n (int, optional): Top images per filter. Default: 10 (the paper's N)
        rule (str, optional): ``"guided"``, ``"deconv"`` or ``"gradient"``. Default: ``"guided"``
        checkpoint (str or Path, optional): Weights for ``timm:``/``module:`` model specs.
        au_csv (str or Path, optional): AU labels for ``folder:`` data.
        n_featured (int, optional): Filters shown in the figures. Default: 10
        permutations (int, optional): Label permutations for p-values. Default: 1000
        bootstrap (int, optional): Bootstrap resamples for CIs. Default: 200
        batch_size (int, optional): Default: 64
        device (str or torch.device, optional): Default: ``"cpu"``
        seed (int, optional): Seeds data rendering and the statistics. Default: 0
        progress (bool, optional): Progress bars. Default: True
        resume (bool, optional): Reuse finished steps found in ``out``; an interrupted scan
            continues from its last checkpoint. Default: True
        title (str, optional): Report title.
        checkpoint_every (int, optional): Batches between scan checkpoints (in
            ``out/scan-checkpoint``, removed once the scan's results are written). Default: 50

    Runs on one process or on every rank of a ``torch.distributed`` group: under
    ``torchrun`` (``WORLD_SIZE > 1`` in the environment) it joins the group itself
    (``gloo`` on CPU, ``nccl`` on CUDA with one GPU per rank). Each rank scans a
    contiguous part of the data and reconstructs a share of the filters; rank 0
    merges them, computes the statistics and writes every output. Other ranks
    return an :class:`AnalysisResult` with a note and no results.

    Returns:
        AnalysisResult
    """
    from captum_fau.device import resolve_device
    from captum_fau.stats import distributed

    with distributed.process_group_from_env(resolve_device(device)) as dev:
        return _analyze(
            model, data, layer, Path(out), n=n, rule=rule, checkpoint=checkpoint, au_csv=au_csv,
            n_featured=n_featured, permutations=permutations, bootstrap=bootstrap, batch_size=batch_size,
            dev=dev, seed=seed, progress=progress, resume=resume, title=title, checkpoint_every=checkpoint_every,
        )  # fmt: skip


def _analyze(
    model: nn.Module | str, data: Any, layer: str, out: Path, *, n: int, rule: str, checkpoint: str | Path | None,
    au_csv: str | Path | None, n_featured: int, permutations: int, bootstrap: int, batch_size: int,
    dev: torch.device, seed: int, progress: bool, resume: bool, title: str | None, checkpoint_every: int,
) -> AnalysisResult:  # fmt: skip
    from captum_fau.attr import TopNDeconv, TopNResult
    from captum_fau.concept import FAUKL, FAUKLResult
    from captum_fau.model_spec import expected_input, load_model_spec
    from captum_fau.stats import distributed
    from captum_fau.stats.scan import conv_like_layers, scan

    rank, world_size = distributed.world()
    progress = progress and rank == 0
    torch.manual_seed(seed)
    _check_out(out)
    model_name = model if isinstance(model, str) else type(model).__name__
    data_name = data if isinstance(data, str) else repr(data)[:120]
    if isinstance(model, str):
        model = load_model_spec(model, checkpoint=checkpoint, device=dev)
    model = model.to(dev).eval()
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        raise LayerError(f"Layer {layer!r} is not in the model; its conv layers: {', '.join(conv_like_layers(model)[:40])}.")
    faces = _open_data(data, au_csv, seed, progress) if isinstance(data, str) else data
    from captum_fau.data.base import preprocessed_for

    # Preprocess as the model was trained (its config records the local mean's border padding).
    faces = preprocessed_for(faces, model)
    if len(faces) == 0:
        raise DatasetError(f"The dataset {data_name} is empty.")

    notes: list[str] = []
    expected = expected_input(model)
    sample = faces[0]["image"]
    dataset: Dataset = faces
    if expected is not None and (
        sample.shape[0] != expected[0] or (expected[1] > 0 and tuple(sample.shape[1:]) != tuple(expected[1:]))
    ):
        from captum_fau.model_spec import adapt_images

        notes += [f"Input adapted to the model: {note}." for note in adapt_images(sample[None], expected)[1]]
        dataset = _AdaptedInputs(faces, expected)

    params = {"model": model_name, "data": data_name, "layer": layer, "n": n, "rule": rule, "seed": seed,
              "permutations": permutations, "bootstrap": bootstrap, "n_images": len(faces)}  # fmt: skip
    manifest = _Manifest(out, params, resume=resume)
    timings: dict[str, float] = {}

    # 1. One pass over the data: per-image maxima + running top-N, then reconstructions.
    maxima_file = out / "maxima.npz"
    started = time.perf_counter()
    if distributed.broadcast_flag(manifest.finished("scan", out / "topn.safetensors", maxima_file)):
        if rank != 0:
            return _other_rank_result(out, rank, world_size)
        topn = TopNResult.load(out)
        with np.load(maxima_file, allow_pickle=False) as z:
            maxima, order, logits = z["maxima"], z["indices"], z["logits"]
            stored = {key[len("label_") :]: z[key] for key in z.files if key.startswith("label_")}
        labels = {**_labels(faces, {}, order), **stored}
    else:
        from captum_fau.stats.checkpoint import ScanCheckpoint

        # A FaceSet says up front whether it has emotion labels; other datasets may carry them per item.
        emotions_known = getattr(faces, "emotions", None) is not None or not _is_face_set(faces)
        checkpoint_dir = out / "scan-checkpoint"
        if not resume and rank == 0 and checkpoint_dir.exists():
            import shutil

            shutil.rmtree(checkpoint_dir)
        distributed.barrier()  # no rank starts writing checkpoints before rank 0 has cleared them
        result = scan(model, layer, dataset, top_n=n, batch_size=batch_size, device=dev, progress=progress,
                      keep_inputs=True, keep_outputs=emotions_known, checkpoint=checkpoint_dir,
                      checkpoint_every=checkpoint_every, gather="rank0")  # fmt: skip
        if result.resumed_batches:
            notes.append(f"The scan resumed from a checkpoint after {result.resumed_batches} batch(es).")
        topn = TopNDeconv(model, layer, rule=rule).from_scan(result, progress=progress)
        error: BaseException | None = None
        if rank == 0:
            try:
                assert topn is not None
                topn.save(out)
                maxima = result.layers[layer].maxima.float().numpy()
                order = result.indices.numpy()
                outputs = result.outputs
                logits = outputs.numpy() if outputs is not None and outputs.dim() == 2 else np.zeros((0, 0))
                labels = _labels(faces, result.extras, order)
                _atomic_npz(maxima_file, maxima=maxima, indices=order, logits=logits,
                            **{f"label_{k}": v for k, v in labels.items()})  # fmt: skip
                manifest.mark("scan", {"images": int(len(order)), "processes": world_size})
            except Exception as err:  # noqa: BLE001 - every rank learns of it in agree()
                error = err
        distributed.agree(error)
        # The results are on disk: the checkpoints are no longer needed (each rank removes its own).
        ScanCheckpoint(checkpoint_dir, {}, rank, world_size).clear()
        if rank != 0:
            return _other_rank_result(out, rank, world_size)
    timings["scan"] = time.perf_counter() - started

    # 2. FAU-KL from the same maxima.
    faukl = None
    au_ids = tuple(getattr(faces, "au_ids", ()) or ())
    aus = labels.get("aus")
    started = time.perf_counter()
    if aus is None or not au_ids:
        notes.append("FAU-KL skipped: the data has no AU labels (use CK+ FACS files, --au-csv, or SynthFACS).")
    elif manifest.finished("faukl", out / "fau_kl.safetensors"):
        faukl = FAUKLResult.load(out / "fau_kl.safetensors")
    else:
        subjects = labels.get("subject")
        groups = labels.get("sequence", subjects)
        fau = FAUKL(model, [layer], n_permutations=permutations, n_bootstrap=bootstrap, seed=seed, progress=progress)
        faukl = fau.interpret_activations(
            {layer: maxima}, aus, au_ids=au_ids, groups=groups, bootstrap_groups=subjects,
            meta={"model": model_name, "data": data_name},
        )  # fmt: skip
        faukl.save(out / "fau_kl.safetensors")
        faukl.to_csv(out / "fau_kl.csv")
        manifest.mark("faukl")
    timings["faukl"] = time.perf_counter() - started

    # 3. Accuracy when the data has emotion labels the model predicts.
    accuracy = None
    started = time.perf_counter()
    emotions = labels.get("emotion")
    class_names = tuple(getattr(faces, "class_names", ()) or ())
    if emotions is None:
        notes.append("Accuracy skipped: the data has no emotion labels.")
    elif manifest.finished("accuracy"):
        accuracy = manifest.done["accuracy"] or None
    else:
        accuracy = _accuracy(logits, emotions, class_names)
        if accuracy is None:
            notes.append(f"Accuracy skipped: the model's outputs do not match the data's {len(class_names)} classes.")
        manifest.mark("accuracy", accuracy or {})
    timings["accuracy"] = time.perf_counter() - started

    # 4. Localisation agreement (ground-truth AU regions) and the report.
    started = time.perf_counter()
    featured = _featured_filters(topn, faukl, layer, n_featured)
    localisation = None
    masks_for = _masks_fn(faces)
    if faukl is not None and masks_for is not None:
        from captum_fau.concept.localisation import localisation_agreement, region_energy

        st = faukl.stats(layer)
        significant = [int(f) for f in np.flatnonzero((np.where(st.testable, st.q, 1.0) < 0.05).any(axis=1))]
        if significant:
            rows = [topn.row(f) for f in significant]
            energy = region_energy(topn.patches[rows], topn.boxes[rows], topn.indices[rows], masks_for)
            localisation = localisation_agreement(energy, [faukl.top_au(f, layer) for f in significant],
                                                  au_ids, significant)  # fmt: skip
        else:
            localisation = {"rate": None, "n_filters": 0, "per_filter": []}
    from captum_fau.viz.analysis_report import build_report

    report = build_report(
        out, model=model_name, data=data_name, layer=layer, faces=faces, topn=topn, faukl=faukl,
        accuracy=accuracy, localisation=localisation, featured=featured, notes=notes, params=params, title=title,
    )  # fmt: skip
    manifest.mark("report")
    timings["report"] = time.perf_counter() - started
    return AnalysisResult(out=out, topn=topn, faukl=faukl, accuracy=accuracy, localisation=localisation,
                          featured=featured, notes=notes, report=report, timings=timings)  # fmt: skip


def _open_data(spec: str, au_csv: str | Path | None, seed: int, progress: bool) -> Any:
    """The dataset a spec names. SynthFACS is opened lazily: each rank renders only the images it
    scans and memory does not grow with N (the pixels equal those of the in-memory FaceSet)."""
    from captum_fau.data.spec import load_data_spec, parse_data_spec

    kind, argument = parse_data_spec(spec)
    if kind == "synthfacs" and argument.isdigit() and int(argument) >= 1 and au_csv is None:
        from captum_fau.data.synthfacs import SynthFACS

        return SynthFACS(n=int(argument), seed=seed)
    return load_data_spec(spec, au_csv=au_csv, seed=seed, progress=progress)


def _is_face_set(data: Any) -> bool:
    from captum_fau.data.base import FaceSet

    return isinstance(data, FaceSet)


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


def _atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    from captum_fau.io import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


__all__ = ["AnalysisResult", "analyze"]
