"""Dataset specs: one string that names a dataset and where it lives.

Commands take ``--data SPEC`` so that every dataset is reachable the same way:

=========================  ===================================================
``synthfacs[:N]``          N rendered SynthFACS faces (default: the renderer's, 1308), seeded
``synthfacs-photo[:N]``    the same faces in the shaded photo style (CK+-style detector crop)
``ckplus:PATH``            CK+, 8 classes (``ckplus8:PATH`` is the same)
``ckplus6:PATH``           CK+, 6 basic emotions
``tfd:PATH``               TFD (``.mat`` file or its folder); ``tfd:PATH#K`` keeps split K
``fer2013:PATH``           FER2013 (``fer2013.csv``)
``folder:PATH``            a folder of images (+ ``labels.csv``, ``--au-csv``)
=========================  ===================================================

Examples::

    >>> parse_data_spec("ckplus6:/data/CK+")
    ('ckplus6', '/data/CK+')
    >>> parse_data_spec("synthfacs:500")
    ('synthfacs', '500')
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from captum_fau.errors import DatasetError

#: Images rendered for a bare ``synthfacs`` spec when the renderer has no default of its own.
DEFAULT_SYNTHFACS_IMAGES = 2000

SPEC_FORMS = (
    "synthfacs",
    "synthfacs:N",
    "synthfacs-photo:N",
    "ckplus:PATH",
    "ckplus8:PATH",
    "ckplus6:PATH",
    "tfd:PATH",
    "tfd:PATH#FOLD",
    "fer2013:PATH",
    "folder:PATH",
)
_KINDS = ("synthfacs", "synthfacs-photo", "ckplus", "ckplus8", "ckplus6", "tfd", "fer2013", "folder")


def _unknown(spec: str, why: str) -> DatasetError:
    return DatasetError(f"dataset spec {spec!r}: {why}. Accepted forms: {', '.join(SPEC_FORMS)}.")


def parse_data_spec(spec: str) -> tuple[str, str]:
    """Split a spec into ``(kind, argument)``; the argument is ``""`` for a bare ``synthfacs``.

    Raises:
        DatasetError: unknown kind or missing path; the message lists the accepted forms.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise _unknown(str(spec), "empty spec")
    kind, sep, argument = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in _KINDS:
        raise _unknown(spec, f"unknown dataset {kind!r}")
    if not kind.startswith("synthfacs") and not argument:
        raise _unknown(spec, f"{kind} needs a path after the colon")
    return kind, argument


