"""How real-image data are read: :class:`ReadOptions`, one object shared by
:func:`~captum_fau.data.spec.load_data_spec`, :class:`~captum_fau.analyze.AnalysisConfig`
(:attr:`~captum_fau.analyze.AnalysisConfig.read_options`) and the command line
(``captum_fau.cli._options.read_options``: ``--face-crop``, ``--no-cache``, ``--stream``, ``--workers``, ``--quiet``).

Examples::

    >>> ReadOptions(face_crop="none", lazy=False).with_changes(workers=0).workers
    0
    >>> ReadOptions().with_changes(stream=True)
    Traceback (most recent call last):
    ...
    captum_fau.errors.ConfigError: unknown read option(s) ['stream']; ReadOptions has cache, cache_dir, face_crop, lazy, progress, workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from captum_fau.errors import ConfigError


@dataclass(frozen=True)
class ReadOptions:
    """How ``ckplus:`` / ``folder:`` images are read (other sources use ``progress`` only).

    Args:
        face_crop (str, optional): How faces are found in ``folder:`` images: ``"auto"``, ``"haar"`` or
            ``"none"`` (see :func:`~captum_fau.data.folder.load_folder`); CK+ keeps the reference detector.
            Default: ``"auto"``
        cache (bool, optional): Read and write the face-crop cache; False writes nothing outside the caller's
            folders. Default: True
        cache_dir (str or Path, optional): Face-crop cache folder. Default:
            :func:`~captum_fau.data.cache.default_cache_dir` (``$CAPTUM_FAU_CACHE``, else
            ``$XDG_CACHE_HOME/captum-fau/preprocessed``)
        lazy (bool, optional): Stream (a :class:`~captum_fau.data.lazy.LazyFaceSet`, the same items cut per
            read in worker processes) when True, in memory when False; ``None`` streams sources of
            :data:`~captum_fau.data.lazy.STREAM_THRESHOLD` files or more. Default: None
        workers (int, optional): Worker processes of streamed data. Default: the usable cores, at most 8
        progress (bool, optional): Show progress bars. Default: True
    """

    face_crop: str = "auto"
    cache: bool = True
    cache_dir: str | os.PathLike[str] | None = None
    lazy: bool | None = None
    workers: int | None = None
    progress: bool = True

    # face_crop, lazy and workers are checked by the loaders that use them, with their own messages

    def with_changes(self, **changes: Any) -> "ReadOptions":
        """A copy with ``changes``; an unknown name raises :class:`~captum_fau.errors.ConfigError` listing the known."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown read option(s) {unknown}; ReadOptions has {', '.join(sorted(known))}.")
        return replace(self, **changes) if changes else self


def read_options(options: ReadOptions | None = None, **changes: Any) -> ReadOptions:
    """``options`` (default :class:`ReadOptions`) with keyword ``changes``: the keyword form of the settings."""
    if options is not None and not isinstance(options, ReadOptions):
        raise ConfigError(f"options must be a ReadOptions, got {type(options).__name__}.")
    return (options or ReadOptions()).with_changes(**changes)


__all__ = ["ReadOptions", "read_options"]
