"""Per-image rows of a scan (dataset index + fixed-shape columns), with flat memory.

:class:`RowStore` is the per-image store of a scan: for every image, its
dataset index and a few fixed-shape columns (a layer's channel maxima
``[C]``, their positions ``[C, 2]``, the model's outputs, labels). Rows stay
in memory until they exceed ``spill_bytes``; from then on they are appended
to plain binary files (one per column) and read back through memory maps, so
a scan's resident memory does not grow with the dataset. Given a
``directory``, the store writes its files there from the first row, which is
what resumable scans use: :meth:`reopen` truncates the files to the row count
a checkpoint recorded.

Stores serialise (:meth:`state_dict`) and merge (:meth:`merge`); the merged
rows are ordered by dataset index, so shards combine into exactly the
single-process rows whatever the order they are merged in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from captum_fau._utils.io import atomic_write_text
from captum_fau._utils.validate import non_negative_int
from captum_fau.errors import ResumeError, StatisticsError

#: Rows kept in memory before a store spills to files (per store, all columns together).
DEFAULT_SPILL_BYTES = 256 * 2**20

#: Rows copied at a time when a file-backed store is merged or reordered.
_CHUNK_ROWS = 8192

_INDEX = "index"


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class RowStore:
    r"""Rows of ``(dataset index, column_1, column_2, ...)``, in memory or spilled to files.

    Columns are declared by the first :meth:`add`: every later batch must give
    the same columns with the same per-row shape and dtype.

    Args:
        directory (str or Path, optional): Write the rows to files in this folder
            from the start (resumable scans). Default: None (memory, then a
            private temporary folder once ``spill_bytes`` is exceeded)
        prefix (str, optional): File name prefix inside ``directory``. Default: ``"rows"``
        spill_bytes (int, optional): In-memory size above which rows move to
            files. ``0`` spills from the first row. Default: 256 MiB

    Examples::

        >>> import torch
        >>> store = RowStore()
        >>> store.add(torch.tensor([0, 1]), maxima=torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> store.add(torch.tensor([2]), maxima=torch.tensor([[5.0, 6.0]]))
        >>> len(store), store.column("maxima").shape
        (3, torch.Size([3, 2]))
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, prefix: str = "rows", spill_bytes: int | None = None
    ) -> None:
        spill = DEFAULT_SPILL_BYTES if spill_bytes is None else spill_bytes
        self.spill_bytes = non_negative_int(
            spill, "spill_bytes", error=StatisticsError, hint="0 spills from the first row."
        )
        self.prefix = prefix
        self.directory: Path | None = Path(directory) if directory is not None else None
        self._owns_directory = False
        self._finalizer: weakref.finalize | None = None
        #: name -> (per-row shape, numpy dtype); the dataset index column comes first.
        self.columns: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self._chunks: dict[str, list[np.ndarray]] = {}
        self._buffered_rows = 0
        self._file_rows = 0
        self._memory_bytes = 0
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ shape
    def _declare(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = {name: (tuple(a.shape[1:]), a.dtype) for name, a in columns.items()}
        self._chunks = {name: [] for name in self.columns}

    @property
    def spilled(self) -> bool:
        """Whether the rows live in files (a ``directory`` was given or memory overflowed)."""
        return self.directory is not None

    def _path(self, name: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{self.prefix}.{_file_stem(name)}.bin"

    @property
    def _spec_path(self) -> Path:
        assert self.directory is not None
        return self.directory / f"{self.prefix}.columns.json"

    def __len__(self) -> int:
        return self._file_rows + self._buffered_rows

    # ----------------------------------------------------------------- update
    def add(self, indices: torch.Tensor | np.ndarray, **columns: torch.Tensor | np.ndarray) -> None:
        """Append a batch: ``indices`` ``[B]`` and each column ``[B, ...]``."""
        arrays = {_INDEX: np.asarray(torch.as_tensor(indices).detach().cpu(), dtype=np.int64).reshape(-1)}
        for name, value in columns.items():
            if name == _INDEX:
                raise StatisticsError(f"{_INDEX!r} is reserved for the dataset index; rename the column.")
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            arrays[name] = np.ascontiguousarray(array)
        batch = len(arrays[_INDEX])
        for name, array in arrays.items():
            if array.ndim == 0 or len(array) != batch:
                raise StatisticsError(f"RowStore.add: column {name!r} has {len(array) if array.ndim else 0} rows, "
                                      f"the indices {batch}; give one row per image.")  # fmt: skip
        if not self.columns:
            self._declare(arrays)
            if self.directory is not None:
                self._write_spec()
        elif set(arrays) != set(self.columns):
            raise StatisticsError(
                f"RowStore.add got columns {sorted(arrays)} but the store holds {sorted(self.columns)}; "
                "give every batch the same columns."
            )
        for name, array in arrays.items():
            shape, dtype = self.columns[name]
            if tuple(array.shape[1:]) != shape:
                raise StatisticsError(
                    f"RowStore.add: column {name!r} has rows of shape {tuple(array.shape[1:])}, earlier ones {shape}."
                )
            self._chunks[name].append(array.astype(dtype, copy=False))
            self._memory_bytes += array.nbytes
        self._buffered_rows += batch
        if self.directory is None and self._memory_bytes > self.spill_bytes:
            self._spill_to_temporary()
        elif self.directory is not None and self._memory_bytes > min(self.spill_bytes, 16 * 2**20):
            self.flush()

    def _write_spec(self) -> None:
        spec = {name: {"shape": list(shape), "dtype": dtype.str} for name, (shape, dtype) in self.columns.items()}
        atomic_write_text(self._spec_path, json.dumps(spec, indent=1) + "\n")

    def _spill_to_temporary(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="captum-fau-rows-"))
        self._owns_directory = True
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.directory), True)
        self._write_spec()
        self.flush()

    def flush(self) -> None:
        """Write buffered rows to the files (no-op for an in-memory store)."""
        if self.directory is None or not self._buffered_rows:
            return
        for name, chunks in self._chunks.items():
            with open(self._path(name), "ab") as handle:
                for chunk in chunks:
                    handle.write(chunk.tobytes(order="C"))
                handle.flush()
                os.fsync(handle.fileno())
            chunks.clear()
        self._file_rows += self._buffered_rows
        self._buffered_rows = 0
        self._memory_bytes = 0

    # ------------------------------------------------------------------ reading
    def _file_array(self, name: str) -> np.ndarray:
        shape, dtype = self.columns[name]
        if self._file_rows == 0:
            return np.zeros((0, *shape), dtype=dtype)
        # Copy-on-write map: reads come from the page cache, not the process's own memory.
        return np.memmap(self._path(name), dtype=dtype, mode="c", shape=(self._file_rows, *shape))

    def array(self, name: str) -> np.ndarray:
        """Column ``name`` (``"index"`` for the dataset indices) as one ``[M, ...]`` array;
        a memory map when the store has spilled."""
        if name not in self.columns:
            if not self.columns:
                return np.zeros((0,), dtype=np.int64)
            raise StatisticsError(f"The store has no column {name!r}; it holds {sorted(self.columns)}.")
        if self.directory is not None:
            self.flush()
            return self._file_array(name)
        chunks = self._chunks[name]
        if len(chunks) > 1:
            chunks[:] = [np.concatenate(chunks)]
        shape, dtype = self.columns[name]
        return chunks[0] if chunks else np.zeros((0, *shape), dtype=dtype)

    def column(self, name: str) -> torch.Tensor:
        """Column ``name`` as a tensor (sharing memory with :meth:`array`)."""
        return torch.from_numpy(self.array(name))

    @property
    def indices(self) -> torch.Tensor:
        """``[M]`` int64 dataset index of each row."""
        return self.column(_INDEX)

    def result(self) -> dict[str, torch.Tensor]:
        """Every column (``"index"`` first) as a tensor, sharing memory with the store."""
        return {name: self.column(name) for name in self.columns}

    def iter_chunks(self, rows: int = _CHUNK_ROWS) -> Iterator[dict[str, np.ndarray]]:
        """The rows in order, ``rows`` at a time, as ``{column: array}`` (plain in-memory copies)."""
        arrays = {name: self.array(name) for name in self.columns}
        for start in range(0, len(self), rows):
            yield {name: np.array(a[start : start + rows]) for name, a in arrays.items()}

    # ------------------------------------------------------------- serialising
    def state_dict(self) -> dict[str, Any]:
        """All rows as tensors (``"index"`` and every column) plus the column layout.

        This materialises a spilled store in memory; resumable scans keep the
        files instead and record only the row count (see :meth:`reopen`).
        """
        state: dict[str, Any] = {name: torch.from_numpy(np.array(self.array(name))) for name in self.columns}
        state["columns"] = {name: {"shape": list(s), "dtype": d.str} for name, (s, d) in self.columns.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> "RowStore":
        """Replace the rows with those of ``state`` (from :meth:`state_dict`); returns ``self``."""
        try:
            names = list(state["columns"])
            arrays = {name: np.asarray(torch.as_tensor(state[name]).numpy()) for name in names}
        except KeyError as err:
            raise ResumeError(f"RowStore state lacks the entry {err}; it was not written by state_dict().") from err
        self._reset()
        if arrays:
            index = arrays.pop(_INDEX)
            self.add(index, **arrays)
        return self

    def _reset(self) -> None:
        if self.directory is not None:
            for name in self.columns:
                self._path(name).unlink(missing_ok=True)
        if self._owns_directory and self.directory is not None:
            if self._finalizer is not None:
                self._finalizer.detach()
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory, self._owns_directory, self._finalizer = None, False, None
        self.columns, self._chunks = {}, {}
        self._buffered_rows = self._file_rows = self._memory_bytes = 0

    @classmethod
    def reopen(
        cls, directory: str | os.PathLike[str], prefix: str, rows: int, spill_bytes: int | None = None
    ) -> "RowStore":
        """The file-backed store in ``directory`` cut back to its first ``rows`` rows.

        Raises:
            ResumeError: the files hold fewer rows than ``rows`` or are missing.
        """
        store = cls(directory, prefix, spill_bytes)
        if rows == 0 and not store._spec_path.exists():
            return store
        try:
            spec = json.loads(store._spec_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ResumeError(f"Cannot read the row layout {store._spec_path} ({err}); delete the checkpoint "
                              "folder to start the scan over.") from err  # fmt: skip
        store.columns = {name: (tuple(v["shape"]), np.dtype(v["dtype"])) for name, v in spec.items()}
        store._chunks = {name: [] for name in store.columns}
        for name, (shape, dtype) in store.columns.items():
            path = store._path(name)
            row_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            have = path.stat().st_size // row_bytes if path.exists() else 0
            if have < rows:
                raise ResumeError(
                    f"The checkpoint records {rows} rows but {path} holds {have}; the folder was changed. "
                    "Delete it to start the scan over."
                )
            with open(path, "r+b") as handle:
                handle.truncate(rows * row_bytes)
        store._file_rows = rows
        return store

    # ------------------------------------------------------------------ merging
    def merge(self, other: "RowStore") -> "RowStore":
        """Add the rows of ``other`` and order all rows by dataset index; returns ``self``.

        Raises:
            StatisticsError: the stores have different columns, or a dataset
                index occurs in both (overlapping shards).
        """
        if not isinstance(other, RowStore):
            raise StatisticsError(f"RowStore.merge needs a RowStore, got {type(other).__name__}.")
        if self.columns and other.columns and self.columns != other.columns:
            raise StatisticsError(
                f"Cannot merge row stores with different columns: {sorted(self.columns)} vs {sorted(other.columns)}; "
                "scan every shard with the same layers and options."
            )
        for chunk in other.iter_chunks():
            index = chunk.pop(_INDEX)
            self.add(index, **chunk)
        self.sort_by_index()
        return self

    def sort_by_index(self) -> None:
        """Reorder the rows by dataset index (no-op when already ordered).

        Raises:
            StatisticsError: a dataset index occurs twice.
        """
        if len(self) < 2:
            return
        index = np.asarray(self.array(_INDEX))
        steps = np.diff(index)
        if (steps > 0).all():
            return
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        repeated = sorted_index[1:][np.diff(sorted_index) == 0]
        if repeated.size:
            raise StatisticsError(
                f"Dataset index {int(repeated[0])} occurs in more than one shard ({repeated.size} repeated); "
                "give each process a disjoint part of the dataset."
            )
        arrays = {name: self.array(name) for name in self.columns}
        target = RowStore(spill_bytes=self.spill_bytes)
        for start in range(0, len(order), _CHUNK_ROWS):
            rows = order[start : start + _CHUNK_ROWS]
            chunk = {name: np.asarray(a[rows]) for name, a in arrays.items()}
            target.add(chunk.pop(_INDEX), **chunk)
        del arrays
        self._adopt(target)

    def _adopt(self, other: "RowStore") -> None:
        """Take over ``other``'s rows (used after a reorder)."""
        if self.directory is not None and not self._owns_directory:
            # Keep rows in our own folder: rewrite the files from the reordered store.
            for name in self.columns:
                self._path(name).unlink(missing_ok=True)
            self._file_rows = self._buffered_rows = self._memory_bytes = 0
            self._chunks = {name: [] for name in self.columns}
            for chunk in other.iter_chunks():
                index = chunk.pop(_INDEX)
                self.add(index, **chunk)
            self.flush()
            return
        self._reset()
        if other._finalizer is not None:
            other._finalizer.detach()  # the folder now belongs to self
        self.__dict__.update(other.__dict__)
        other._owns_directory, other._finalizer, other.directory = False, None, None
        if self.directory is not None and self._owns_directory:
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.directory), True)

    def __repr__(self) -> str:
        where = f"files in {self.directory}" if self.directory is not None else "memory"
        return f"RowStore(rows={len(self)}, columns={[c for c in self.columns if c != _INDEX]}, {where})"


__all__ = ["DEFAULT_SPILL_BYTES", "RowStore"]
