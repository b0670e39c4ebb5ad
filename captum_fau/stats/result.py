"""What a scan returns: per-layer channel maxima and positions, labels, kept inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from captum_fau.stats.topn import RunningTopN


@dataclass
class LayerScan:
    """Per-image, per-channel spatial maxima of one layer.

    Attributes:
        layer (str): Dotted module name.
        maxima (Tensor): ``[M, C]`` float32, the spatial maximum of each channel's map per image,
            rows in scan order (``ScanResult.indices``).
        positions (Tensor): ``[M, C, 2]`` int32 ``(h, w)`` of that maximum (first one on ties).
        map_size (tuple of int): ``(H, W)`` of the layer's maps.
        topn (RunningTopN or None): Running top-N per channel, when requested.
    """

    layer: str
    maxima: torch.Tensor
    positions: torch.Tensor
    map_size: tuple[int, int]
    topn: RunningTopN | None = None

    @property
    def num_channels(self) -> int:
        return int(self.maxima.shape[1])


@dataclass
class ScanResult:
    """What one pass over a dataset recorded.

    Attributes:
        layers (dict): Layer name -> :class:`LayerScan`.
        indices (Tensor): ``[M]`` int64 dataset index of each row, in scan order.
        extras (dict): Labels gathered from dict batches: ``"aus"`` ``[M, J]`` float32,
            ``"emotion"`` ``[M]`` int64, ``"subject"`` ndarray, ``"target"`` for tuple batches, ...
        inputs (dict): Dataset index -> input tensor (CPU) of every image in a final
            top-N, when the scan was asked to keep them (``keep_inputs=True``).
        input_shape (tuple): ``(C, H, W)`` of the inputs.
        outputs (Tensor or None): The model's outputs in scan order, with ``keep_outputs=True``.
        total_images (int or None): Images read by the whole scan (all ranks).
        rows_here (bool): Whether this process holds the per-image rows (False on ranks
            other than 0 of a distributed scan with ``gather="rank0"``).
        resumed_batches (int): Batches this process took from a checkpoint instead of reading them.
        rank (int): This process's rank; world_size (int): processes in the scan.
        notes (list of str): What the scan had to do besides reading, e.g. discard a checkpoint
            written with other data.
    """

    layers: dict[str, LayerScan]
    indices: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)
    inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    outputs: torch.Tensor | None = None
    total_images: int | None = None
    rows_here: bool = True
    resumed_batches: int = 0
    rank: int = 0
    world_size: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        """Images the scan read (on every rank of a distributed scan, even where ``rows_here`` is False)."""
        return int(self.total_images) if self.total_images is not None else int(self.indices.numel())


__all__ = ["LayerScan", "ScanResult"]
