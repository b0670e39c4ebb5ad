"""FER2013 from ``fer2013.csv``.

Columns ``emotion`` (0..6: anger, disgust, fear, happy, sadness, surprise,
neutral), ``pixels`` (2304 space-separated grey values of a 48x48 face) and
``Usage`` (``Training``, ``PublicTest``, ``PrivateTest``). Variants of the file
with spaces around the column names, or without ``emotion`` / ``Usage``
(Kaggle's ``test.csv``), are read too.

``Usage`` becomes ``[N, 1]`` split codes like TFD's (1 train, 2 valid =
PublicTest, 3 test = PrivateTest), so :func:`captum_fau.data.folds.tfd_split`
with ``fold=0`` gives the standard split.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from captum_fau._utils.validate import int_at_least
from captum_fau.data.base import FaceSet
from captum_fau.data.faces import resize_stack, warn_skipped
from captum_fau.errors import DatasetError, DatasetLayoutError

#: FER2013 class order (``emotion`` 0..6).
FER2013_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral")
#: ``Usage`` -> split code.
USAGE_CODES = {"Training": 1, "PublicTest": 2, "PrivateTest": 3}
FER_SIDE = 48


@dataclass
class _Rows:
    """The readable rows of a FER2013 CSV and what was dropped."""

    has_emotion: bool
    has_usage: bool
    images: list[np.ndarray] = field(default_factory=list)
    emotions: list[int] = field(default_factory=list)
    usage: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    count: int = 0


def _parse_row(
    row: list[str], pixel_col: int, emotion_col: int | None, usage_col: int | None
) -> tuple[np.ndarray, int, str] | str:
    """``(48x48 image, emotion or -1, Usage or "")`` of one CSV row, or why it is dropped."""
    try:
        values = np.array(row[pixel_col].split(), dtype=np.int64)
    except (ValueError, IndexError):
        return "malformed pixels"
    if values.size != FER_SIDE * FER_SIDE or values.min(initial=0) < 0 or values.max(initial=0) > 255:
        return f"expected 2304 pixel values 0..255, got {values.size}"
    label = -1
    if emotion_col is not None:
        text = row[emotion_col].strip() if emotion_col < len(row) else ""
        if not text.isdigit() or int(text) > 6:
            return f"emotion {text!r} is not 0..6"
        label = int(text)
    split = ""
    if usage_col is not None:
        split = row[usage_col].strip() if usage_col < len(row) else ""
        if split not in USAGE_CODES:
            return f"Usage {split!r} is not one of {sorted(USAGE_CODES)}"
    return values.astype(np.uint8).reshape(FER_SIDE, FER_SIDE), label, split


def _read_rows(path: Path, progress: bool) -> _Rows:
    """Every row of the CSV at ``path``, parsed; raise DatasetLayoutError without a ``pixels`` column."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [column.strip() for column in next(reader, [])]
        if "pixels" not in header:
            raise DatasetLayoutError(
                f"{path} has columns {header[:8]}; FER2013 needs 'pixels' (and 'emotion', 'Usage')."
            )
        pixel_col = header.index("pixels")
        emotion_col = header.index("emotion") if "emotion" in header else None
        usage_col = header.index("Usage") if "Usage" in header else None
        rows = _Rows(has_emotion=emotion_col is not None, has_usage=usage_col is not None)
        for row_number, row in enumerate(tqdm(reader, desc="FER2013 rows", disable=not progress, leave=False), 2):
            if not row:
                continue
            rows.count += 1
            parsed = _parse_row(row, pixel_col, emotion_col, usage_col)
            if isinstance(parsed, str):
                rows.skipped.append({"file": f"{path.name}:{row_number}", "reason": parsed})
                continue
            image, label, split = parsed
            rows.images.append(image)
            rows.emotions.append(label)
            rows.usage.append(split)
            rows.names.append(f"fer2013#{row_number - 2}")
    return rows


def load_fer2013(
    csv_path: str | os.PathLike[str],
    *,
    size: int | None = None,
    progress: bool = True,
) -> FaceSet:
    """Load FER2013.

    Args:
        csv_path (str or Path): ``fer2013.csv``, or the folder holding it.
        size (int, optional): Resize the 48x48 faces to ``size`` (96 for the zero-bias CNN).
            Default: keep 48.
        progress (bool, optional): Show a progress bar. Default: True

    Returns:
        FaceSet: ``name`` ``"fer2013"``, classes :data:`FER2013_CLASSES`, ``folds`` ``[N, 1]``
        split codes (when ``Usage`` exists), ``meta["usage"]`` the raw ``Usage`` strings,
        ``names`` ``"fer2013#<row>"``.

    Raises:
        DatasetLayoutError: the file is missing or has no ``pixels`` column.
        DatasetError: no row could be read.

    Rows with the wrong number of pixels, non-numeric values, an unknown emotion
    or ``Usage`` are dropped and reported in one warning.

    Examples::

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "fer2013.csv")
        >>> pixels = " ".join(["128"] * 48 * 48)
        >>> _ = open(path, "w").write(f"emotion,pixels,Usage\\n3,{pixels},Training\\n6,{pixels},PrivateTest\\n")
        >>> faces = load_fer2013(path, size=96, progress=False)
        >>> faces.images.shape, [faces.class_names[e] for e in faces.emotions], faces.folds[:, 0].tolist()
        ((2, 96, 96), ['happy', 'neutral'], [1, 3])
    """
    path = Path(csv_path).expanduser()
    if path.is_dir():
        path = path / "fer2013.csv"
    if not path.is_file():
        raise DatasetLayoutError(
            f"FER2013 file {path} does not exist; expected fer2013.csv with columns emotion, pixels, Usage."
        )
    if size is not None:
        int_at_least(size, "size", 8, hint="give the image side in pixels, or None for FER2013's 48.")

    rows = _read_rows(path, progress)
    warn_skipped("FER2013", rows.skipped, rows.count)
    if not rows.images:
        raise DatasetError(f"{path}: no readable FER2013 row among {rows.count}.")

    stack = np.stack(rows.images)
    if size is not None:
        stack = resize_stack(stack, int(size))
    meta: dict[str, Any] = {"source": str(path), "skipped": rows.skipped, "usage": np.array(rows.usage)}
    return FaceSet(
        images=stack,
        class_names=FER2013_CLASSES,
        emotions=np.array(rows.emotions, np.int64) if rows.has_emotion else None,
        folds=np.array([[USAGE_CODES[u]] for u in rows.usage], np.int64) if rows.has_usage else None,
        names=np.array(rows.names),
        name="fer2013",
        meta=meta,
    )


__all__ = ["FER2013_CLASSES", "USAGE_CODES", "load_fer2013"]
