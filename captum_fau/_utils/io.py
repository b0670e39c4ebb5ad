"""Atomic file output: a result file is either complete or absent, never half-written.

Everything captum-fau writes (reports, results, caches, checkpoints) goes
through :func:`atomic_path`: the content is written to a temporary file in the
target's folder and moved into place with ``os.replace`` once it is complete.
The other functions are the usual writers on top of it: bytes, text, an open
file handle, a ``.npz`` archive and a safetensors file.

Examples::

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np

from captum_fau.errors import OutputError, option

#: ``errno`` values of a full disk or quota (``EFBIG``: a file over the file system's size limit).
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
#: How libraries that wrap the OS error in their own exception (safetensors' Rust writer) spell it.
_FULL_TEXT = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122", "File too large")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the disk (or the user's quota) is full, however the writer wrapped it."""
    if isinstance(err, OSError) and err.errno in _FULL:
        return True
    return any(text in str(err) for text in _FULL_TEXT)


def disk_full_error(
    folder: str | os.PathLike[str], name: str | None, needed: int | None, err: BaseException
) -> OutputError:
    """The :class:`OutputError` of a full disk: the folder, the bytes the file needed and what is free.

    Args:
        folder (str or Path): Where the file was being written.
        name (str, optional): The file's name, where known.
        needed (int, optional): Its size in bytes, where known.
        err (BaseException): What the writer raised.
    """
    try:
        free = f"{_megabytes(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    what = f"writing {name}" if name else "a write"
    size = f" needs {_megabytes(needed)} ({free})" if needed is not None else f" could not be completed ({free})"
    return OutputError(
        f"The disk holding {folder} is full: {what}{size}; {type(err).__name__}: {err}. "
        f"Free space there or choose a folder on another disk ({option('out=', '--out')}), then run the same "
        f"{option('call', 'command')} again: nothing incomplete was left behind, and finished steps are reused."
    )


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "", size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``, on error delete it.

    Args:
        path (str or Path): The final file.
        suffix (str, optional): Suffix of the temporary name, for writers that insist on one
            (e.g. ``".npz"`` for ``np.savez``). Default: ``""``
        size (int, optional): The bytes the file will need, for the message of a full disk.
            Default: unknown

    Raises:
        OutputError: the folder cannot be created or written, or its disk is full (the message names the
            folder, the bytes needed and the fix).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp")
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(path.parent, path.name, size, err) from err
        raise OutputError(f"Cannot write {path} ({err}); choose a writable location.") from err
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if not isinstance(err, OutputError) and is_disk_full(err):
            raise disk_full_error(path.parent, path.name, size, err) from err
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path, size=len(data)) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text writes a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing (``"w"`` text, UTF-8, no newline translation;
    ``"wb"`` binary) that replaces ``path`` when the block ends without an error.

    Examples::

        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
        >>> with atomic_open(target) as handle:
        ...     _ = handle.write("a,b\\n")
        >>> target.read_text()
        'a,b\\n'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes with mode 'w' or 'wb', not {mode!r}")
    text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
    with atomic_path(path) as tmp, open(tmp, mode, **text) as handle:
        yield handle


def atomic_npz(path: str | os.PathLike[str], compressed: bool = False, **arrays: Any) -> Path:
    """Write ``arrays`` to the ``.npz`` archive ``path`` atomically; returns ``path``.

    Args:
        path (str or Path): The archive.
        compressed (bool, optional): Use ``np.savez_compressed``. Default: False
        **arrays: Name -> array-like.
    """
    save = np.savez_compressed if compressed else np.savez
    ready = {name: np.asarray(value) for name, value in arrays.items()}
    with atomic_path(path, size=None if compressed else sum(a.nbytes for a in ready.values())) as tmp:
        with open(tmp, "wb") as handle:
            save(handle, **ready)
    return Path(path)


def atomic_safetensors(
    path: str | os.PathLike[str], tensors: Mapping[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """Write ``tensors`` (name -> torch tensor) to the safetensors file ``path`` atomically; returns ``path``.

    Tensors are detached, moved to the CPU and made contiguous first.
    """
    from safetensors.torch import save_file

    ready = {name: value.detach().cpu().contiguous() for name, value in tensors.items()}
    size = sum(t.numel() * t.element_size() for t in ready.values())
    with atomic_path(path, suffix=".safetensors", size=size) as tmp:
        save_file(ready, str(tmp), metadata=metadata)
    return Path(path)


__all__ = [
    "atomic_npz",
    "atomic_open",
    "atomic_path",
    "atomic_safetensors",
    "atomic_write_bytes",
    "atomic_write_text",
    "disk_full_error",
    "is_disk_full",
]
