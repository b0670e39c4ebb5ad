"""One streaming pass over a dataset at chosen layers: the engine every analysis shares.

:func:`scan` feeds a dataset through a model once and records, for every
image and every channel of each requested layer, the spatial maximum of the
channel's map and where it occurred. Optionally it keeps a running top-N per
channel (:class:`~captum_fau.stats.topn.RunningTopN`). The forward pass stops
at the deepest requested layer, the model runs in eval mode, and nothing of
size dataset x channels x height x width is ever held: the per-image store is
``[M, C]``.

:func:`scan` is a thin driver over the pieces of this package: reading the
data (:mod:`~captum_fau.stats.batching`), recording and accumulating each
batch (:mod:`~captum_fau.stats.accumulate`), checkpoints
(:mod:`~captum_fau.stats.checkpoint`) and merging the ranks of a distributed
scan (:mod:`~captum_fau.stats.merge`).

Top-N deconvolution (:class:`captum_fau.attr.TopNDeconv`) and the FAU-KL
association (:class:`captum_fau.concept.FAUKL`) are both built on it.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from torch import nn

from captum_fau._utils import distributed
from captum_fau._utils.device import input_device
from captum_fau._utils.modules import LayerSpec, eval_mode, resolve_layers
from captum_fau.errors import DatasetError
from captum_fau.inputs.resolve import declared_inputs
from captum_fau.stats.accumulate import LayerRecorder, ScanAccumulator
from captum_fau.stats.batching import Batch, MapSource, iter_batches, length_hint, plan_batches
from captum_fau.stats.checkpoint import ScanCheckpoint, scan_settings
from captum_fau.stats.options import ScanOptions, scan_options
from captum_fau.stats.merge import final_inputs, merge_ranks
from captum_fau.stats.result import LayerScan, ScanResult
from captum_fau.stats.rows import RowStore

_EMPTY = "The dataset is empty: the scan read no images. Check the data source and its filters."


def scan(
    model: nn.Module,
    layers: LayerSpec | Sequence[LayerSpec],
    data: Any,
    options: ScanOptions | None = None,
    *,
    additional_forward_args: Any = None,
    **settings: Any,
) -> ScanResult:
    r"""Read ``data`` once and record per-image channel maxima (and top-N) at ``layers``.

    Runs unchanged on one process or on every rank of an initialised
    ``torch.distributed`` process group (``torchrun``): then each rank reads a
    contiguous block of whole batches of the dataset, the ranks' top-N
    trackers are merged in rank order and the per-image rows are gathered, so
    the result equals the single-process one exactly. If any rank fails, every
    rank raises :class:`~captum_fau.errors.DistributedError`.

    Args:
        model (nn.Module): Any model; it runs in eval mode during the scan and
            gets its own mode back afterwards (with a warning if it was training).
        layers (str, nn.Module or sequence of them): Layers by dotted name
            (``"conv3"``, ``"layer2.1.conv1"``) or as modules. Each must output
            a ``[B, C, H, W]`` tensor and be called once per forward.
        data: A tensor ``[M, C, H, W]``, a FaceSet or other map-style Dataset
            (row ``i`` is dataset index ``i``), or a DataLoader / iterable of
            batches (single process, no checkpoints).
        options (ScanOptions, optional): How to read and record (top-N, batch size, device, progress,
            kept inputs/outputs, checkpoints, spilling, gathering); see :class:`~captum_fau.stats.options.ScanOptions`.
            A checkpoint folder (map-style data only) is saved atomically every ``checkpoint_every_s`` seconds
            and at the end; a rerun with the same folder and settings continues after the last checkpoint,
            and a checkpoint written with other settings, another model or other data is discarded
            (``ScanResult.notes`` says so). Default: ``ScanOptions()``
        additional_forward_args (Any, optional): Extra positional arguments for
            the model after the inputs. Default: None
        **settings: :class:`ScanOptions` fields given as keywords (``top_n=3, progress=False``); they
            override ``options``.

    Returns:
        ScanResult: per-layer :class:`LayerScan`, dataset indices, gathered labels.

    Examples::

        >>> import torch
        >>> from captum_fau import ZeroBiasCNN
        >>> model = ZeroBiasCNN().eval()
        >>> result = scan(model, "conv3", torch.randn(10, 1, 96, 96), top_n=3, progress=False)
        >>> result.layers["conv3"].maxima.shape, result.layers["conv3"].topn.result()["indices"].shape
        (torch.Size([10, 256]), torch.Size([256, 3]))
    """
    opts = scan_options(options, **settings)
    top_n, batch_size = opts.top_n, opts.batch_size
    names = resolve_layers(model, layers)
    rank, world_size = distributed.world()
    data = declared_inputs(model, data, stacklevel=3)
    recorder = LayerRecorder(model, names, input_device(model, opts.device), additional_forward_args,
                             candidates=None if opts.distinct_images else top_n, keep_outputs=opts.keep_outputs,
                             checked=getattr(data, "forward_check", None))  # fmt: skip
    source, batches = plan_batches(data, batch_size, resumable=opts.checkpoint is not None)
    if top_n is not None and opts.distinct_images and source is not None and 0 < len(source) < top_n:
        raise DatasetError(f"top_n={top_n} distinct images per filter were requested but the dataset has only "
                          f"{len(source)}; pass top_n <= {len(source)}.")  # fmt: skip
    ckpt, saved, notes = None, None, []
    if opts.checkpoint is not None:
        ckpt = ScanCheckpoint(opts.checkpoint, scan_settings(model, names, opts, len(source), additional_forward_args),  # type: ignore[arg-type]
                              rank, world_size)  # fmt: skip
        saved = ckpt.load()
        if ckpt.discarded:
            notes.append(ckpt.discarded)
    done = saved["batches_done"] if saved else 0
    rows = (
        ckpt.rows(saved["rows"] if saved else 0, opts.spill_bytes) if ckpt else RowStore(spill_bytes=opts.spill_bytes)
    )
    acc = ScanAccumulator(rows, top_n, opts.distinct_images, opts.keep_inputs,
                          label_columns=not (source is not None and source.face_set))  # fmt: skip
    failure: BaseException | None = None
    with eval_mode(model, "The scan"), recorder:
        total = len(batches) if batches is not None else length_hint(data, batch_size)
        bar = _progress_bar(total, done, names, enabled=opts.progress and rank == 0)
        try:
            if batches is not None:
                _read_source(source, batches[done:], done, (recorder, acc, bar), ckpt, opts.checkpoint_every_s, saved)  # type: ignore[arg-type]
            else:
                _read_iterable(data, batch_size, recorder, acc, bar)
        except BaseException as err:  # noqa: BLE001 - re-raised below, on every rank
            if world_size == 1 or not isinstance(err, Exception):
                raise
            failure = err
        finally:
            bar.close()
    distributed.agree(failure)
    if world_size > 1:
        merge_ranks(acc, everyone=opts.gather == "all")
    rows_here = world_size == 1 or opts.gather == "all" or rank == 0
    if rows_here and len(acc.rows) == 0:
        raise DatasetError(_EMPTY)
    kept = final_inputs(acc, recorder.input_shape, source, batch_size) if opts.keep_inputs and acc.trackers else {}
    return ScanResult(
        layers=acc.result(rows_here), indices=acc.indices, inputs=kept, input_shape=recorder.input_shape,
        extras=acc.labels(source, rows_here, loose=world_size == 1 and opts.checkpoint is None),
        outputs=acc.outputs(rows_here) if opts.keep_outputs else None,
        total_images=len(source) if source is not None else len(acc.rows), rows_here=rows_here,
        resumed_batches=done, rank=rank, world_size=world_size, notes=notes,
    )  # fmt: skip


def _progress_bar(total: int | None, done: int, names: list[str], enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done if total else 0, desc=f"scan {', '.join(names)}", unit="batch",
                disable=not enabled)  # fmt: skip


def _feed(recorder: LayerRecorder, acc: ScanAccumulator, batch: Batch) -> None:
    """Record one batch into ``acc``, probing the layers first if this is the scan's first batch."""
    inputs, extras, indices = batch
    if not recorder.started:
        acc.start(recorder.start(inputs))
    layers, inputs, outputs = recorder.record(inputs)
    acc.add(indices, layers, inputs, extras, outputs)


