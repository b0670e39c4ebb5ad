"""The Toronto Face Dataset (TFD) from its MATLAB files.

``TFD_96x96.mat`` / ``TFD_48x48.mat`` hold:

* ``images`` ``(N, S, S)`` uint8 aligned faces,
* ``labs_ex`` ``(N, 1)`` expression 1..7 (anger, disgust, fear, happy, sadness,
  surprise, neutral), -1 for the unlabelled majority,
* ``labs_id`` ``(N, 1)`` identity, -1 when unknown,
* ``folds`` ``(N, 5)``: per split, 0 unused, 1 train, 2 valid, 3 test.

The faces are already aligned, so no detection is run. Use
:func:`captum_fau.data.folds.tfd_split` for the indices of one split.

Memory: the faces are pre-aligned crops in one file, so there is nothing to decode or detect per
item and TFD is not streamed (``--stream`` does not apply); only the kept images are held. When
``images`` is stored uncompressed (``savemat``'s default, MATLAB ``-v6``), it is memory-mapped
(:func:`mapped_images`) and only the kept rows are read, never all N x S x S; a compressed file
(MATLAB's ``-v7`` default) must be inflated whole by scipy, once, and its kept rows copied out.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from captum_fau._utils.validate import int_at_least
from captum_fau.data.base import FaceSet
from captum_fau.data.faces import resize_stack
from captum_fau.errors import ConfigError, DatasetError, DatasetLayoutError, LabelError

#: TFD expression order (``labs_ex`` 1..7).
TFD_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral")
TFD_FILES = {96: "TFD_96x96.mat", 48: "TFD_48x48.mat"}
REQUIRED_KEYS = ("images", "labs_ex", "labs_id", "folds")


def _resolve(path: Path, size: int) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        preferred = [TFD_FILES[size]] if size in TFD_FILES else []
        for name in preferred + [TFD_FILES[96], TFD_FILES[48]]:
            if (path / name).is_file():
                return path / name
        raise DatasetLayoutError(
            f"{path} holds neither TFD_96x96.mat nor TFD_48x48.mat; point to the folder with the TFD .mat "
            "files or to one of them."
        )
    raise DatasetLayoutError(
        f"TFD file {path} does not exist; expected TFD_96x96.mat or TFD_48x48.mat (or their folder)."
    )


def mapped_images(mat_path: str | os.PathLike[str]) -> np.ndarray | None:
    """``images`` of a MATLAB v5 file as a read-only memory map (MATLAB's column-major layout), or ``None``
    when it is stored compressed (MATLAB's ``-v7`` default) or not as uint8, so it cannot be mapped.

    Examples::

        >>> import os, tempfile
        >>> from scipy.io import savemat
        >>> path = os.path.join(tempfile.mkdtemp(), "TFD_96x96.mat")
        >>> savemat(path, {"images": np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)})
        >>> mapped = mapped_images(path)
        >>> mapped.shape, int(mapped[1, 0, 1])
        ((2, 4, 4), 17)
    """
    from scipy.io.matlab._mio5 import MatFile5Reader  # the header parser loadmat uses

    mi_uint8, mi_compressed, mx_uint8 = 2, 15, 9
    try:
        with open(mat_path, "rb") as handle:
            reader = MatFile5Reader(handle)
            reader.initialize_read()
            if reader.byte_order != "<":
                return None
            handle.seek(128)
            size = os.fstat(handle.fileno()).st_size
            while handle.tell() < size:
                start = handle.tell()
                tag = np.frombuffer(handle.read(8), "<u4")
                handle.seek(start)
                header, following = reader.read_var_header()
                if header.name == b"images":
                    if tag[0] == mi_compressed or header.mclass != mx_uint8 or getattr(header, "is_complex", False):
                        return None
                    data = handle.tell()
                    dtype, nbytes = np.frombuffer(handle.read(8), "<u4")
                    if dtype != mi_uint8 or nbytes != int(np.prod(header.dims)):
                        return None
                    return np.memmap(mat_path, np.uint8, "r", offset=data + 8, shape=tuple(int(d) for d in header.dims),
                                     order="F")  # fmt: skip
                handle.seek(following)
    except Exception:  # noqa: BLE001 - not mappable: loadmat reads it (and reports what is wrong)
        return None
    return None


def _read_mat(mat_path: Path, images: bool = True) -> dict[str, np.ndarray]:
    """The TFD variables of a MATLAB file (without ``images`` when not ``images``); DatasetLayoutError when
    it is unreadable or lacks one."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    names = REQUIRED_KEYS if images else tuple(k for k in REQUIRED_KEYS if k != "images")
    try:
        mat = loadmat(mat_path, variable_names=names)
    except NotImplementedError as err:  # MATLAB v7.3 files are HDF5
        raise DatasetLayoutError(
            f"{mat_path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; re-save it in MATLAB with "
            "save(..., '-v7')."
        ) from err
    except (MatReadError, ValueError, OSError, IndexError, TypeError, EOFError) as err:
        # scipy's parser fails on garbage with whichever error the broken header triggers.
        raise DatasetLayoutError(f"{mat_path} is not a readable MATLAB .mat file ({err}).") from err
    missing = [key for key in names if key not in mat]
    if missing:
        raise DatasetLayoutError(
            f"{mat_path} lacks the variable(s) {missing}; a TFD file holds images, labs_ex, labs_id and folds."
        )
    return mat


def _checked_arrays(
    mat: dict[str, np.ndarray], mat_path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``images (N, H, W), labs_ex (N,), labs_id (N,), folds (N, splits)`` with MATLAB's transposed
    layouts undone; raise when shapes disagree or values are outside TFD's codes."""
    labs_ex = np.asarray(mat["labs_ex"]).reshape(-1).astype(np.int64)
    labs_id = np.asarray(mat["labs_id"]).reshape(-1).astype(np.int64)
    folds = np.asarray(mat["folds"]).astype(np.int64)
    count = len(labs_ex)
    images = np.asarray(mat["images"])
    if images.ndim != 3:
        raise DatasetLayoutError(f"{mat_path}: 'images' must be (N, H, W), got shape {images.shape}.")
    if images.shape[0] != count and images.shape[2] == count:
        images = np.moveaxis(images, 2, 0)  # stored (H, W, N), MATLAB's usual order
    if images.shape[0] != count or len(labs_id) != count:
        raise LabelError(
            f"{mat_path}: images {images.shape}, labs_ex {count} and labs_id {len(labs_id)} disagree on N."
        )
    if folds.ndim != 2 or folds.shape[0] != count:
        if folds.ndim == 2 and folds.shape[1] == count:
            folds = folds.T
        else:
            raise LabelError(f"{mat_path}: 'folds' must be (N, 5) with N = {count}, got {folds.shape}.")
    bad_labels = sorted(set(np.unique(labs_ex).tolist()) - {-1, 1, 2, 3, 4, 5, 6, 7})
    if bad_labels:
        raise LabelError(f"{mat_path}: 'labs_ex' holds {bad_labels[:5]}; TFD labels are 1..7 and -1 (unlabelled).")
    bad_codes = sorted(set(np.unique(folds).tolist()) - {0, 1, 2, 3})
    if bad_codes:
        raise LabelError(
            f"{mat_path}: 'folds' holds {bad_codes[:5]}; TFD split codes are 0 unused, 1 train, 2 valid, 3 test."
        )
    return images, labs_ex, labs_id, folds


def load_tfd(
    path: str | os.PathLike[str],
    *,
    fold: int | None = None,
    size: int = 96,
    labelled_only: bool = True,
) -> FaceSet:
    """Load TFD with its five train/valid/test splits.

    Args:
        path (str or Path): ``TFD_96x96.mat`` / ``TFD_48x48.mat``, or the folder holding them
            (the file matching ``size`` is preferred).
        fold (int, optional): Keep only the images used by split ``fold`` (0..4). Default: all.
        size (int, optional): Side of the returned images; resized when it differs from the
            file's. Default: 96
        labelled_only (bool, optional): Drop the images without an expression label
            (``labs_ex == -1``). Default: True

    Returns:
        FaceSet: ``name`` ``"tfd"``, classes :data:`TFD_CLASSES`, ``subjects`` = ``labs_id``,
        ``folds`` = the ``[N, 5]`` split codes, ``names`` ``"TFD#<row>"``.

    Raises:
        DatasetLayoutError: the file is missing, not a MATLAB file, or lacks a variable.
        LabelError: labels or split codes are outside their documented values.

    Examples::

        >>> import os, tempfile, numpy as np
        >>> from scipy.io import savemat
        >>> from captum_fau.data.folds import tfd_split
        >>> path = os.path.join(tempfile.mkdtemp(), "TFD_96x96.mat")
        >>> savemat(path, {"images": np.zeros((4, 96, 96), np.uint8), "labs_ex": [[4], [7], [-1], [1]],
        ...                "labs_id": [[1], [1], [2], [2]], "folds": [[1] * 5, [2] * 5, [0] * 5, [3] * 5]})
        >>> faces = load_tfd(path)
        >>> len(faces), faces.class_names[int(faces.emotions[0])]
        (3, 'happy')
        >>> [idx.tolist() for idx in tfd_split(faces, 0)]
        [[0], [1], [2]]
    """
    int_at_least(size, "size", 8, hint="give the image side in pixels (TFD is 96 or 48).")
    mat_path = _resolve(Path(path).expanduser(), int(size))
    mapped = mapped_images(mat_path)  # uncompressed files: read only the kept rows, never all N x S x S
    mat = _read_mat(mat_path, images=mapped is None)
    if mapped is not None:
        mat["images"] = mapped
    images, labs_ex, labs_id, folds = _checked_arrays(mat, mat_path)
    count = len(labs_ex)

    if fold is not None and not 0 <= fold < folds.shape[1]:
        raise ConfigError(f"fold must be in 0..{folds.shape[1] - 1} for {mat_path.name}, got {fold}.")

    keep = np.ones(count, bool)
    if labelled_only:
        keep &= labs_ex != -1
    if fold is not None:
        keep &= folds[:, fold] != 0
    index = np.flatnonzero(keep)
    if len(index) == 0:
        raise DatasetError(f"{mat_path}: no image is left (labelled_only={labelled_only}, fold={fold}).")

    picked = np.ascontiguousarray(images[index]) if len(index) < count or not images.flags.c_contiguous else images
    if picked.dtype != np.uint8:
        scale = 255.0 if picked.max() <= 1.0 else 1.0
        picked = np.clip(np.rint(picked.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    picked = resize_stack(picked, int(size))
    emotions = np.where(labs_ex[index] > 0, labs_ex[index] - 1, -1)
    return FaceSet(
        images=picked,
        class_names=TFD_CLASSES,
        emotions=emotions,
        subjects=labs_id[index],
        folds=folds[index],
        names=np.array([f"TFD#{i}" for i in index]),
        name="tfd",
        meta={
            "source": str(mat_path),
            "fold": fold,
            "labelled_only": labelled_only,
            "split_codes": {"unused": 0, "train": 1, "valid": 2, "test": 3},
            "skipped": [],
        },
    )


__all__ = ["TFD_CLASSES", "load_tfd"]
