"""Reading a dataset as batches for the scan: tensors, FaceSets, Datasets and iterables.

Two ways in:

* :class:`MapSource` -- random access to a map-style dataset by row (row ``i``
  is dataset index ``i``): what sharding over processes, resuming from a
  checkpoint and re-reading the top-N images need. Tensors are sliced,
  FaceSets read in batched form through their public :meth:`~captum_fau.data.base.FaceSet.tensors`
  and :meth:`~captum_fau.data.base.FaceSet.labels`, other datasets collated by a ``DataLoader``.
* :func:`iter_batches` -- one ordered pass over anything, iterables included.

Batches come out as ``(inputs, extras, dataset_indices)``; :func:`split_batch`
reads the usual collated forms and :func:`gather_extras` turns the labels of
many batches back into whole-dataset arrays.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from captum_fau._utils import distributed
from captum_fau._utils.distributed import batch_ranges
from captum_fau._utils.validate import positive_int
from captum_fau.errors import DatasetError, DistributedError, InputShapeError, ResumeError

#: One batch: inputs ``[B, C, H, W]``, labels by name, dataset indices ``[B]`` int64.
Batch = tuple[torch.Tensor, dict[str, Any], torch.Tensor]


def is_face_set(data: Any) -> bool:
    """Whether ``data`` is a :class:`~captum_fau.data.base.FaceSet`, or a
    :class:`~captum_fau.inputs.model_inputs.ModelInputs` over one (read in batched form)."""
    from captum_fau.data.base import FaceSet
    from captum_fau.inputs.model_inputs import ModelInputs

    return isinstance(data, FaceSet) or (isinstance(data, ModelInputs) and data.batched)


def split_batch(batch: Any) -> tuple[torch.Tensor, dict[str, Any], Any]:
    """``(inputs, extras, indices or None)`` from one collated batch.

    Batches may be tensors, ``(input, target, ...)`` tuples (the target lands
    in ``extras["target"]``) or dicts with an ``"image"`` entry (other entries
    but ``"index"`` land in ``extras``).
    """
    if isinstance(batch, torch.Tensor):
        return batch, {}, None
    if isinstance(batch, dict):
        if "image" not in batch:
            raise DatasetError(
                f"A dict batch needs an 'image' entry (FaceSet items have one); got keys {sorted(batch)}."
            )
        extras = {k: v for k, v in batch.items() if k not in ("image", "index")}
        return batch["image"], extras, batch.get("index")
    if isinstance(batch, (tuple, list)) and batch:
        extras = {"target": batch[1]} if len(batch) > 1 else {}
        return batch[0], extras, None
    raise DatasetError(
        f"Cannot read a batch of type {type(batch).__name__}; yield tensors [B, C, H, W], (input, target) "
        "tuples, or dicts with an 'image' entry."
    )


def _tensor_inputs(inputs: Any) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise DatasetError(f"Batch inputs must be tensors, got {type(inputs).__name__}.")
    return inputs


class MapSource:
    """Random access to a map-style dataset by row: what sharding, resuming and refetching need.

    Args:
        data: A tensor ``[M, C, H, W]``, a FaceSet or another map-style ``Dataset``.

    Raises:
        InputShapeError: a tensor that is not ``[M, C, H, W]``.
    """

    def __init__(self, data: Any) -> None:
        self.data = data
        #: Whether labels come from the FaceSet itself (cheap, no image read) rather than per batch.
        self.face_set = is_face_set(data)
        if isinstance(data, torch.Tensor) and data.dim() != 4:
            raise InputShapeError(
                f"A tensor dataset must be [M, C, H, W], got shape {tuple(data.shape)}; "
                "add the channel dimension with x.unsqueeze(1) for grayscale images."
            )

    @staticmethod
    def accepts(data: Any) -> bool:
        """Whether ``data`` is a tensor or a sized map-style dataset."""
        return isinstance(data, torch.Tensor) or (
            isinstance(data, Dataset) and not isinstance(data, IterableDataset) and hasattr(data, "__len__")
        )

    def __len__(self) -> int:
        return len(self.data)

    def batches(self, ranges: Sequence[tuple[int, int]]) -> Iterator[Batch]:
        """``(inputs, extras, indices)`` for each ``(start, stop)`` row range, in order."""
        if isinstance(self.data, torch.Tensor) or self.face_set:
            for start, stop in ranges:
                yield self.read(np.arange(start, stop))
            return
        # A dataset that decodes per item (a LazyFaceSet) says how many worker processes to read it with.
        workers = int(getattr(self.data, "num_workers", 0) or 0)
        loader = DataLoader(self.data, batch_sampler=[list(range(a, b)) for a, b in ranges], num_workers=workers)
        for (start, stop), batch in zip(ranges, loader):
            inputs, extras, _ = split_batch(batch)
            yield _tensor_inputs(inputs), extras, torch.arange(start, stop, dtype=torch.int64)

    def read(self, rows: np.ndarray) -> Batch:
        """``(inputs, extras, indices)`` of arbitrary rows."""
        rows = np.asarray(rows, dtype=np.int64)
        indices = torch.from_numpy(rows.copy())
        if isinstance(self.data, torch.Tensor):
            return self.data[indices], {}, indices
        if self.face_set:
            return self.data.tensors(rows), self.data.labels(rows), indices
        batch = torch.utils.data.default_collate([self.data[int(i)] for i in rows])
        inputs, extras, _ = split_batch(batch)
        return inputs, extras, indices

    def read_inputs(self, rows: Sequence[int], batch_size: int) -> dict[int, torch.Tensor]:
        """Dataset index -> input (CPU float32) of ``rows``, read ``batch_size`` at a time."""
        out: dict[int, torch.Tensor] = {}
        for start in range(0, len(rows), batch_size):
            part = np.asarray(rows[start : start + batch_size])
            images = self.read(part)[0]
            for row, index in enumerate(part.tolist()):
                out[index] = images[row].detach().cpu().float().clone()
        return out


def iter_batches(data: Any, batch_size: int = 64) -> Iterator[Batch]:
    """Read ``data`` once, in order, as ``(inputs, extras, dataset_indices)`` batches.

    Args:
        data: A tensor ``[M, C, H, W]``; a :class:`~captum_fau.data.base.FaceSet`
            (read in batched form); any ``Dataset`` (batched with a
            ``DataLoader``); a ``DataLoader`` or other iterable of batches.
            Batches may be tensors, ``(input, target, ...)`` tuples (the
            target lands in ``extras["target"]``) or dicts with ``"image"``
            (other entries but ``"index"`` land in ``extras``).
        batch_size (int, optional): Batch size where this function does the
            batching (tensors and datasets). Default: 64

    Returns:
        Iterator of ``(inputs [B, C, H, W], extras dict, dataset indices [B] int64)``.
        Indices come from a dict batch's ``"index"`` entry where present,
        otherwise they count images in reading order.

    Examples::

        >>> [tuple(x.shape) for x, _, _ in iter_batches(torch.zeros(5, 1, 4, 4), batch_size=2)]
        [(2, 1, 4, 4), (2, 1, 4, 4), (1, 1, 4, 4)]
    """
    positive_int(batch_size, "batch_size", error=DatasetError, hint="pass e.g. batch_size=64.")
    if isinstance(data, torch.Tensor) or is_face_set(data):
        source = MapSource(data)
        yield from source.batches(batch_ranges(len(source), batch_size))
        return
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        data = DataLoader(
            data, batch_size=batch_size, shuffle=False, num_workers=int(getattr(data, "num_workers", 0) or 0)
        )
    if not isinstance(data, Iterable):
        raise DatasetError(
            f"Cannot read data of type {type(data).__name__}; pass a tensor [M, C, H, W], a Dataset, "
            "a DataLoader or an iterable of batches."
        )
    seen = 0
    for batch in data:
        inputs, extras, indices = split_batch(batch)
        inputs = _tensor_inputs(inputs)
        if inputs.dim() == 3:  # a single image slipped through an unbatched iterable
            inputs = inputs[None]
        count = inputs.shape[0]
        if indices is None:
            indices = torch.arange(seen, seen + count, dtype=torch.int64)
        else:
            indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        seen += count
        yield inputs, extras, indices


def plan_batches(
    data: Any, batch_size: int, resumable: bool = False
) -> tuple[MapSource | None, list[tuple[int, int]] | None]:
    """``(source, row ranges this rank reads)`` for map-style data, ``(None, None)`` for an iterable.

    Under a process group every rank gets a contiguous block of whole batches
    (see :func:`~captum_fau._utils.distributed.shard`).

    Raises:
        DistributedError: an iterable under a process group, ranks that see datasets of
            different lengths, or fewer batches than processes.
        ResumeError: an iterable with ``resumable`` (it cannot skip to a checkpoint).
    """
    rank, world_size = distributed.world()
    source = MapSource(data) if MapSource.accepts(data) else None
    if source is None and world_size > 1:
        raise DistributedError(
            f"A scan across {world_size} processes needs a map-style dataset (a tensor, FaceSet or Dataset with "
            f"__len__ and __getitem__) to shard, not a {type(data).__name__}; pass the Dataset itself."
        )
    if source is None and resumable:
        raise ResumeError(
            f"Resumable scans need a map-style dataset (tensor, FaceSet or Dataset), not a {type(data).__name__}: "
            "an iterable cannot skip to where the last checkpoint was. Pass the Dataset itself."
        )
    if source is None:
        return None, None
    distributed.check_same(
        "the dataset length", len(source), "every rank must open the same dataset (same files, seed and filters)."
    )
    all_batches = batch_ranges(len(source), batch_size)
    if world_size > 1 and len(all_batches) < world_size:
        raise DistributedError(
            f"The dataset has {len(source)} images, {len(all_batches)} batch(es) of {batch_size}, for {world_size} "
            "processes; every process needs at least one batch: use fewer processes or a smaller batch size."
        )
    return source, distributed.shard(all_batches, rank, world_size)


def length_hint(data: Any, batch_size: int) -> int | None:
    """Number of batches :func:`iter_batches` will yield, where it can be known up front."""
    try:
        return len(data) if isinstance(data, DataLoader) else -(-len(data) // batch_size)
    except TypeError:
        return None


def split_extras(extras: dict[str, Any], rows: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(columns, loose)``: per-image tensor labels (one row per input) and everything else."""
    columns: dict[str, torch.Tensor] = {}
    loose: dict[str, Any] = {}
    for key, value in extras.items():
        if isinstance(value, torch.Tensor) and value.dim() >= 1 and len(value) == rows:
            columns[key] = value.detach().cpu()
        else:
            loose[key] = value
    return columns, loose


def label_tensor(value: torch.Tensor) -> torch.Tensor:
    """A label column in its canonical dtype: float32, bool or int64."""
    if value.is_floating_point():
        return value.float()
    return value if value.dtype == torch.bool else value.long()


def gather_extras(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate per-batch extras; tensors keep a tensor form, everything else becomes an ndarray."""
    if not chunks:
        return {}
    keys = [k for k in chunks[0] if all(k in c for c in chunks)]
    out: dict[str, Any] = {}
    for key in keys:
        parts = [c[key] for c in chunks]
        if all(isinstance(p, torch.Tensor) for p in parts):
            out[key] = label_tensor(
                torch.cat([p.detach().cpu().reshape(len(p), *p.shape[1:]) if p.dim() else p.reshape(1) for p in parts])
            )
        else:
            flat: list[Any] = []
            for p in parts:
                flat.extend(p.tolist() if isinstance(p, (torch.Tensor, np.ndarray)) else list(p))
            out[key] = np.asarray(flat)
    return out


__all__ = [
    "Batch",
    "MapSource",
    "gather_extras",
    "is_face_set",
    "iter_batches",
    "label_tensor",
    "length_hint",
    "plan_batches",
    "split_batch",
    "split_extras",
]
