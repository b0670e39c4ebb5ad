"""Streaming real-image data: face items cut from their files per ``__getitem__``, in worker processes.

:class:`LazyFaceSet` is the streaming twin of :class:`~captum_fau.data.base.FaceSet` for
``folder:`` and ``ckplus:`` data. It holds the file paths, one box per face item and the
labels (a few dozen bytes per item), never the pixels, so memory stays flat in the number of
images, and the scan (:class:`~captum_fau.stats.batching.MapSource`) reads it through a
``DataLoader`` with :attr:`LazyFaceSet.num_workers` worker processes, sharded by row under
``torch.distributed`` as any map-style dataset.

**Why an index pass.** A photo may hold several faces (one item each) and an image may hold none
(dropped, and counted), so how many items there are, and which file item ``i`` comes from, is only
known after face detection. :func:`index_faces` therefore runs the loaders' one per-image step
(:func:`~captum_fau.data.faces.file_faces`, the function the eager loaders call) once over every
file, in ``DataLoader`` workers, and keeps per file its status and per item its box, ``whole`` flag
and an 8-byte digest of the crop's pixels. An item is then re-cut from its file with the same
:func:`~captum_fau.data.faces.crop_resize` and checked against its digest, so a streamed item equals
the eager loader's item pixel for pixel, and a file changed since it was indexed is an error, never
a silently different image. The loaders build names, labels, the skipped list and the face-crop
summary from the index exactly as from the eager crops.

**The index cache** (:mod:`captum_fau.data.cache`, the face-crop cache folder) is shared by
workers and processes: workers write one entry per chunk of :data:`INDEX_CHUNK` files as they finish
it (atomic writes: a temporary file, then ``os.replace``; two writers of one entry write the same
bytes), so an interrupted pass resumes where it stopped; the whole index is then saved as one entry
and the chunk entries are removed. A file lock (``filelock``) on the index's key lets one process
index a file set while other processes (e.g. the ranks of ``torchrun``) wait and then read its entry
instead of detecting again. Entries are keyed on every file's path, size and modification time and
on the crop settings, as the eager cache. Without the cache (``cache=False``, ``--no-cache``) each
process indexes on its own.

**Workers.** ``workers`` processes (default: the usable cores, at most 8) run the index pass and, for
the scan, cut the items. They are forked, and OpenCV in a forked process cannot change its thread
count, so a set with workers puts OpenCV in this process on one thread before they start
(:func:`opencv_one_thread`): one core per worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from dataclasses import dataclass, fields as dataclass_fields
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from captum_fau._utils.validate import int_at_least, non_negative_int, with_settings
from captum_fau.data.base import CKPLUS_CLASSES, FaceSet, LabelledRows
from captum_fau.data.cache import ArrayCache, cache_key, file_fingerprints
from captum_fau.data.faces import (
    _INTERPOLATIONS as INTERPOLATIONS,
    FaceFinder,
    crop_resize,
    file_faces,
    read_gray,
    status_reasons,
)
from captum_fau.data.transforms import check_local_mean_padding, model_input
from captum_fau.data.options import ReadOptions, read_options
from captum_fau.errors import ConfigError, DatasetError, LabelError

#: Files per index chunk: the unit of work of a worker and of the resumable cache entries.
INDEX_CHUNK = 8
#: Bytes of the per-item pixel digest (blake2b).
DIGEST_BYTES = 8
#: Label arrays a LazyFaceSet carries, one entry per item (as FaceSet's).
LABEL_FIELDS: tuple[str, ...] = ("emotions", "aus", "subjects", "sequences", "folds", "names")
#: ``lazy=None`` streams sources with at least this many image files (about 180 MB of 96x96 crops).
STREAM_THRESHOLD = 20_000


def default_workers() -> int:
    """DataLoader workers by default: the cores this process may use, shared among the processes
    ``torchrun`` starts on this host (``$LOCAL_WORLD_SIZE``), at least 1 and at most 8.

    Examples::

        >>> 1 <= default_workers() <= 8
        True
    """
    cores = usable_cores()
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, min(8, cores // local))


def usable_cores() -> int:
    """The CPU cores this process may use (its affinity mask where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_workers(workers: int | None) -> int:
    """``workers`` checked (an int >= 0) and bounded by the usable cores (with a note), or
    :func:`default_workers` for ``None``.

    More worker processes than cores only compete for them and each holds a copy of the reader, so a
    larger number is lowered to :func:`usable_cores`, and the run says so.
    """
    if workers is None:
        return default_workers()
    workers = non_negative_int(workers, "workers")
    cores = usable_cores()
    if workers > cores:
        from captum_fau._utils.notes import note

        note(f"workers={workers} (--workers) is more than the {cores} usable CPU core(s); using {cores} worker "
             "processes.")  # fmt: skip
        return cores
    return workers


def should_stream(lazy: bool | None, files: int) -> bool:
    """Whether a loader streams: ``lazy`` when given, else sources of :data:`STREAM_THRESHOLD` files or more.

    Examples::

        >>> should_stream(None, 500), should_stream(None, 50_000), should_stream(True, 3)
        (False, True, True)
    """
    return bool(lazy) if lazy is not None else files >= STREAM_THRESHOLD


def crop_digest(crop: np.ndarray) -> np.ndarray:
    """``[DIGEST_BYTES]`` uint8: blake2b of a crop's shape and bytes."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    h.update(str(crop.shape).encode())
    h.update(np.ascontiguousarray(crop).tobytes())
    return np.frombuffer(h.digest(), np.uint8).copy()


@dataclass
class FaceIndex:
    """The face items of a list of files, without their pixels (see :func:`index_faces`).

    Attributes:
        status (np.ndarray): ``[F]`` int8 per file (:data:`~captum_fau.data.faces.STATUS_OK`, ...).
        shapes (np.ndarray): ``[F, 2]`` int32 source ``(H, W)`` per file (-1 when unreadable).
        boxes (np.ndarray): ``[M, 4]`` int32 ``(x, y, w, h)`` per item.
        owner (np.ndarray): ``[M]`` int64, the file of each item (files in order, faces left to right).
        whole (np.ndarray): ``[M]`` bool, the item is the whole image kept as a face crop.
        digests (np.ndarray): ``[M, DIGEST_BYTES]`` uint8 digests of the crops' pixels.
        params (dict): Crop settings (size, interpolation, finder).
        from_cache (bool): The index was read from the cache; no image was decoded.
    """

    status: np.ndarray
    shapes: np.ndarray
    boxes: np.ndarray
    owner: np.ndarray
    whole: np.ndarray
    digests: np.ndarray
    params: dict[str, Any]
    from_cache: bool = False

    def reasons(self) -> list[str | None]:
        """Per file: ``None`` when it gave items, else why it gave none (as :meth:`FaceCrops.reasons`)."""
        return status_reasons(self.status)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"status": self.status, "shapes": self.shapes, "boxes": self.boxes, "owner": self.owner,
                "whole": self.whole.astype(np.uint8), "digests": self.digests}  # fmt: skip


def _index_files(paths: Sequence[str], finder: FaceFinder, size: int, interpolation: str) -> dict[str, np.ndarray]:
    """The index arrays of ``paths`` (owner counted from 0 within them)."""
    status = np.zeros(len(paths), np.int8)
    shapes = np.full((len(paths), 2), -1, np.int32)
    boxes, owner, whole, digests = [], [], [], []
    for i, path in enumerate(paths):
        found = file_faces(path, finder, size, interpolation)
        status[i], shapes[i] = found.status, found.shape
        for box, crop, kept_whole in zip(found.boxes, found.crops, found.whole):
            boxes.append(box)
            owner.append(i)
            whole.append(kept_whole)
            digests.append(crop_digest(crop))
    return {"status": status, "shapes": shapes, "boxes": np.asarray(boxes, np.int32).reshape(-1, 4),
            "owner": np.asarray(owner, np.int64), "whole": np.asarray(whole, np.uint8),
            "digests": np.asarray(digests, np.uint8).reshape(-1, DIGEST_BYTES)}  # fmt: skip


def opencv_one_thread() -> None:
    """OpenCV on one thread in this process and in the worker processes forked from it afterwards.

    The workers are the parallelism; several OpenCV threads per worker would only compete for the
    same cores. It must be set before the workers fork: ``cv2.setNumThreads`` called inside a worker
    forked from a process whose OpenCV thread pool has run never returns.
    """
    if torch.utils.data.get_worker_info() is None:
        import cv2

        cv2.setNumThreads(1)


class _IndexChunks(Dataset):
    """Chunk ``c`` of the files -> its index arrays, read from or written to the cache (in a worker)."""

    def __init__(self, paths: Sequence[str], finder: FaceFinder, size: int, interpolation: str,
                 store: ArrayCache | None, params: dict[str, Any]) -> None:  # fmt: skip
        self.paths, self.finder, self.size, self.interpolation = list(paths), finder, size, interpolation
        self.store, self.params = store, params

    def __len__(self) -> int:
        return -(-len(self.paths) // INDEX_CHUNK)

    def key(self, chunk: int) -> str:
        files = self.paths[chunk * INDEX_CHUNK : (chunk + 1) * INDEX_CHUNK]
        return cache_key({**self.params, "chunk_of": "index", "files": file_fingerprints(files)})

    def __getitem__(self, chunk: int) -> dict[str, Any]:
        files = self.paths[chunk * INDEX_CHUNK : (chunk + 1) * INDEX_CHUNK]
        key = self.key(chunk) if self.store is not None else ""
        hit = self.store.load(key) if self.store is not None else None
        if _complete(hit, len(files)):
            return {**hit, "files": len(files), "cached": True}  # type: ignore[dict-item]
        arrays = _index_files(files, self.finder, self.size, self.interpolation)
        if self.store is not None:
            try:
                self.store.save(key, arrays)
            except Exception:  # noqa: BLE001 - a chunk entry only saves time on a resumed pass
                pass
        return {**arrays, "files": len(files), "cached": False}


def _complete(entry: dict[str, np.ndarray] | None, files: int) -> bool:
    """Whether a cache entry is an index of ``files`` files (every array there, one status per file)."""
    names = ("status", "shapes", "boxes", "owner", "whole", "digests")
    return entry is not None and all(name in entry for name in names) and len(entry["status"]) == files


def _first(batch: list[Any]) -> Any:
    return batch[0]


@contextlib.contextmanager
def _index_lock(store: ArrayCache, key: str, progress: bool) -> Iterator[None]:
    """Hold the file lock of the index ``key``, saying so when another process holds it; no lock when the
    cache folder cannot be created (then nothing is written there either)."""
    from filelock import FileLock, Timeout

    try:
        store.directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        yield
        return
    lock = FileLock(str(store.directory / f".{store.prefix}-{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"Another process is indexing the same files ({lock.lock_file}); waiting to read its index.",
                  file=sys.stderr, flush=True)  # fmt: skip
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def index_faces(
    paths: Sequence[str | os.PathLike[str]],
    finder: FaceFinder,
    options: ReadOptions | None = None,
    *,
    size: int = 96,
    interpolation: str = "area",
    desc: str = "indexing faces",
    **settings: Any,
) -> FaceIndex:
    """Find the face items of every file once, in ``workers`` processes, with a shared, resumable cache.

    Args:
        paths (sequence of path): Image files.
        finder (FaceFinder): Boxes per image (:class:`~captum_fau.data.faces.OneFace`,
            :class:`~captum_fau.data.folder.FolderFaces`); the same the eager loader uses.
        size (int, optional): Side of the crops (their digests are stored). Default: 96
        interpolation (str, optional): Resize method. Default: ``"area"``
        options (ReadOptions, optional): ``cache_dir`` (default :func:`~captum_fau.data.cache.default_cache_dir`),
            ``cache`` (read and write the index cache, finders with a ``cache_token`` only), ``workers``
            (DataLoader worker processes, 0: this process; default :func:`default_workers`) and ``progress``;
            ``face_crop`` and ``lazy`` are not used here. Default: ``ReadOptions()``
        **settings: :class:`~captum_fau.data.options.ReadOptions` fields as keywords (``workers=0``).
        desc (str, optional): Progress-bar label.

    Returns:
        FaceIndex: status per file; box, owner file, ``whole`` flag and pixel digest per item.

    Examples::

        >>> import tempfile, cv2, os
        >>> from captum_fau.data.faces import OneFace
        >>> folder = tempfile.mkdtemp()
        >>> paths = [os.path.join(folder, f"{i}.png") for i in range(3)]
        >>> for p in paths[:2]:
        ...     _ = cv2.imwrite(p, np.full((40, 60), 90, np.uint8))
        >>> _ = open(paths[2], "wb").write(b"not an image")
        >>> index = index_faces(paths, OneFace(None), size=32, cache=False, workers=0, progress=False)
        >>> index.status.tolist(), index.owner.tolist(), index.boxes[0].tolist()
        ([0, 0, 1], [0, 1], [10, 0, 40, 40])
    """
    from tqdm.auto import tqdm

    int_at_least(size, "size", 8, hint="give the crop side in pixels (the reference uses 96).")
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}.")
    files = [os.fspath(p) for p in paths]
    opts = read_options(options, **settings)
    cache_dir, cache, progress = opts.cache_dir, opts.cache, opts.progress
    workers = check_workers(opts.workers)
    token = getattr(finder, "cache_token", None)
    params = {"size": int(size), "interpolation": interpolation, "finder": token or repr(finder), "index": 1}
    store = ArrayCache(cache_dir, prefix="face-index") if cache and token is not None else None
    key = cache_key({**params, "files": file_fingerprints(files)}) if store is not None else ""

    def cached() -> FaceIndex | None:
        hit = store.load(key) if store is not None else None
        if hit is None or not _complete(hit, len(files)):
            return None
        return FaceIndex(hit["status"], hit["shapes"], hit["boxes"], hit["owner"], hit["whole"].astype(bool),
                         hit["digests"], params, from_cache=True)  # fmt: skip

    lock = _index_lock(store, key, progress) if store is not None else contextlib.nullcontext()
    with lock:
        found = cached()
        if found is not None:
            return found
        chunks = _IndexChunks(files, finder, int(size), interpolation, store, params)
        if workers > 0:
            opencv_one_thread()
        loader = DataLoader(chunks, batch_size=1, num_workers=min(workers, len(chunks)), collate_fn=_first)
        parts: list[dict[str, Any]] = []
        offset = 0
        bar = tqdm(total=len(files), desc=desc, unit="img", disable=not progress, leave=False)
        for part in loader:
            part["owner"] = np.asarray(part["owner"], np.int64) + offset
            offset += int(part["files"])
            parts.append(part)
            bar.update(int(part["files"]))
        bar.close()
        index = FaceIndex(
            status=np.concatenate([p["status"] for p in parts]).astype(np.int8),
            shapes=np.concatenate([p["shapes"] for p in parts]).astype(np.int32).reshape(-1, 2),
            boxes=np.concatenate([p["boxes"] for p in parts]).astype(np.int32).reshape(-1, 4),
            owner=np.concatenate([p["owner"] for p in parts]).astype(np.int64),
            whole=np.concatenate([p["whole"] for p in parts]).astype(bool),
            digests=np.concatenate([p["digests"] for p in parts]).astype(np.uint8).reshape(-1, DIGEST_BYTES),
            params=params,
            from_cache=bool(parts) and all(p["cached"] for p in parts),
        )
        if store is not None:
            path = store.save(key, index.arrays())
            for chunk in range(len(chunks)):  # the whole index now stands for them
                store.path(chunks.key(chunk)).unlink(missing_ok=True)
            if progress:
                tqdm.write(f"Face index cached in {path} (set CAPTUM_FAU_CACHE to move the cache; "
                           "--no-cache / cache=False skips it).", file=sys.stderr)  # fmt: skip
        return index


#: The FaceSet description keywords of :class:`LazyFaceSet` (``**fields`` besides the label arrays), with defaults.
_SET_FIELDS: dict[str, Any] = {
    "class_names": CKPLUS_CLASSES,
    "au_ids": (),
    "name": "faces",
    "meta": None,
    "local_mean": 5,
    "local_mean_padding": "zeros",
}


class LazyFaceSet(LabelledRows, Dataset):
    """Face items cut from their image files when read: the streaming :class:`~captum_fau.data.base.FaceSet`.

    Built by :func:`~captum_fau.data.folder.load_folder` and :func:`~captum_fau.data.ckplus.load_ckplus`
    with ``lazy=True`` from a :class:`FaceIndex`; its items (pixels, labels, names, order) equal
    those of the eager FaceSet the same call returns with ``lazy=False``.

    Args:
        paths (sequence of path): The image files the items come from.
        owner (np.ndarray): ``[M]`` file of each item.
        boxes (np.ndarray): ``[M, 4]`` face box of each item in source pixels.
        digests (np.ndarray): ``[M, DIGEST_BYTES]`` pixel digests of the crops, checked on every read.
        size (int, optional): Side of the crops. Default: 96
        interpolation (str, optional): Resize method. Default: ``"area"``
        options (ReadOptions, optional): Its ``workers``: DataLoader worker processes the scan reads with
            (default :func:`default_workers`); the other fields do not apply to a built set.
            Default: :class:`~captum_fau.data.options.ReadOptions`
        **fields: ``class_names``, ``au_ids``, ``name``, ``meta``, ``local_mean``, ``local_mean_padding`` as in
            FaceSet; the label arrays ``emotions``, ``aus``, ``subjects``, ``sequences``, ``folds``, ``names`` (one
            entry per item); and ReadOptions fields by name (``workers=``), which change ``options``.

    Each item is a dict like a FaceSet item (``"image"`` float32 ``[1, size, size]`` preprocessed
    as the zero-bias reference, ``"index"``, and ``"emotion"``, ``"aus"``, ``"subject"`` where
    known); :meth:`raw_item` gives the raw uint8 crop. It has no ``raw_images``, so
    :class:`~captum_fau.inputs.model_inputs.ModelInputs` reads it item by item, in the workers.

    Raises:
        DatasetError: a file changed or vanished since it was indexed (its crop no longer
            matches the digest), when that item is read.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        owner: np.ndarray,
        boxes: np.ndarray,
        digests: np.ndarray,
        options: ReadOptions | None = None,
        *,
        size: int = 96,
        interpolation: str = "area",
        **fields: Any,
    ) -> None:
        read_names = [f.name for f in dataclass_fields(ReadOptions)]
        workers = with_settings(ReadOptions, options, {k: fields.pop(k) for k in read_names if k in fields}).workers
        described = {name: fields.pop(name, default) for name, default in _SET_FIELDS.items()}
        unknown = sorted(set(fields) - set(LABEL_FIELDS))
        if unknown:
            raise DatasetError(f"LazyFaceSet got unknown label arrays {unknown}; it takes {list(LABEL_FIELDS)}, "
                               f"size, interpolation, {', '.join(_SET_FIELDS)} and the ReadOptions fields "
                               f"{read_names}.")  # fmt: skip
        class_names, au_ids, name, meta, local_mean, local_mean_padding = described.values()
        labels = fields
        check_local_mean_padding(local_mean_padding)
        self.paths = np.array([os.fspath(p) for p in paths])
        self.owner = np.asarray(owner, np.int64)
        self.boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
        self.digests = np.asarray(digests, np.uint8).reshape(-1, DIGEST_BYTES)
        if not len(self.owner) == len(self.boxes) == len(self.digests):
            raise DatasetError(f"LazyFaceSet: {len(self.owner)} owners, {len(self.boxes)} boxes and "
                               f"{len(self.digests)} digests; one each per item.")  # fmt: skip
        self.size = int(size)
        self.interpolation = interpolation
        self.num_workers = check_workers(workers)
        if self.num_workers > 0:
            opencv_one_thread()  # before the scan's DataLoader forks its workers
        self.class_names = tuple(class_names)
        self.au_ids = tuple(au_ids)
        self.name = name
        self.meta = dict(meta or {})
        self.local_mean = local_mean
        self.local_mean_padding = local_mean_padding
        for field_name in LABEL_FIELDS:
            value = labels.get(field_name)
            if value is not None:
                value = np.asarray(value)
                if len(value) != len(self.owner):
                    raise LabelError(f"LazyFaceSet.{field_name} has {len(value)} entries but there are "
                                     f"{len(self.owner)} items.")  # fmt: skip
            setattr(self, field_name, value)
        if self.emotions is not None:
            self.emotions = self.emotions.astype(np.int64)
        if self.aus is not None:
            self.aus = self.aus.astype(np.float32)

    # ---------------------------------------------------------------- pixels
    def crop(self, index: int) -> np.ndarray:
        """The uint8 ``[size, size]`` face crop of item ``index``, cut from its file and checked.

        Raises:
            DatasetError: the file is unreadable now, or its crop differs from the indexed one.
        """
        path = self.paths[self.owner[index]]
        gray = read_gray(path)
        box = tuple(int(v) for v in self.boxes[index])
        crop = None if gray is None else crop_resize(gray, box, self.size, self.interpolation)  # type: ignore[arg-type]
        if crop is None or not np.array_equal(crop_digest(crop), self.digests[index]):
            raise DatasetError(
                f"{path} changed or became unreadable since it was indexed (item {index} of {self.name!r}); "
                "load the data again (the index is keyed on each file's size and modification time)."
            )
        return crop

    # ---------------------------------------------------------------- Dataset
    def __len__(self) -> int:
        return len(self.owner)

    def raw_item(self, index: int) -> dict[str, Any]:
        """Item ``index`` with its raw face crop: ``"image"`` uint8 ``[1, size, size]`` (as :meth:`FaceSet.raw_item`)."""
        index = int(index)
        return self._with_labels({"image": torch.from_numpy(self.crop(index)[None].copy()), "index": index}, index)

    def tensors(self, indices: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """Preprocessed images ``[n, 1, size, size]`` float32 of rows ``indices`` (default: all), read here."""
        rows = range(len(self)) if indices is None else np.asarray(indices).reshape(-1).tolist()
        crops = (
            np.stack([self.crop(int(i)) for i in rows]) if len(rows) else np.zeros((0, self.size, self.size), np.uint8)
        )
        return model_input(torch.from_numpy(crops)[:, None], self.local_mean, self.local_mean_padding)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.size, self.size

    def subset(self, indices: Sequence[int] | np.ndarray) -> "LazyFaceSet":
        """A LazyFaceSet of rows ``indices`` (same files and settings; ``meta`` is shared)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        clone = object.__new__(LazyFaceSet)
        clone.__dict__.update(self.__dict__)
        clone.owner, clone.boxes, clone.digests = self.owner[idx], self.boxes[idx], self.digests[idx]
        for field_name in LABEL_FIELDS:
            value = getattr(self, field_name)
            setattr(clone, field_name, None if value is None else value[idx])
        return clone

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the contents: a hash of every item's pixel digest (made from the crop's pixels
        when the files were indexed, and checked on every read) and of every label array, with the label
        hash of :meth:`FaceSet.fingerprint`."""
        from captum_fau._utils.fingerprint import hash_arrays

        pixels = hash_arrays(
            self.digests, self.names, self.local_mean, self.local_mean_padding, self.emotions is not None
        )
        return {"method": "every pixel (per-item digests) and label", "type": "LazyFaceSet", "name": self.name,
                "n": len(self), "hash": pixels, "labels": self._label_hash()}  # fmt: skip

    def materialize(self, progress: bool = True, batch_size: int = 64) -> FaceSet:
        """The eager :class:`FaceSet` of these items: crops read with :attr:`num_workers` workers, labels,
        names and ``meta`` unchanged (for training, which keeps every image in memory)."""
        from tqdm.auto import tqdm

        loader = DataLoader(_RawCrops(self), batch_size=batch_size, num_workers=self.num_workers,
                            collate_fn=np.stack)  # fmt: skip
        images = np.zeros((len(self), self.size, self.size), np.uint8)
        start = 0
        for crops in tqdm(loader, desc=f"{self.name} faces", unit="batch", disable=not progress, leave=False):
            images[start : start + len(crops)] = crops
            start += len(crops)
        return FaceSet(images=images, class_names=self.class_names, emotions=self.emotions, aus=self.aus,
                       au_ids=self.au_ids, subjects=self.subjects, sequences=self.sequences, folds=self.folds,
                       names=self.names, name=self.name, meta=self.meta, local_mean=self.local_mean,
                       local_mean_padding=self.local_mean_padding)  # fmt: skip

    def __repr__(self) -> str:
        parts = [f"{len(self)} images {self.size}x{self.size} from {len(self.paths)} files",
                 f"{self.num_workers} workers", *self._label_summary()]  # fmt: skip
        return f"LazyFaceSet({self.name!r}: {', '.join(parts)})"


class _RawCrops(Dataset):
    """Crop ``i`` of a LazyFaceSet, for :meth:`LazyFaceSet.materialize`."""

    def __init__(self, faces: LazyFaceSet) -> None:
        self.faces = faces

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.faces.crop(index)


def stream_note(faces: Any) -> str | None:
    """One sentence saying that ``faces`` is streamed and how, or None for in-memory data."""
    info = getattr(faces, "meta", {}).get("stream") if isinstance(getattr(faces, "meta", None), dict) else None
    if not isinstance(info, dict):
        return None
    where = "read from" if info["from_cache"] else "written to"
    return (f"Streamed data: {info['items']} face items cut from {info['files']} files per read in "
            f"{info['workers']} worker process(es) ({info['why']}); index {where} the face cache.")  # fmt: skip


__all__ = [
    "DIGEST_BYTES", "FaceIndex", "INDEX_CHUNK", "LABEL_FIELDS", "LazyFaceSet", "STREAM_THRESHOLD", "check_workers",
    "crop_digest", "default_workers", "index_faces", "opencv_one_thread", "should_stream", "stream_note",
]  # fmt: skip
