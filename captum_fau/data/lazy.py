"""Image files read one item at a time: decode, face detection and crop per ``__getitem__``.

:class:`LazyFaceSet` is the streaming twin of :class:`~captum_fau.data.base.FaceSet`
for real-image sources (``folder:``, ``ckplus:``): it holds the file paths and the
labels (a few bytes per image), never the pixels, so its memory stays flat in the
number of images, and a ``DataLoader`` with worker processes spreads decoding and
detection over the cores. The scan's map-style reader
(:class:`~captum_fau.stats.batching.MapSource`) reads it through such a loader
with :attr:`LazyFaceSet.num_workers` workers and still shards it by row under
``torch.distributed``.

Each file's crop is cached on its own (``<cache>/<2 hex>/face-<key>.npz``, the key
a hash of the file's path, size and modification time and of the crop
parameters). Entries are written atomically (a unique temporary file, then
``os.replace``), so workers and processes that share the cache folder never read a
partial entry; two workers that crop the same file write the same bytes, and the
last rename wins. A second pass over the data is one small file read per image.

A file in which no face is detected cannot be dropped up front without a full
pass, so its item is the centred square of the image with ``"face_found": False``
(every item carries that flag, so the scan keeps it as a per-image label);
:meth:`LazyFaceSet.skipped` lists those files and the unreadable ones once the
crops are cached, and :meth:`LazyFaceSet.materialize` returns the eager FaceSet
without them, as the eager loaders do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from captum_fau.data.base import CKPLUS_CLASSES, FaceSet
from captum_fau.data.cache import ArrayCache, cache_key, file_fingerprints
from captum_fau.data.faces import (
    STATUS_NO_FACE,
    STATUS_OK,
    STATUS_REASONS,
    STATUS_UNREADABLE,
    FaceDetector,
    centre_square,
    crop_resize,
    detector_token,
    read_gray,
)
from captum_fau.data.transforms import check_local_mean_padding, model_input
from captum_fau.errors import DatasetError, LabelError
from captum_fau._utils.validate import int_at_least, non_negative_int

#: Label arrays a LazyFaceSet carries, one entry per file (as FaceSet's).
LABEL_FIELDS: tuple[str, ...] = ("emotions", "aus", "subjects", "sequences", "folds", "names")


def default_workers() -> int:
    """DataLoader workers by default: the cores this process may use, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


class _ItemCache(ArrayCache):
    """One uncompressed ``.npz`` per file, spread over 256 sub-folders by the key's first two hex digits."""

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{self.prefix}-{key}.npz"

    def save(self, key: str, arrays: Any) -> Path:  # small crops: compression costs more than it saves
        from captum_fau._utils.io import atomic_npz

        path = self.path(key)
        try:
            atomic_npz(path, compressed=False, **arrays)
        except OSError:
            return path  # a cache that cannot be written only costs time; the item is still returned
        return path


