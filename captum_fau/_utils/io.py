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

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np

from captum_fau.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``, on error delete it.

    Args:
        path (str or Path): The final file.
        suffix (str, optional): Suffix of the temporary name, for writers that insist on one
            (e.g. ``".npz"`` for ``np.savez``). Default: ``""``

    Raises:
        OutputError: the folder cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp")
    except OSError as err:
        raise OutputError(f"Cannot write {path} ({err}); choose a writable location.") from err
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


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
    with atomic_open(path, "wb") as handle:
        save(handle, **{name: np.asarray(value) for name, value in arrays.items()})
    return Path(path)


def atomic_safetensors(
    path: str | os.PathLike[str], tensors: Mapping[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """Write ``tensors`` (name -> torch tensor) to the safetensors file ``path`` atomically; returns ``path``.

    Tensors are detached, moved to the CPU and made contiguous first.
    """
    from safetensors.torch import save_file

    ready = {name: value.detach().cpu().contiguous() for name, value in tensors.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(ready, str(tmp), metadata=metadata)
    return Path(path)


__all__ = ["atomic_npz", "atomic_open", "atomic_path", "atomic_safetensors", "atomic_write_bytes", "atomic_write_text"]