def load_data_spec(
    spec: str,
    *,
    au_csv: str | os.PathLike[str] | None = None,
    seed: int = 0,
    size: int | None = None,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    face_crop: str = "auto",
    cache: bool = True,
    lazy: bool | None = None,
    workers: int | None = None,
) -> Any:
    """Load the dataset a spec names.

    Args:
        spec (str): See the module docstring (``"synthfacs:500"``, ``"ckplus:/data/CK+"``, ...).
        au_csv (str or Path, optional): AU labels for ``folder:`` specs (OpenFace / py-feat).
        seed (int, optional): Seed of SynthFACS rendering. Default: 0
        size (int, optional): Face side in pixels. Default: each loader's own (96; 48 for FER2013).
        progress (bool, optional): Show progress bars. Default: True
        cache_dir (str or Path, optional): Face-crop cache folder for CK+ and folders.
            Default: :func:`~captum_fau.data.cache.default_cache_dir` (``$CAPTUM_FAU_CACHE``, else
            ``$XDG_CACHE_HOME/captum-fau/preprocessed``).
        cache (bool, optional): Read and write the face-crop cache; False writes nothing outside
            the caller's folders. Default: True
        face_crop (str, optional): How faces are found in ``folder:`` images: ``"auto"``,
            ``"haar"`` or ``"none"`` (see :func:`~captum_fau.data.folder.load_folder`); CK+ keeps
            the reference detector. Default: ``"auto"``
        lazy (bool, optional): ``ckplus:`` and ``folder:`` data as a
            :class:`~captum_fau.data.lazy.LazyFaceSet` (face items cut per read in worker
            processes; the same items) when True, in memory when False; ``None`` streams sources
            of :data:`~captum_fau.data.lazy.STREAM_THRESHOLD` files or more. Other sources are not
            streamed (TFD reads only its kept rows, memory-mapped when the file allows, see
            :func:`~captum_fau.data.tfd.load_tfd`), and ``lazy=True`` with them is refused.
            Default: None
        workers (int, optional): Worker processes of streamed data. Default: the usable cores, at most 8

    Returns:
        FaceSet or LazyFaceSet: the loaded set.

    Raises:
        DatasetError: unknown spec (the message lists the accepted forms), or ``au_csv``
            with a dataset that does not take it. Loaders raise their own errors for
            missing files.

    Examples::

        >>> load_data_spec("synthfacs:200", seed=1, progress=False)
        FaceSet('synthfacs': 200 images 96x96, 8 classes, 20 AUs, 19 subjects)
        >>> faces = load_data_spec("ckplus6:/data/CK+")            # doctest: +SKIP
    """
    kind, argument = parse_data_spec(spec)
    if au_csv is not None and kind != "folder":
        raise DatasetError(
            f"--au-csv applies to folder: specs only; {kind} brings its own labels. Drop --au-csv or use folder:PATH."
        )
    if face_crop != "auto" and kind != "folder":
        raise DatasetError(
            f"--face-crop applies to folder: specs only; {kind} has its own face crops (CK+ keeps the reference "
            "detector). Drop --face-crop or use folder:PATH."
        )
    if lazy and kind not in ("ckplus", "ckplus8", "ckplus6", "folder"):
        raise DatasetError(
            f"--stream (lazy=True) applies to ckplus: and folder: data, whose files are decoded and face-cropped per "
            f"item; {kind} data are not streamed (TFD: a pre-aligned .mat of which only the kept rows are read). "
            "Drop --stream."
        )
    sized: dict[str, Any] = {} if size is None else {"size": int(size)}
    streamed: dict[str, Any] = {"lazy": lazy, "workers": workers}
    if kind.startswith("synthfacs"):
        from captum_fau.data.synthfacs import load_synthfacs

        accepted = inspect.signature(load_synthfacs).parameters
        extra: dict[str, object] = {"seed": seed}
        if argument:
            if not argument.isdigit() or int(argument) < 1:
                raise _unknown(spec, f"N must be a positive integer, got {argument!r}")
            extra["n"] = int(argument)
        elif accepted["n"].default is inspect.Parameter.empty:
            extra["n"] = DEFAULT_SYNTHFACS_IMAGES
        if size is not None:
            extra["size"] = int(size)
        if "progress" in accepted:
            extra["progress"] = progress
        if kind == "synthfacs-photo":
            extra["style"] = "photo"
        return load_synthfacs(**extra)
    path = Path(argument).expanduser()
    if kind in ("ckplus", "ckplus8", "ckplus6"):
        from captum_fau.data.ckplus import load_ckplus

        return load_ckplus(
            path, num_classes=6 if kind == "ckplus6" else 8, progress=progress, cache_dir=cache_dir, cache=cache, **sized,
            **streamed,
        )
    if kind == "tfd":
        from captum_fau.data.tfd import load_tfd

        fold = None
        if "#" in argument:
            location, _, fold_text = argument.rpartition("#")
            if not fold_text.isdigit():
                raise _unknown(spec, f"the TFD split after '#' must be 0..4, got {fold_text!r}")
            path, fold = Path(location).expanduser(), int(fold_text)
        return load_tfd(path, fold=fold, **sized)
    if kind == "fer2013":
        from captum_fau.data.fer2013 import load_fer2013

        return load_fer2013(path, size=size, progress=progress)
    from captum_fau.data.folder import load_folder

    return load_folder(path, au_csv=au_csv, progress=progress, cache_dir=cache_dir, face_crop=face_crop, cache=cache,
                       **sized, **streamed)


__all__ = ["DEFAULT_SYNTHFACS_IMAGES", "SPEC_FORMS", "load_data_spec", "parse_data_spec"]
