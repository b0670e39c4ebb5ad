"""Streaming, mergeable statistics and the one-pass dataset scan every analysis shares."""

from captum_fau.stats.checkpoint import ScanCheckpoint
from captum_fau.stats.rows import RowStore
from captum_fau.stats.scan import LayerScan, ScanResult, iter_batches, resolve_layers, scan
from captum_fau.stats.topn import RunningTopN

__all__ = ["LayerScan", "RowStore", "RunningTopN", "ScanCheckpoint", "ScanResult", "iter_batches", "resolve_layers", "scan"]
