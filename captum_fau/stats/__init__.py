"""Streaming, mergeable statistics and the one-pass dataset scan every analysis shares.

Modules: :mod:`~captum_fau.stats.scan` (the driver), :mod:`~captum_fau.stats.batching`
(reading data), :mod:`~captum_fau.stats.accumulate` (per-batch records and the running
state), :mod:`~captum_fau.stats.topn` and :mod:`~captum_fau.stats.rows` (the accumulators),
:mod:`~captum_fau.stats.options` (:class:`ScanOptions`), :mod:`~captum_fau.stats.checkpoint` (resuming) and :mod:`~captum_fau.stats.merge` (ranks).
"""

from captum_fau._utils.modules import resolve_layers
from captum_fau.stats.accumulate import ScanAccumulator
from captum_fau.stats.batching import iter_batches
from captum_fau.stats.checkpoint import ScanCheckpoint
from captum_fau.stats.options import ScanOptions
from captum_fau.stats.result import LayerScan, ScanResult
from captum_fau.stats.rows import RowStore
from captum_fau.stats.scan import scan
from captum_fau.stats.topn import RunningTopN

__all__ = [
    "LayerScan",
    "RowStore",
    "RunningTopN",
    "ScanAccumulator",
    "ScanCheckpoint",
    "ScanOptions",
    "ScanResult",
    "iter_batches",
    "resolve_layers",
    "scan",
]