def _read_source(
    source: MapSource, remaining: list[tuple[int, int]], done: int, sinks: tuple[LayerRecorder, ScanAccumulator, Any],
    ckpt: ScanCheckpoint | None, checkpoint_every_s: float, saved: dict[str, Any] | None,
) -> None:  # fmt: skip
    """Read this rank's ``remaining`` batches of a map-style source (``done`` are read already) into
    ``sinks`` (recorder, accumulator, progress bar), checkpointing every ``checkpoint_every_s`` seconds and
    at the end."""
    from captum_fau._utils.faults import pause_point

    recorder, acc, bar = sinks
    if len(source) == 0:
        raise DatasetError(_EMPTY)
    acc.start(recorder.start(source.read(np.arange(1))[0]), saved["trackers"] if saved else None)
    last_save, total = time.monotonic(), done + len(remaining)
    for number, batch in enumerate(source.batches(remaining), start=done + 1):
        _feed(recorder, acc, batch)
        bar.update(1)
        if ckpt is not None and number < total and time.monotonic() - last_save >= checkpoint_every_s:
            ckpt.save(number, acc.rows, acc.trackers)
            last_save = time.monotonic()
            pause_point("scan")
    if ckpt is not None:
        ckpt.save(total, acc.rows, acc.trackers, complete=True)


def _read_iterable(data: Any, batch_size: int, recorder: LayerRecorder, acc: ScanAccumulator, bar: Any) -> None:
    """Read an iterable (or any data :func:`iter_batches` reads) once, in order."""
    for batch in iter_batches(data, batch_size):
        if batch[0].shape[0]:
            _feed(recorder, acc, batch)
        bar.update(1)


__all__ = ["LayerScan", "ScanOptions", "ScanResult", "iter_batches", "scan"]
