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
import warnings
from pathlib import Path
from typing import Any

from captum_fau.data.options import ReadOptions, read_options
from captum_fau.errors import DatasetError, option

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


_FILE_KINDS = ("ckplus", "ckplus8", "ckplus6", "folder")


def check_data_options(
    kind: str,
    au_csv: Any = None,
    face_crop: str = "auto",
    lazy: bool | None = None,
    workers: int | None = None,
    cache: bool = True,
) -> None:
    """Refuse the options of :func:`load_data_spec` that would not do what they say for ``kind`` data; warn of
    the harmless ones (``--no-stream``, ``--workers``, ``--no-cache`` on data that never stream or cache).

    Raises:
        DatasetError: ``au_csv`` / ``face_crop`` with data other than ``folder:``, ``lazy=True`` with data
            that are not streamed.
    """
    au, crop = option("au_csv=", "--au-csv"), option("face_crop=", "--face-crop")
    if au_csv is not None and kind != "folder":
        raise DatasetError(f"{au} applies to folder: specs only; {kind} brings its own labels. Drop {au} or use "
                           "folder:PATH.")  # fmt: skip
    if face_crop != "auto" and kind != "folder":
        raise DatasetError(
            f"{crop} applies to folder: specs only; {kind} has its own face crops (CK+ keeps the reference "
            f"detector). Drop {crop} or use folder:PATH."
        )
    if kind in _FILE_KINDS:
        return
    stream = option("lazy=True", "--stream")
    if lazy:
        raise DatasetError(
            f"{stream} applies to ckplus: and folder: data, whose files are decoded and face-cropped per "
            f"item; {kind} data are not streamed (TFD: a pre-aligned .mat of which only the kept rows are read). "
            f"Drop {stream}."
        )
    ignored = [(lazy is False, option("lazy=False", "--no-stream"), "they are never streamed"),
               (workers is not None, option("workers=", "--workers"), "they are read in this process"),
               (not cache, option("cache=False", "--no-cache"), "they use no face-crop cache")]  # fmt: skip
    for given, name, why in ignored:
        if given:
            warnings.warn(f"{name} does nothing with {kind}: data ({why}).", UserWarning, stacklevel=3)


def load_data_spec(
    spec: str,
    options: ReadOptions | None = None,
    *,
    au_csv: str | os.PathLike[str] | None = None,
    seed: int = 0,
    size: int | None = None,
    **settings: Any,
) -> Any:
    """Load the dataset a spec names.

    Args:
        spec (str): See the module docstring (``"synthfacs:500"``, ``"ckplus:/data/CK+"``, ...).
        au_csv (str or Path, optional): AU labels for ``folder:`` specs (OpenFace / py-feat).
        seed (int, optional): Seed of SynthFACS rendering. Default: 0
        size (int, optional): Face side in pixels. Default: each loader's own (96; 48 for FER2013).
        options (ReadOptions, optional): How ``ckplus:`` / ``folder:`` images are read: face crops, the
            cache, streaming (``lazy``: ``ckplus:`` and ``folder:`` only; other sources are not streamed and
            ``lazy=True`` with them is refused), workers, progress; see :class:`~captum_fau.data.options.ReadOptions`.
            Default: ``ReadOptions()``
        **settings: :class:`ReadOptions` fields as keywords (``progress=False, lazy=True``); they override
            ``options``.

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
    opts = read_options(options, **settings)
    progress, face_crop, cache, lazy, workers = opts.progress, opts.face_crop, opts.cache, opts.lazy, opts.workers
    kind, argument = parse_data_spec(spec)
    check_data_options(kind, au_csv, face_crop, lazy, workers, cache)
    sized: dict[str, Any] = {} if size is None else {"size": int(size)}
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

        return load_ckplus(path, opts, num_classes=6 if kind == "ckplus6" else 8, **sized)
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

    return load_folder(path, options=opts, au_csv=au_csv, **sized)


__all__ = ["DEFAULT_SYNTHFACS_IMAGES", "SPEC_FORMS", "check_data_options", "load_data_spec", "parse_data_spec"]
