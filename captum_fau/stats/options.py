"""How a scan reads and records: :class:`ScanOptions`, one object shared by :func:`~captum_fau.stats.scan.scan`,
:class:`~captum_fau.analyze.AnalysisConfig` (:attr:`~captum_fau.analyze.AnalysisConfig.scan_options`) and the
command line (``captum_fau.cli._options.scan_options``).

Examples::

    >>> options = ScanOptions(top_n=5, batch_size=32, progress=False)
    >>> options.with_changes(batch_size=8).batch_size
    8
    >>> ScanOptions(batch_size=0)
    Traceback (most recent call last):
    ...
    captum_fau.errors.DatasetError: batch_size must be >= 1 (a positive integer), got 0; pass e.g. batch_size=64.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from captum_fau._utils.validate import one_of, optional_positive_int, positive_int
from captum_fau.errors import ConfigError, DatasetError


@dataclass(frozen=True)
class ScanOptions:
    """The settings of one streaming scan (see :func:`~captum_fau.stats.scan.scan` for their use).

    Args:
        top_n (int, optional): Keep a running top-N per channel of every layer. Default: None (no top-N)
        distinct_images (bool, optional): With ``top_n``: each image counts at most once per channel (its
            spatial maximum), as in the paper; ``False`` ranks every position of every map. Default: True
        batch_size (int, optional): Batch size for tensors and datasets. Default: 64
        device (str or torch.device, optional): Where inputs go; must be the model's device.
            Default: the model's device
        progress (bool, optional): Show a tqdm progress bar (rank 0 only). Default: True
        keep_inputs (bool, optional): With ``top_n``, also keep (on CPU) the inputs of the images that end up in
            some top-N list. Default: False
        keep_outputs (bool, optional): Run the whole model and keep its outputs (``ScanResult.outputs``).
            Default: False
        checkpoint (str or Path, optional): Folder for resumable checkpoints (map-style data only). Default: None
        checkpoint_every_s (float, optional): Seconds between checkpoints; 0 saves after every batch. Default: 60
        fingerprint (dict, optional): What else identifies the model and the data, compared on resume.
            Default: None
        spill_bytes (int, optional): Per-image rows kept in memory before they move to memory-mapped files.
            Default: 256 MiB
        gather (str, optional): Under a process group, ``"all"`` or ``"rank0"`` (who gets the per-image rows).
            Default: ``"all"``

    Raises:
        DatasetError / ConfigError: an invalid value, naming the fix.
    """

    top_n: int | None = None
    distinct_images: bool = True
    batch_size: int = 64
    device: str | torch.device | None = None
    progress: bool = True
    keep_inputs: bool = False
    keep_outputs: bool = False
    checkpoint: str | Path | None = None
    checkpoint_every_s: float = 60.0
    fingerprint: dict[str, Any] | None = None
    spill_bytes: int | None = None
    gather: str = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "top_n", optional_positive_int(self.top_n, "top_n", error=DatasetError))
        positive_int(self.batch_size, "batch_size", error=DatasetError, hint="pass e.g. batch_size=64.")
        seconds = self.checkpoint_every_s
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ConfigError(
                f"checkpoint_every_s must be a number of seconds >= 0, got {seconds!r}; pass e.g. checkpoint_every_s=60."
            )
        one_of(self.gather, "gather", ("all", "rank0"))

    def with_changes(self, **changes: Any) -> "ScanOptions":
        """A copy with ``changes``; an unknown name raises :class:`~captum_fau.errors.ConfigError` listing the known."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown scan option(s) {unknown}; ScanOptions has {', '.join(sorted(known))}.")
        return replace(self, **changes) if changes else self


def scan_options(options: ScanOptions | None = None, **changes: Any) -> ScanOptions:
    """``options`` (default :class:`ScanOptions`) with keyword ``changes``: the keyword form of the scan's settings."""
    if options is not None and not isinstance(options, ScanOptions):
        raise ConfigError(f"options must be a ScanOptions, got {type(options).__name__}.")
    return (options or ScanOptions()).with_changes(**changes)


__all__ = ["ScanOptions", "scan_options"]