class LazyFaceSet(Dataset):
    """Face crops of image files, decoded, detected and cropped per item.

    Args:
        paths (sequence of path): The image files, one row each.
        size (int, optional): Side of the square crops. Default: 96
        detector (callable, optional): ``gray -> (x, y, w, h) or None``; ``None`` takes the
            centred square of each image (images that are already face crops). Default: None
        interpolation (str, optional): ``"area"``, ``"linear"`` or ``"cubic"``. Default: ``"area"``
        cache_dir (str or Path, optional): Crop cache folder, shared by workers and processes.
            Default: :func:`~captum_fau.data.cache.default_cache_dir`
        cache (bool, optional): Read and write the per-file crop cache (only for detectors
            with a ``cache_token``). Default: True
        workers (int, optional): DataLoader worker processes the scan reads with
            (0: in the main process). Default: :func:`default_workers`
        class_names (sequence of str, optional): Emotion classes in label order.
        name (str, optional): What the set is. Default: ``"faces"``
        meta (dict, optional): Anything worth keeping (source, protocol).
        local_mean (int, optional): Local-mean box of the preprocessing. Default: 5
        local_mean_padding (str, optional): ``"zeros"`` or ``"replicate"``. Default: ``"zeros"``
        **labels: ``emotions``, ``aus`` (with ``au_ids``), ``subjects``, ``sequences``,
            ``folds``, ``names``: arrays with one entry per path, as in FaceSet.

    Each item is a dict like a FaceSet item (``"image"`` float32 ``[1, size, size]``,
    ``"index"``, and ``"emotion"``, ``"aus"``, ``"subject"`` where known) plus
    ``"face_found"`` (bool).

    Examples::

        >>> import os, tempfile, cv2, numpy as np
        >>> root = tempfile.mkdtemp()
        >>> paths = [os.path.join(root, f"{i}.png") for i in range(3)]
        >>> for i, p in enumerate(paths):
        ...     _ = cv2.imwrite(p, np.full((40, 60), 50 * i, np.uint8))
        >>> lazy = LazyFaceSet(paths, size=32, emotions=np.array([0, 1, 0]), class_names=("a", "b"),
        ...                    cache=False, workers=0)
        >>> item = lazy[1]
        >>> item["image"].shape, item["emotion"], item["face_found"]
        (torch.Size([1, 32, 32]), 1, True)
        >>> lazy.materialize(progress=False).images.shape
        (3, 32, 32)
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        size: int = 96,
        detector: FaceDetector | None = None,
        interpolation: str = "area",
        cache_dir: str | os.PathLike[str] | None = None,
        cache: bool = True,
        workers: int | None = None,
        class_names: Sequence[str] = CKPLUS_CLASSES,
        au_ids: Sequence[str] = (),
        name: str = "faces",
        meta: dict[str, Any] | None = None,
        local_mean: int = 5,
        local_mean_padding: str = "zeros",
        **labels: Any,
    ) -> None:
        if not paths:
            raise DatasetError("LazyFaceSet needs at least one image file.")
        unknown = sorted(set(labels) - set(LABEL_FIELDS))
        if unknown:
            raise DatasetError(f"LazyFaceSet got unknown label arrays {unknown}; it takes {list(LABEL_FIELDS)}.")
        check_local_mean_padding(local_mean_padding)
        self.paths = np.array([os.fspath(p) for p in paths])
        self.size = int_at_least(size, "size", 8, hint="give the crop side in pixels (the reference uses 96).")
        self.detector = detector
        self.interpolation = interpolation
        self.num_workers = default_workers() if workers is None else non_negative_int(workers, "workers")
        self.class_names = tuple(class_names)
        self.au_ids = tuple(au_ids)
        self.name = name
        self.meta = dict(meta or {})
        self.local_mean = local_mean
        self.local_mean_padding = local_mean_padding
        token = detector_token(detector)
        self.params = {"size": self.size, "detector": token or repr(detector), "interpolation": interpolation}
        self._cache = _ItemCache(cache_dir, prefix="face") if cache and token is not None else None
        for field_name in LABEL_FIELDS:
            value = labels.get(field_name)
            if value is not None:
                value = np.asarray(value)
                if len(value) != len(self.paths):
                    raise LabelError(f"LazyFaceSet.{field_name} has {len(value)} entries but there are "
                                     f"{len(self.paths)} image files.")  # fmt: skip
            setattr(self, field_name, value)
        if self.emotions is not None:
            self.emotions = self.emotions.astype(np.int64)
        if self.aus is not None:
            self.aus = self.aus.astype(np.float32)
            if self.aus.ndim != 2 or self.aus.shape[1] != len(self.au_ids):
                raise LabelError(f"LazyFaceSet.aus has shape {self.aus.shape} for {len(self.au_ids)} au_ids.")

    # ---------------------------------------------------------------- crops
    def _key(self, index: int) -> str:
        return cache_key({**self.params, "file": file_fingerprints([self.paths[index]])[0]})

    def crop(self, index: int) -> tuple[np.ndarray, int, np.ndarray]:
        """``(crop uint8 [size, size], status, box (x, y, w, h))`` of file ``index``, cached.

        ``status`` is :data:`~captum_fau.data.faces.STATUS_OK`, ``STATUS_NO_FACE`` (the
        crop is then the centred square) or ``STATUS_UNREADABLE`` (the crop is zeros).
        """
        key = self._key(index) if self._cache is not None else ""
        if self._cache is not None:
            hit = self._cache.load(key)
            if hit is not None and hit.get("image", np.empty(0)).shape == (self.size, self.size):
                return hit["image"], int(hit["status"]), hit["box"]
        if torch.utils.data.get_worker_info() is not None:
            import cv2

            cv2.setNumThreads(1)  # one worker, one core
        image = np.zeros((self.size, self.size), np.uint8)
        box = np.full(4, -1, np.int32)
        gray = read_gray(self.paths[index])
        if gray is None:
            status = STATUS_UNREADABLE
        else:
            found = centre_square(gray.shape) if self.detector is None else self.detector(gray)
            status = STATUS_OK if found is not None else STATUS_NO_FACE
            box = np.asarray(found if found is not None else centre_square(gray.shape), np.int32)
            image = crop_resize(gray, tuple(int(v) for v in box), self.size, self.interpolation)
        if self._cache is not None:
            self._cache.save(key, {"image": image, "status": np.int8(status), "box": box})
        return image, status, box

    def cached_status(self, index: int) -> int | None:
        """The cached status of file ``index`` without decoding it; ``None`` when not cached yet."""
        if self._cache is None:
            return None
        hit = self._cache.load(self._key(index))
        return None if hit is None else int(hit["status"])

    def skipped(self) -> list[dict[str, str]]:
        """``{"file", "reason"}`` for each file whose cached crop has no face or could not be read.

        Only files already cropped (after a pass, by any worker or process) are known.
        """
        out = []
        for i in range(len(self)):
            status = self.cached_status(i)
            if status is not None and status != STATUS_OK:
                out.append({"file": str(self._display_name(i)), "reason": STATUS_REASONS[status]})
        return out

    def _display_name(self, index: int) -> str:
        return str(self.names[index]) if self.names is not None else str(self.paths[index])

    # ---------------------------------------------------------------- Dataset
    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        image, status, _ = self.crop(index)
        item: dict[str, Any] = {
            "image": model_input(torch.from_numpy(image[None, None]), self.local_mean, self.local_mean_padding)[0],
            "index": index,
            "face_found": status == STATUS_OK,
        }
        if self.emotions is not None:
            item["emotion"] = int(self.emotions[index])
        if self.aus is not None:
            item["aus"] = torch.from_numpy(self.aus[index])
        if self.subjects is not None:
            subject = self.subjects[index]
            item["subject"] = subject.item() if isinstance(subject, np.generic) else subject
        return item

    def labels(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The labels of rows ``indices`` without reading any image (as :meth:`FaceSet.labels`)."""
        rows = np.asarray(indices)
        out: dict[str, Any] = {}
        if self.emotions is not None:
            out["emotion"] = torch.from_numpy(self.emotions[rows])
        if self.aus is not None:
            out["aus"] = torch.from_numpy(self.aus[rows])
        if self.subjects is not None:
            out["subject"] = self.subjects[rows]
        return out

    def tensors(self, indices: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """Preprocessed images ``[n, 1, size, size]`` float32 of rows ``indices`` (default: all)."""
        rows = range(len(self)) if indices is None else np.asarray(indices).tolist()
        crops = np.stack([self.crop(int(i))[0] for i in rows]) if len(rows) else np.zeros((0, self.size, self.size), np.uint8)
        return model_input(torch.from_numpy(crops)[:, None], self.local_mean, self.local_mean_padding)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.size, self.size

    @property
    def au_presence(self) -> np.ndarray:
        """``[N, J]`` bool: AU present (intensity > 0)."""
        if self.aus is None:
            raise LabelError(f"Dataset {self.name!r} has no AU labels.")
        return self.aus > 0

    def subset(self, indices: Sequence[int] | np.ndarray) -> "LazyFaceSet":
        """A LazyFaceSet of rows ``indices`` (same files, cache and parameters)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        clone = object.__new__(LazyFaceSet)
        clone.__dict__.update(self.__dict__)
        clone.paths = self.paths[idx]
        for field_name in LABEL_FIELDS:
            value = getattr(self, field_name)
            setattr(clone, field_name, None if value is None else value[idx])
        return clone

    def materialize(self, progress: bool = True, batch_size: int = 64) -> FaceSet:
        """The eager :class:`FaceSet`: every crop decoded (with :attr:`num_workers` workers), files
        without a face or unreadable dropped and listed in ``meta["skipped"]``, as the eager loaders do.

        Raises:
            DatasetError: no file has a face.
        """
        from tqdm.auto import tqdm

        loader = torch.utils.data.DataLoader(
            _Crops(self), batch_size=batch_size, num_workers=self.num_workers, collate_fn=_stack
        )
        images = np.zeros((len(self), self.size, self.size), np.uint8)
        status = np.zeros(len(self), np.int8)
        start = 0
        for crops, codes in tqdm(loader, desc=f"{self.name} faces", unit="batch", disable=not progress, leave=False):
            images[start : start + len(crops)] = crops
            status[start : start + len(crops)] = codes
            start += len(crops)
        keep = np.flatnonzero(status == STATUS_OK)
        if len(keep) == 0:
            raise DatasetError(f"no face could be read or detected in the {len(self)} files of {self.name!r}.")
        skipped = [{"file": self._display_name(i), "reason": STATUS_REASONS[int(status[i])]}
                   for i in np.flatnonzero(status != STATUS_OK)]  # fmt: skip
        pick = lambda a: None if a is None else a[keep]  # noqa: E731
        return FaceSet(
            images=images[keep], class_names=self.class_names, emotions=pick(self.emotions), aus=pick(self.aus),
            au_ids=self.au_ids, subjects=pick(self.subjects), sequences=pick(self.sequences), folds=pick(self.folds),
            names=pick(self.names), name=self.name, meta={**self.meta, "preprocessing": dict(self.params),
                                                         "skipped": skipped},
            local_mean=self.local_mean, local_mean_padding=self.local_mean_padding,
        )  # fmt: skip

    def __repr__(self) -> str:
        parts = [f"{len(self)} files -> {self.size}x{self.size} crops", f"{self.num_workers} workers"]
        if self.emotions is not None:
            parts.append(f"{len(self.class_names)} classes")
        if self.aus is not None:
            parts.append(f"{len(self.au_ids)} AUs")
        return f"LazyFaceSet({self.name!r}: {', '.join(parts)})"


class _Crops(Dataset):
    """``(crop, status)`` per file, for :meth:`LazyFaceSet.materialize`."""

    def __init__(self, faces: LazyFaceSet) -> None:
        self.faces = faces

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        image, status, _ = self.faces.crop(index)
        return image, status


def _stack(items: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([image for image, _ in items]), np.array([status for _, status in items], np.int8)


__all__ = ["LABEL_FIELDS", "LazyFaceSet", "default_workers"]
