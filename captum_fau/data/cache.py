"""A content-keyed cache of preprocessed arrays.

Face detection over a few thousand full-resolution frames takes minutes; the
result (crops, boxes, status codes) is small. :class:`ArrayCache` stores such
results as one ``.npz`` file per key, where the key is a hash of everything
that determines the result: the input files (path, size, modification time)
and the preprocessing parameters. Change either and the key changes, so a
stale entry is never returned; keep both and the second run is a file read.

Files are written atomically (temporary file in the same folder, then
``os.replace``) and read with ``allow_pickle=False``.

Examples::

    >>> import numpy as np, tempfile
    >>> cache = ArrayCache(tempfile.mkdtemp())
    >>> key = cache_key({"size": 96, "files": file_fingerprints([])})
    >>> cache.load(key) is None
    True
    >>> _ = cache.save(key, {"images": np.zeros((2, 4, 4), np.uint8)})
    >>> cache.load(key)["images"].shape
    (2, 4, 4)
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from captum_fau._utils.io import atomic_npz
from captum_fau.errors import OutputError

#: Environment variable that moves the default cache folder.
CACHE_ENV_VAR = "CAPTUM_FAU_CACHE"

#: Bumped whenever the layout of cached entries changes, so old entries are ignored.
CACHE_FORMAT_VERSION = 2  # 2: image files are read with their EXIF orientation applied


def default_cache_dir() -> Path:
    """Where preprocessed arrays go when no folder is given.

    ``$CAPTUM_FAU_CACHE`` if set, else ``$XDG_CACHE_HOME/captum-fau/preprocessed``
    (``~/.cache/captum-fau/preprocessed``).
    """
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "captum-fau" / "preprocessed"


def file_fingerprints(paths: Iterable[str | os.PathLike[str]]) -> list[list[Any]]:
    """``[absolute path, size, mtime_ns]`` per file (``[path, -1, -1]`` when it cannot be stat'ed).

    Size and modification time identify a file's content the way build tools do,
    without reading every byte.
    """
    prints: list[list[Any]] = []
    for path in paths:
        resolved = os.path.abspath(os.fspath(path))
        try:
            st = os.stat(resolved)
            prints.append([resolved, int(st.st_size), int(st.st_mtime_ns)])
        except OSError:
            prints.append([resolved, -1, -1])
    return prints


def cache_key(parts: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``parts`` plus the cache format version.

    Args:
        parts (mapping): JSON-serialisable description of the inputs and parameters.

    Returns:
        str: 64 hex digits.
    """
    payload = json.dumps({"format": CACHE_FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ArrayCache:
    """A folder of ``<prefix>-<key>.npz`` files holding dicts of numpy arrays.

    Args:
        directory (str or Path, optional): The folder; created on the first save.
            Default: :func:`default_cache_dir`.
        prefix (str, optional): File-name prefix, to tell entries of different kinds apart.
            Default: ``"faces"``
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, prefix: str = "faces") -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.prefix = prefix

    def path(self, key: str) -> Path:
        """The file an entry with ``key`` lives in."""
        return self.directory / f"{self.prefix}-{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or ``None`` when absent or unreadable.

        A damaged entry (an interrupted copy, a full disk) counts as absent, so the
        caller recomputes and overwrites it instead of failing.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None

    def save(self, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Write ``arrays`` under ``key`` atomically and return the file's path.

        Raises:
            OutputError: the cache folder cannot be created or written; pass another
                ``cache_dir`` or set ``$CAPTUM_FAU_CACHE``.
        """
        path = self.path(key)
        try:
            atomic_npz(path, compressed=True, **arrays)
        except OSError as err:
            raise OutputError(
                f"cannot write the preprocessing cache at {self.directory}: {err}. "
                f"Pass a writable cache_dir, or set ${CACHE_ENV_VAR} to a writable folder."
            ) from err
        return path


__all__ = ["ArrayCache", "CACHE_ENV_VAR", "cache_key", "default_cache_dir", "file_fingerprints"]
