"""Combining the ranks of a distributed scan into the single-process result.

After every rank has scanned its block of batches, :func:`merge_ranks`
exchanges the top-N trackers and merges them in rank order (ties break by
dataset index, so the order of merging does not matter) and streams the
per-image rows to rank 0 or to every rank; :func:`final_inputs` then gives
each rank the inputs of every image that ended in some top-N, read again from
the dataset where no rank kept one (images scanned before a resume).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from captum_fau._utils import distributed
from captum_fau.errors import DistributedError
from captum_fau.stats.accumulate import ScanAccumulator
from captum_fau.stats.batching import MapSource
from captum_fau.stats.rows import RowStore
from captum_fau.stats.topn import RunningTopN


def merge_trackers(trackers: dict[str, RunningTopN]) -> dict[str, RunningTopN]:
    """Every rank's trackers merged in rank order (collective: every rank calls it)."""
    merged_trackers = {}
    for name, tracker in trackers.items():
        merged = RunningTopN(tracker.num_channels, tracker.n, tracker.distinct_images)
        states = {key: distributed.all_gather_tensor(value) for key, value in tracker.state_dict().items()}
        for rank in range(len(next(iter(states.values())))):
            merged.merge(RunningTopN.from_state_dict({key: parts[rank] for key, parts in states.items()}))
        merged_trackers[name] = merged
    return merged_trackers


def gather_rows(store: RowStore, everyone: bool) -> RowStore:
    """Every rank's rows, ordered by dataset index, on rank 0 (or on every rank with ``everyone``).

    Ranks that receive nothing get an empty store.

    Raises:
        DistributedError: the ranks recorded different columns.
    """
    merged = RowStore(spill_bytes=store.spill_bytes)
    layout = dict(store.columns)
    counts = distributed.all_gather_ints([len(layout)])[:, 0]
    if (counts != counts[0]).any():
        raise DistributedError(f"The ranks recorded different per-image columns ({counts.tolist()}); "
                               "every rank must read the same kind of dataset.")  # fmt: skip
    for chunk in distributed.gather_rows_to(store.iter_chunks(distributed.CHUNK_ROWS), len(store), layout, everyone):
        index = chunk.pop("index")
        merged.add(index, **chunk)
    if everyone or distributed.world()[0] == 0:
        merged.sort_by_index()
    return merged


def merge_ranks(accumulator: ScanAccumulator, everyone: bool) -> None:
    """Replace ``accumulator``'s trackers and rows by those of all ranks (collective)."""
    accumulator.trackers = merge_trackers(accumulator.trackers)
    accumulator.rows = gather_rows(accumulator.rows, everyone)


def share_inputs(
    kept: dict[int, torch.Tensor], input_shape: tuple[int, ...], chunk: int = 256
) -> dict[int, torch.Tensor]:
    """Every rank's kept inputs on every rank (each top-N image was kept by the rank that read it)."""
    own = sorted(kept)
    layout = {"index": ((), np.dtype(np.int64)), "input": (tuple(input_shape), np.dtype(np.float32))}

    def chunks() -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(own), chunk):
            part = own[start : start + chunk]
            yield {"index": np.asarray(part, dtype=np.int64),
                   "input": torch.stack([kept[i].float() for i in part]).numpy()}  # fmt: skip

    shared: dict[int, torch.Tensor] = {}
    for piece in distributed.gather_rows_to(chunks(), len(own), layout, everyone=True, chunk_rows=chunk):
        for row, index in enumerate(piece["index"].tolist()):
            shared[int(index)] = torch.from_numpy(piece["input"][row].copy())
    return shared


def final_inputs(
    accumulator: ScanAccumulator,
    input_shape: tuple[int, ...],
    source: MapSource | None,
    batch_size: int,
) -> dict[int, torch.Tensor]:
    """Dataset index -> input of every image in some final top-N (collective under a process group).

    Inputs kept during the scan are shared between ranks; those no rank kept
    (scanned before a resume) are read again from ``source``.
    """
    wanted = sorted(accumulator.wanted() - {-1})
    kept = {i: accumulator.inputs[i] for i in wanted if i in accumulator.inputs}
    if distributed.world()[1] > 1:
        kept = share_inputs(kept, input_shape)
    missing = [i for i in wanted if i not in kept]
    if missing and source is not None:
        kept.update(source.read_inputs(missing, batch_size))
    return kept


__all__ = ["final_inputs", "gather_rows", "merge_ranks", "merge_trackers", "share_inputs"]
