"""Streaming, mergeable statistics and the one-pass dataset scan every analysis shares."""

from captum_fau.stats.scan import LayerScan, ScanResult, iter_batches, resolve_layers, scan
from captum_fau.stats.topn import RunningTopN

__all__ = ["LayerScan", "RunningTopN", "ScanResult", "iter_batches", "resolve_layers", "scan"]
