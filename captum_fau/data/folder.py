"""Your own images: a folder of pictures, a labels CSV, and AU labels from OpenFace or py-feat.

* Images: every ``.png .jpg .jpeg .bmp .tif .tiff .pgm .ppm .webp`` under the
  root (recursively), in sorted order, turned upright by their EXIF orientation tag
  (phone photos; :mod:`captum_fau.data.exif`).
* Faces (``face_crop``, ``--face-crop``): ``"none"`` takes each image's centred square (images
  that are already face crops); ``"haar"`` detects faces with OpenCV's bundled Haar cascade
  under general settings (:meth:`~captum_fau.data.faces.HaarFaceDetector.general`: faces 5-100%
  of the shorter side, not CK+'s 50-80%) and drops images without a face; ``"auto"`` (the
  default) detects too, but keeps an image whole when it is small and square
  (shorter side <= 256 px, aspect <= 1.25) and either no face is found or a single face
  fills it (side >= 50% of the image's), as pre-cropped faces are. A photo with several
  faces gives one item per face, named ``photo.jpg#face1``, ``photo.jpg#face2`` (left to
  right); the items share the photo's emotion/subject labels, and their AUs are NaN (a
  per-image AU row cannot say which face it describes). What was dropped, and why, is
  warned and recorded in ``FaceSet.meta["face_crop"]``; when most images show no face
  the folder is refused (:class:`~captum_fau.errors.DatasetLayoutError`).
* Class names stay names: a labels CSV or class subfolders named after emotions keep
  those names (sorted), and accuracy maps them to a model's classes by name
  (:class:`~captum_fau.inputs.classes.ClassMapping`), never by index.
* Emotions: a labels CSV with a file column (``file``, ``filename``,
  ``image``, ``path``, ``name`` or ``input``) and optional ``emotion`` /
  ``label``, ``subject``, ``sequence``, ``fold`` columns. Without a CSV,
  images in class subfolders (``ROOT/happy/x.png``) are labelled by folder.
* Action units (``au_csv``):

  - **OpenFace 2.0**: ``AU01_r`` (intensity 0..5) and ``AU01_c`` (presence 0/1)
    columns, either one CSV with a file column or a folder of per-image CSVs
    named after the images (``FaceLandmarkImg`` output). An AU counts as present
    when ``_c`` is 1; its value is then ``max(_r, 1)`` (FACS A = 1). Rows with
    ``success == 0`` are ignored; with several faces the most confident row wins.
  - **py-feat**: ``AU01``... columns holding probabilities (presence =
    ``value >= au_threshold``, stored as 1) or, when a column exceeds 1,
    intensities 0..5; the file column is ``input``; several faces -> the highest
    ``FaceScore``.

  Images are matched to rows by relative path, then file name, then file stem.
  Images without an AU row get NaN ("not coded").
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau.data.au import au_number, parse_au
from captum_fau.data.base import FaceSet
from captum_fau.data.cache import ArrayCache, cache_key, file_fingerprints
from captum_fau.data.faces import (
    announce_cache,
    FaceDetector,
    HaarFaceDetector,
    OneFace,
    centre_square,
    check_image_files,
    file_faces,
    preprocess_faces,
    status_reasons,
    warn_skipped,
)
from captum_fau.data import lazy as lazy_module
from captum_fau.data.lazy import LazyFaceSet, index_faces, should_stream
from captum_fau.errors import ConfigError, DatasetLayoutError, LabelError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"})
FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_path", "path", "name", "input")
EMOTION_COLUMNS = ("emotion", "label", "expression", "class")
SUBJECT_COLUMNS = ("subject", "subject_id", "identity", "person")
SEQUENCE_COLUMNS = ("sequence", "sequence_id", "video")
FOLD_COLUMNS = ("fold",)
AU_FORMATS = ("auto", "openface", "pyfeat")
#: ``face_crop`` modes of :func:`load_folder` (``--face-crop``).
FACE_CROPS = ("auto", "haar", "none")
#: ``auto`` keeps an image whole when its shorter side is at most this many pixels ...
AUTO_WHOLE_MAX_SIDE = 256
#: ... its longer side is at most this many times the shorter ...
AUTO_WHOLE_MAX_ASPECT = 1.25
#: ... and no face is found, or one face whose side is at least this share of the shorter side.
AUTO_FILL_FRACTION = 0.5

_OPENFACE_AU = re.compile(r"^AU(\d+)_([rc])$", re.IGNORECASE)
_PYFEAT_AU = re.compile(r"^AU(\d+)$", re.IGNORECASE)


@dataclass
class AUTable:
    """AU labels read from a CSV, one row per image key.

    Attributes:
        keys (list of str): File names / paths / stems the rows belong to.
        au_ids (tuple of str): AU identifiers, FACS order.
        values (np.ndarray): ``[M, J]`` float32 (0 absent, 1..5 intensity, NaN not coded).
        format (str): ``"openface"`` or ``"pyfeat"``.
    """

    keys: list[str]
    au_ids: tuple[str, ...]
    values: np.ndarray
    format: str


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError) as err:
        raise LabelError(f"cannot read the CSV file {path}: {err}.") from err
    if not rows:
        raise LabelError(f"{path} is empty; expected a header row and one row per image.")
    return [column.strip() for column in rows[0]], rows[1:]


def _find_column(header: Sequence[str], candidates: Sequence[str]) -> int | None:
    lowered = [column.lower() for column in header]
    for name in candidates:
        if name in lowered:
            return lowered.index(name)
    return None


def _number(cell: str, column: str, where: str) -> float:
    text = cell.strip()
    if text == "" or text.lower() in ("nan", "na", "none"):
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise LabelError(f"{where}: column {column!r} holds {text!r}, not a number.") from None


def _au_columns(header: Sequence[str], au_format: str, path: Path) -> tuple[str, dict[str, dict[str, int]]]:
    """Detect the format and map AU id -> {"r": col, "c": col} (OpenFace) or {"p": col} (py-feat)."""
    openface = {i: m for i, m in enumerate(_OPENFACE_AU.match(h) for h in header) if m}
    pyfeat = {i: m for i, m in enumerate(_PYFEAT_AU.match(h) for h in header) if m}
    if au_format == "auto":
        if openface:
            au_format = "openface"
        elif pyfeat:
            au_format = "pyfeat"
        else:
            raise LabelError(
                f"{path} has no AU columns (found {list(header)[:10]}...); expected OpenFace 'AU01_r'/'AU01_c' "
                "or py-feat 'AU01' columns."
            )
    chosen, other = (openface, pyfeat) if au_format == "openface" else (pyfeat, openface)
    if not chosen:
        raise LabelError(f"{path} has no {au_format} AU columns; pass au_format='auto' or the other format.")
    if other:
        column = header[next(iter(other))]
        raise LabelError(
            f"{path}: column {column!r} does not fit the {au_format} AU columns of the same file "
            "(OpenFace writes 'AU01_r'/'AU01_c', py-feat 'AU01'); remove or rename it."
        )
    columns: dict[str, dict[str, int]] = {}
    for index, match in chosen.items():
        try:
            au = parse_au(int(match.group(1)))
        except LabelError as err:
            raise LabelError(f"{path}: column {header[index]!r} is not a FACS action unit: {err}") from None
        kind = match.group(2).lower() if au_format == "openface" else "p"
        if kind in columns.setdefault(au, {}):
            raise LabelError(
                f"{path}: columns {header[columns[au][kind]]!r} and {header[index]!r} both hold {au}; keep one."
            )
        columns[au][kind] = index
    return au_format, columns


def _au_values(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    au_format: str,
    columns: dict[str, dict[str, int]],
    threshold: float,
    path: Path,
) -> tuple[tuple[str, ...], np.ndarray]:
    au_ids = tuple(sorted(columns, key=lambda a: (au_number(a), a)))
    raw = {
        index: np.array(
            [_number(row[index] if index < len(row) else "", header[index], f"{path}:{r + 2}") for r, row in enumerate(rows)],
            np.float64,
        )
        for spec in columns.values()
        for index in spec.values()
    }
    for index, column in raw.items():
        if np.isinf(column).any():
            row = int(np.flatnonzero(np.isinf(column))[0]) + 2
            raise LabelError(f"{path}:{row}: column {header[index]!r} holds an infinite value; AU labels are finite "
                             "(0 absent, 1..5 intensity, empty or NaN for not coded).")  # fmt: skip
        if np.nanmin(column, initial=0.0) < 0:
            raise LabelError(f"{path}: column {header[index]!r} holds negative values; AU labels are >= 0.")
    values = np.zeros((len(rows), len(au_ids)), np.float64)
    for j, au in enumerate(au_ids):
        spec = columns[au]
        if au_format == "openface":
            presence = raw[spec["c"]] if "c" in spec else None
            intensity = raw[spec["r"]] if "r" in spec else None
            if presence is not None and not np.isin(presence[~np.isnan(presence)], (0.0, 1.0)).all():
                raise LabelError(f"{path}: column {header[spec['c']]!r} must hold 0 or 1 (OpenFace presence).")
            if intensity is not None and np.nanmax(intensity, initial=0.0) > 5:
                raise LabelError(f"{path}: column {header[spec['r']]!r} exceeds 5 (OpenFace intensities are 0..5).")
            if presence is not None and intensity is not None:
                values[:, j] = np.where(presence > 0, np.maximum(intensity, 1.0), 0.0)
                values[np.isnan(presence), j] = np.nan
            elif presence is not None:
                values[:, j] = presence
            else:
                values[:, j] = intensity  # type: ignore[assignment]
        else:
            column = raw[spec["p"]]
            if np.nanmax(column, initial=0.0) <= 1.0:
                values[:, j] = np.where(np.isnan(column), np.nan, (column >= threshold).astype(np.float64))
            elif np.nanmax(column) <= 5:
                values[:, j] = column
            else:
                raise LabelError(
                    f"{path}: column {header[spec['p']]!r} exceeds 5; py-feat AU columns hold probabilities "
                    "0..1 or intensities 0..5."
                )
    return au_ids, values.astype(np.float32)


def _best_rows(keys: Sequence[str], header: Sequence[str], rows: Sequence[Sequence[str]], path: Path) -> list[int]:
    """One row per key: drop OpenFace failures, keep the most confident face."""
    success = _find_column(header, ("success",))
    score = _find_column(header, ("confidence", "facescore"))
    best: dict[str, tuple[float, int]] = {}
    for r, (key, row) in enumerate(zip(keys, rows)):
        if success is not None and _number(row[success] if success < len(row) else "", "success", f"{path}:{r + 2}") == 0:
            continue
        value = _number(row[score], header[score], f"{path}:{r + 2}") if score is not None and score < len(row) else 0.0
        value = -np.inf if np.isnan(value) else value
        if key not in best or value > best[key][0]:
            best[key] = (value, r)
    return [r for _, r in best.values()]


def read_au_csv(
    path: str | os.PathLike[str], au_format: str = "auto", *, threshold: float = 0.5
) -> AUTable:
    """Read AU labels from an OpenFace 2.0 or py-feat CSV, or a folder of per-image OpenFace CSVs.

    Args:
        path (str or Path): One CSV with a file column (``file``, ``filename``, ``image``,
            ``path``, ``name``, ``input``), or a folder of ``<image stem>.csv`` files.
        au_format (str, optional): ``"auto"``, ``"openface"`` or ``"pyfeat"``. Default: ``"auto"``
        threshold (float, optional): Presence threshold for py-feat probabilities. Default: 0.5

    Returns:
        AUTable: keys, AU ids and ``[M, J]`` values.

    Raises:
        LabelError: no AU columns, a column that does not fit the format, non-numeric or
            out-of-range values, or per-image files whose AU columns differ; the message
            names the column.
        DatasetLayoutError: ``path`` does not exist.

    Examples::

        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "aus.csv")
        >>> _ = open(path, "w").write("input,AU01,AU12\\na.png,0.9,0.1\\n")
        >>> table = read_au_csv(path)
        >>> table.format, table.au_ids, table.values.tolist()
        ('pyfeat', ('AU1', 'AU12'), [[1.0, 0.0]])
    """
    if au_format not in AU_FORMATS:
        raise ConfigError(f"au_format must be one of {AU_FORMATS}, got {au_format!r}.")
    source = Path(path).expanduser()
    if source.is_dir():
        files = sorted(source.glob("*.csv"))
        if not files:
            raise DatasetLayoutError(f"{source} holds no .csv files; expected one OpenFace CSV per image.")
        keys: list[str] = []
        blocks: list[np.ndarray] = []
        au_ids: tuple[str, ...] | None = None
        reference = files[0]
        fmt = au_format
        for file in files:
            header, rows = _read_csv(file)
            fmt, columns = _au_columns(header, au_format, file)
            ids, values = _au_values(header, rows, fmt, columns, threshold, file)
            if au_ids is not None and ids != au_ids:
                differing = sorted(set(ids) ^ set(au_ids), key=lambda a: (au_number(a), a))
                raise LabelError(
                    f"{file}: AU column {differing[0]!r} is present in only one of {file.name} and {reference.name}; "
                    "per-image AU files must share their AU columns."
                )
            au_ids = ids
            picked = _best_rows([file.stem] * len(rows), header, rows, file)
            if picked:
                keys.append(file.stem)
                blocks.append(values[picked[0]])
        return AUTable(keys, au_ids or (), np.array(blocks, np.float32).reshape(len(keys), len(au_ids or ())), fmt)
    if not source.is_file():
        raise DatasetLayoutError(f"AU file {source} does not exist; expected an OpenFace or py-feat CSV, or a folder of them.")
    header, rows = _read_csv(source)
    fmt, columns = _au_columns(header, au_format, source)
    file_col = _find_column(header, FILE_COLUMNS)
    if file_col is None:
        raise LabelError(
            f"{source} has no file-name column to match rows to images; add one named one of {FILE_COLUMNS}, "
            "or pass a folder of per-image CSVs named after the images."
        )
    ids, values = _au_values(header, rows, fmt, columns, threshold, source)
    row_keys = [row[file_col].strip() if file_col < len(row) else "" for row in rows]
    picked = sorted(_best_rows(row_keys, header, rows, source))
    return AUTable([row_keys[r] for r in picked], ids, values[picked], fmt)


class _ImageIndex:
    """Matches CSV entries to image files: relative path, then file name, then stem."""

    def __init__(self, root: Path, relative: Sequence[str]) -> None:
        self.root = root
        self.by_path = {rel: i for i, rel in enumerate(relative)}
        self.by_name: dict[str, list[int]] = {}
        self.by_stem: dict[str, list[int]] = {}
        for i, rel in enumerate(relative):
            self.by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(i)
            self.by_stem.setdefault(Path(rel).stem, []).append(i)

    def find(self, entry: str, where: str) -> int | None:
        text = entry.strip().replace("\\", "/")
        if text.startswith("./"):
            text = text[2:]
        candidate = Path(text)
        if candidate.is_absolute():
            try:
                text = candidate.resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                text = candidate.name
        if text in self.by_path:
            return self.by_path[text]
        for table, key in ((self.by_name, text.rsplit("/", 1)[-1]), (self.by_stem, Path(text).stem)):
            hits = table.get(key, [])
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise LabelError(
                    f"{where}: {entry!r} matches {len(hits)} images in different subfolders; write the path "
                    "relative to the image folder instead."
                )
        return None


def _class_index(values: Sequence[str], class_names: Sequence[str] | None, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    present = [v.strip() for v in values]
    labelled = [v for v in present if v not in ("", "-1")]
    integers = all(re.fullmatch(r"\d+(\.0*)?", v) for v in labelled)
    if class_names is None:
        if integers:
            top = max((int(float(v)) for v in labelled), default=-1)
            class_names = tuple(str(i) for i in range(top + 1))
        else:
            class_names = tuple(sorted(set(labelled)))
    names = tuple(class_names)
    lookup = {name.lower(): i for i, name in enumerate(names)}
    out = np.full(len(present), -1, np.int64)
    for i, value in enumerate(present):
        if value in ("", "-1"):
            continue
        if integers:
            index = int(float(value))
            if index >= len(names):
                raise LabelError(f"{where}: emotion {value} is outside 0..{len(names) - 1} for classes {names}.")
            out[i] = index
        elif value.lower() in lookup:
            out[i] = lookup[value.lower()]
        else:
            raise LabelError(f"{where}: emotion {value!r} is not one of the classes {names}; pass class_names.")
    return out, names


def _list_images(root: Path) -> list[str]:
    """The images under ``root`` (recursively, hidden entries excluded) as sorted relative paths."""
    if not root.is_dir():
        raise DatasetLayoutError(
            f"image folder {root} does not exist; expected a folder of images (optionally ROOT/labels.csv "
            "or class subfolders ROOT/<class>/*.png)."
        )
    relative = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not relative:
        raise DatasetLayoutError(
            f"{root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); expected a folder of face images."
        )
    return relative


@dataclass
class _FolderLabels:
    """Per-image labels of a folder; ``None`` where the source has no such column."""

    class_names: tuple[str, ...]
    emotions: np.ndarray | None = None
    subjects: np.ndarray | None = None
    sequences: np.ndarray | None = None
    folds: np.ndarray | None = None


def _read_labels_csv(
    labels_path: Path, index: _ImageIndex, count: int, class_names: Sequence[str] | None, skipped: list[dict[str, str]]
) -> _FolderLabels:
    """Labels from a CSV with a file column; rows naming no image are added to ``skipped``."""
    if not labels_path.is_file():
        raise DatasetLayoutError(f"labels file {labels_path} does not exist; expected a CSV with a file column.")
    header, rows = _read_csv(labels_path)
    file_col = _find_column(header, FILE_COLUMNS)
    if file_col is None:
        raise LabelError(f"{labels_path} has no file column; name one of its columns one of {FILE_COLUMNS}.")
    row_of_image: dict[int, int] = {}
    for r, row in enumerate(rows):
        entry = row[file_col] if file_col < len(row) else ""
        hit = index.find(entry, f"{labels_path}:{r + 2}")
        if hit is None:
            skipped.append({"file": entry or f"{labels_path.name}:{r + 2}", "reason": "labels row names no image"})
        else:
            row_of_image[hit] = r

    def column(candidates: Sequence[str]) -> list[str] | None:
        col = _find_column(header, candidates)
        if col is None:
            return None
        out = [""] * count
        for image, r in row_of_image.items():
            out[image] = rows[r][col] if col < len(rows[r]) else ""
        return out

    labels = _FolderLabels(tuple(class_names) if class_names is not None else ())
    emotion_values = column(EMOTION_COLUMNS)
    if emotion_values is not None:
        labels.emotions, labels.class_names = _class_index(emotion_values, class_names, str(labels_path))
    subject_values = column(SUBJECT_COLUMNS)
    labels.subjects = np.array([s.strip() for s in subject_values]) if subject_values is not None else None
    sequence_values = column(SEQUENCE_COLUMNS)
    labels.sequences = np.array([s.strip() for s in sequence_values]) if sequence_values is not None else None
    fold_values = column(FOLD_COLUMNS)
    if fold_values is not None:
        numbers = np.array([_number(v, "fold", str(labels_path)) for v in fold_values])
        labels.folds = np.where(np.isnan(numbers), -1, numbers).astype(np.int64)
    return labels


def _subfolder_labels(root: Path, relative: Sequence[str], class_names: Sequence[str] | None) -> _FolderLabels:
    """Emotions from class subfolders (``ROOT/<class>/x.png``), when every image sits in one and there are several."""
    labels = _FolderLabels(tuple(class_names) if class_names is not None else ())
    parents = {rel.rsplit("/", 1)[0] if "/" in rel else "" for rel in relative}
    if "" not in parents and all(rel.count("/") == 1 for rel in relative) and len(parents) > 1:
        labels.emotions, labels.class_names = _class_index([rel.split("/")[0] for rel in relative], class_names, str(root))
    return labels


def _folder_aus(
    au_csv: str | os.PathLike[str], au_format: str, au_threshold: float, index: _ImageIndex,
    relative: Sequence[str], skipped: list[dict[str, str]],
) -> tuple[np.ndarray, tuple[str, ...], list[str]]:  # fmt: skip
    """``[images, AUs]`` values (NaN for images without a row), the AU ids, and the images without a row.

    AU rows naming no image are added to ``skipped``.
    """
    table = read_au_csv(au_csv, au_format, threshold=au_threshold)
    aus = np.full((len(relative), len(table.au_ids)), np.nan, np.float32)
    matched = np.zeros(len(relative), bool)
    for key, values in zip(table.keys, table.values):
        hit = index.find(key, str(au_csv))
        if hit is None:
            skipped.append({"file": key, "reason": "AU row names no image"})
        else:
            aus[hit] = values
            matched[hit] = True
    if table.au_ids and matched.any() and np.isnan(aus[matched]).all():
        raise LabelError(
            f"The AU table {au_csv} has rows for {int(matched.sum())} of the {len(relative)} images, but every AU "
            f"value in them is empty or NaN (not coded), so no image has AU labels. Fill its AU columns "
            f"({', '.join(table.au_ids[:6])}{' ...' if len(table.au_ids) > 6 else ''}) with 0 (absent) or 1..5 "
            "(intensity), e.g. from OpenFace's FeatureExtraction -aus or py-feat's detect_image, or drop --au-csv "
            "(au_csv=)."
        )
    missing = [relative[i] for i in np.flatnonzero(~matched)] if table.au_ids else []
    return aus, table.au_ids, missing


def _no_face_message(root: Path, relative: Sequence[str], reasons: Sequence[str | None], mode: str) -> str:
    """Why a folder gave no face item: unreadable files, or images in which the detector finds no face."""
    unreadable = [rel for rel, why in zip(relative, reasons) if why == "unreadable image"]
    faceless = [rel for rel, why in zip(relative, reasons) if why == "no face found"]
    if faceless and not unreadable:
        some = "any" if len(faceless) == len(relative) else f"{len(faceless)}"
        return (f"The face detector found no face in {some} of the {len(relative)} images under {root} (face crop "
                f"{mode}), e.g. {', '.join(faceless[:3])}: they may not show faces (noise, objects, drawings), or show "
                "faces too small, turned or dark for the frontal Haar detector, and what it found in the others is "
                "then likely no face either. Look at a few of them and remove the images without a face (listed in "
                "this message's examples and the note above); pass face_crop='none' (--face-crop none) only if they "
                "are face crops already.")  # fmt: skip
    return (f"No image under {root} gave a face (face crop {mode}): {len(unreadable)} could not be read as images "
            f"(e.g. {', '.join(unreadable[:3])}) and {len(faceless)} show no face the detector finds. Check the "
            "files open in an image viewer; pass face_crop='none' (--face-crop none) if they are face crops already.")


def check_face_crop(face_crop: str) -> str:
    """``face_crop`` if it is one of :data:`FACE_CROPS`.

    Raises:
        ConfigError: any other value.
    """
    if face_crop not in FACE_CROPS:
        raise ConfigError(
            f"face_crop must be one of {FACE_CROPS} (--face-crop): 'none' for images that are already face crops, "
            f"'haar' to detect faces in photos, 'auto' to decide per image; got {face_crop!r}."
        )
    return face_crop


@dataclass
class _Items:
    """Face items of a folder: one per face (several per photo), with the file each came from."""

    images: np.ndarray
    boxes: np.ndarray
    owner: np.ndarray
    whole: np.ndarray
    reasons: list[str | None]
    params: dict[str, Any]
    from_cache: bool = False
    digests: np.ndarray | None = None  # per-item pixel digests of a streaming index (images is then None)


def _small_square(shape: tuple[int, ...]) -> bool:
    short, long = sorted(int(v) for v in shape[:2])
    return short <= AUTO_WHOLE_MAX_SIDE and long <= AUTO_WHOLE_MAX_ASPECT * short


def _faces_of(gray: np.ndarray, mode: str, detector: HaarFaceDetector) -> tuple[np.ndarray, bool]:
    """Boxes to crop from one image and whether it was kept whole (``auto``'s rule, see the module docstring)."""
    boxes = detector.detect_many(gray)
    if mode == "auto" and _small_square(gray.shape):
        fills = len(boxes) == 1 and boxes[0, 2] >= AUTO_FILL_FRACTION * min(gray.shape[:2])
        if len(boxes) == 0 or fills:
            return np.asarray([centre_square(gray.shape)], np.int64), True
    return boxes, False


class FolderFaces:
    """The :class:`~captum_fau.data.faces.FaceFinder` of ``face_crop`` ``"auto"`` / ``"haar"``: every face
    the general-settings detector finds (left to right), or the whole image under ``auto``'s rule.

    Args:
        mode (str): ``"auto"`` or ``"haar"``.
        detector (HaarFaceDetector, optional): Default: :meth:`HaarFaceDetector.general`.
    """

    def __init__(self, mode: str, detector: HaarFaceDetector | None = None) -> None:
        self.mode = mode
        self.detector = detector or HaarFaceDetector.general()
        self.cache_token = f"{mode}:{self.detector.cache_token}"

    def __call__(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, kept_whole = _faces_of(gray, self.mode, self.detector)
        return boxes, np.full(len(boxes), kept_whole)


def _detect_items(
    paths: Sequence[Path], *, size: int, mode: str, interpolation: str, cache_dir: Any, cache: bool, progress: bool
) -> _Items:
    """Every face of every image (``auto`` / ``haar``), cached per file set and settings."""
    from tqdm.auto import tqdm

    detector = HaarFaceDetector.general()
    params = {"size": size, "face_crop": mode, "detector": detector.cache_token, "interpolation": interpolation}
    store = ArrayCache(cache_dir, prefix="folder-faces") if cache else None
    key = cache_key({**params, "files": file_fingerprints(paths)}) if store is not None else ""
    hit = store.load(key) if store is not None else None
    if hit is not None and len(hit.get("status", ())) == len(paths):
        return _Items(hit["images"], hit["boxes"], hit["owner"], hit["whole"].astype(bool), status_reasons(hit["status"]),
                      params, True)  # fmt: skip
    images, boxes, owner, whole = [], [], [], []
    status = np.zeros(len(paths), np.int8)
    finder = FolderFaces(mode, detector)
    for i, path in enumerate(tqdm(paths, desc="folder faces", unit="img", disable=not progress, leave=False)):
        found = file_faces(path, finder, size, interpolation)
        status[i] = found.status
        for box, crop, kept_whole in zip(found.boxes, found.crops, found.whole):
            images.append(crop)
            boxes.append(tuple(int(v) for v in box))
            owner.append(i)
            whole.append(bool(kept_whole))
    arrays = {
        "images": np.stack(images) if images else np.zeros((0, size, size), np.uint8),
        "boxes": np.asarray(boxes, np.int32).reshape(-1, 4),
        "owner": np.asarray(owner, np.int64),
        "whole": np.asarray(whole, np.uint8),
        "status": status,
    }
    if store is not None:
        announce_cache(store.save(key, arrays), progress)
    return _Items(arrays["images"], arrays["boxes"], arrays["owner"], arrays["whole"].astype(bool), status_reasons(status),
                  params)  # fmt: skip


def _face_items(
    paths: Sequence[Path], *, size: int, mode: str, detector: FaceDetector | None, interpolation: str,
    cache_dir: Any, cache: bool, progress: bool,
) -> _Items:  # fmt: skip
    """The face items of ``paths`` under ``mode``; a given ``detector`` finds one face per image."""
    if mode == "none" or detector is not None:
        crops = preprocess_faces(
            paths, size=size, detector=None if mode == "none" else detector, interpolation=interpolation,
            cache_dir=cache_dir, cache=cache, progress=progress, desc="folder faces",
        )  # fmt: skip
        keep = np.flatnonzero(crops.ok)
        return _Items(crops.images[keep], crops.boxes[keep], keep.astype(np.int64), np.full(len(keep), mode == "none"),
                      crops.reasons(), {**crops.params, "face_crop": mode}, crops.from_cache)  # fmt: skip
    return _detect_items(paths, size=size, mode=mode, interpolation=interpolation, cache_dir=cache_dir, cache=cache,
                         progress=progress)  # fmt: skip


def _indexed_items(
    paths: Sequence[Path], *, size: int, mode: str, detector: FaceDetector | None, interpolation: str,
    cache_dir: Any, cache: bool, progress: bool, workers: int | None,
) -> _Items:  # fmt: skip
    """The items :func:`_face_items` gives, without their pixels: the streaming index (same finder, same boxes)."""
    if mode == "none" or detector is not None:
        finder: Any = OneFace(None if mode == "none" else detector)
        params = {"size": size, "detector": finder.cache_token or repr(finder.detector), "interpolation": interpolation,
                  "face_crop": mode}  # fmt: skip
    else:
        finder = FolderFaces(mode)
        params = {"size": size, "face_crop": mode, "detector": finder.detector.cache_token, "interpolation": interpolation}
    index = index_faces(paths, finder, size=size, interpolation=interpolation, cache_dir=cache_dir, cache=cache,
                        workers=workers, progress=progress, desc="folder faces")  # fmt: skip
    return _Items(None, index.boxes, index.owner, index.whole, index.reasons(), params,  # type: ignore[arg-type]
                  index.from_cache, index.digests)  # fmt: skip


def _face_crop_summary(items: _Items, relative: Sequence[str], mode: str) -> dict[str, Any]:
    """What face cropping did, for ``FaceSet.meta["face_crop"]`` and the report."""
    per_file = np.bincount(items.owner, minlength=len(relative)) if len(items.owner) else np.zeros(len(relative), int)
    dropped: dict[str, int] = {}
    for reason in items.reasons:
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
    return {
        "mode": mode,
        "detector": items.params.get("detector"),
        "files": len(relative),
        "items": int(len(items.owner)),
        "files_with_several_faces": int((per_file > 1).sum()),
        "kept_whole": int(items.whole.sum()) if mode != "none" else int(len(items.owner)),
        "dropped": dropped,
        "n_dropped": int(sum(dropped.values())),
    }


def face_crop_note(meta: dict[str, Any]) -> str | None:
    """One sentence on what face cropping of a folder did (``FaceSet.meta``), or None for other data.

    Examples::

        >>> face_crop_note({"face_crop": {"mode": "haar", "files": 3, "items": 2, "files_with_several_faces": 0,
        ...                 "kept_whole": 0, "dropped": {"no face found": 1}, "n_dropped": 1}})
        'Face crop (haar): 2 faces from 3 images; 1 image(s) dropped (1 no face found).'
    """
    info = meta.get("face_crop") if isinstance(meta, dict) else None
    if not isinstance(info, dict):
        return None
    parts = [f"Face crop ({info['mode']}): {info['items']} faces from {info['files']} images"]
    if info.get("files_with_several_faces"):
        parts.append(f"{info['files_with_several_faces']} image(s) with several faces gave one item per face")
    if info["mode"] == "auto" and info.get("kept_whole"):
        parts.append(f"{info['kept_whole']} image(s) kept whole as face crops")
    if info.get("n_dropped"):
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(info["dropped"].items()))
        parts.append(f"{info['n_dropped']} image(s) dropped ({reasons})")
    return "; ".join(parts) + "."


def load_folder(
    root: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str] | None = None,
    *,
    au_csv: str | os.PathLike[str] | None = None,
    au_format: str = "auto",
    au_threshold: float = 0.5,
    size: int = 96,
    face_crop: str = "auto",
    detect_faces: bool | None = None,
    detector: FaceDetector | None = None,
    class_names: Sequence[str] | None = None,
    interpolation: str = "area",
    cache_dir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    progress: bool = True,
    lazy: bool | None = None,
    workers: int | None = None,
) -> FaceSet | LazyFaceSet:
    """Load a folder of face images with optional emotion and AU labels.

    Args:
        root (str or Path): The image folder (searched recursively).
        labels_csv (str or Path, optional): CSV with a file column and ``emotion``/``label``,
            ``subject``, ``sequence``, ``fold`` columns. Default: ``ROOT/labels.csv`` if it
            exists, else class subfolders if the images sit in them, else no emotion labels.
        au_csv (str or Path, optional): OpenFace 2.0 or py-feat AU CSV, or a folder of
            per-image OpenFace CSVs; see :func:`read_au_csv`.
        au_format (str, optional): ``"auto"``, ``"openface"`` or ``"pyfeat"``. Default: ``"auto"``
        au_threshold (float, optional): py-feat presence threshold. Default: 0.5
        size (int, optional): Side of the face crops. Default: 96
        face_crop (str, optional): ``"auto"``, ``"haar"`` or ``"none"`` (see the module
            docstring). Default: ``"auto"``
        detect_faces (bool, optional): Shorthand: False is ``face_crop="none"``, True is
            ``face_crop="haar"``. Default: None (``face_crop`` decides)
        detector (callable, optional): A face detector finding one face per image (then
            ``face_crop`` must not be ``"none"``). Default: :meth:`HaarFaceDetector.general`
            finding every face.
        class_names (sequence of str, optional): Class order. Default: from the labels
            (``"0".."K"`` for integer labels, sorted names otherwise).
        interpolation (str, optional): Resize method. Default: ``"area"``
        cache_dir (str or Path, optional): Crop cache folder.
        cache (bool, optional): Use the crop cache. Default: True
        progress (bool, optional): Show a progress bar. Default: True
        lazy (bool, optional): Return a :class:`~captum_fau.data.lazy.LazyFaceSet` that cuts each face
            item from its file when read, in ``workers`` DataLoader processes (memory flat in the
            number of images), after one index pass that finds the faces (see :mod:`captum_fau.data.lazy`);
            its items equal the FaceSet's. ``None``: stream folders of
            :data:`~captum_fau.data.lazy.STREAM_THRESHOLD` images or more. Default: None
        workers (int, optional): Worker processes of the index pass and of a lazy set's reads.
            Default: the usable cores, at most 8

    Returns:
        FaceSet (or LazyFaceSet): ``name`` ``"folder"``; ``names`` the relative image paths;
        ``emotions`` -1 for images without a label; AU rows NaN for images without an AU row.
        ``meta["boxes"]`` (name -> box) on a FaceSet; ``LazyFaceSet.boxes`` (per item) and
        ``meta["stream"]`` on a lazy set.

    Raises:
        DatasetLayoutError: ``root`` is not a folder or holds no images.
        ImageFormatError: some images are 16-bit or have transparent pixels (checked before
            any face is cropped; the message names the files and the conversion to make).
        LabelError: a CSV lacks its file column, an emotion is unknown, an AU column is
            inconsistent (the message names the column).

    Examples::

        Images in class subfolders, already cropped to the face:

        >>> import os, tempfile, cv2, numpy as np
        >>> root = tempfile.mkdtemp()
        >>> for name in ("happy/a.png", "happy/b.png", "sad/c.png"):
        ...     os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
        ...     _ = cv2.imwrite(os.path.join(root, name), np.full((64, 80), 128, np.uint8))
        >>> faces = load_folder(root, detect_faces=False, cache=False, progress=False)
        >>> faces.class_names, faces.emotions.tolist(), faces.images.shape
        (('happy', 'sad'), [0, 0, 1], (3, 96, 96))

        Photos with a labels CSV and OpenFace AU files:

        >>> faces = load_folder("my_faces/", "my_faces/labels.csv",
        ...                     au_csv="openface_out/")                  # doctest: +SKIP
    """
    root = Path(root).expanduser()
    relative = _list_images(root)
    index = _ImageIndex(root, relative)
    count = len(relative)
    skipped: list[dict[str, str]] = []
    if labels_csv is None and (root / "labels.csv").is_file():
        labels_csv = root / "labels.csv"
    if labels_csv is not None:
        labels = _read_labels_csv(Path(labels_csv).expanduser(), index, count, class_names, skipped)
    else:
        labels = _subfolder_labels(root, relative, class_names)
    aus = None
    au_ids: tuple[str, ...] = ()
    aus_missing: list[str] = []
    if au_csv is not None:
        aus, au_ids, aus_missing = _folder_aus(au_csv, au_format, au_threshold, index, relative, skipped)
        if au_ids and len(aus_missing) == count:  # before the (slow) face crops: nothing would be labelled
            unmatched = [s["file"] for s in skipped if s["reason"] == "AU row names no image"][:3]
            raise LabelError(
                f"No row of the AU table {au_csv} names one of the {count} images under {root} (rows name "
                f"{unmatched}, images are e.g. {list(relative[:3])}). Make its file (or input) column hold the image "
                "paths relative to the folder, or their file names, or pass the AU table made for these images."
            )

    mode = check_face_crop(face_crop) if detect_faces is None else ("haar" if detect_faces else "none")
    paths = [root / rel for rel in relative]
    check_image_files(paths, f"folder {root}")
    streamed = should_stream(lazy, count)
    if streamed:
        items = _indexed_items(paths, size=size, mode=mode, detector=detector, interpolation=interpolation,
                               cache_dir=cache_dir, cache=cache, progress=progress, workers=workers)  # fmt: skip
    else:
        items = _face_items(paths, size=size, mode=mode, detector=detector, interpolation=interpolation,
                            cache_dir=cache_dir, cache=cache, progress=progress)  # fmt: skip
    skipped += [{"file": rel, "reason": why} for rel, why in zip(relative, items.reasons) if why is not None]
    warn_skipped(f"folder {root} (face crop {mode})", skipped, count)
    if aus_missing:
        warnings.warn(
            f"folder {root}: {len(aus_missing)} images have no AU row in {au_csv}; their AUs are NaN (not coded): "
            f"{', '.join(aus_missing[:20])}{' ...' if len(aus_missing) > 20 else ''}.",
            stacklevel=2,
        )
    faceless = sum(why == "no face found" for why in items.reasons)
    if len(items.owner) == 0 or faceless > count / 2:  # mostly no face: what was found is likely not a face either
        raise DatasetLayoutError(_no_face_message(root, relative, items.reasons, mode))
    meta: dict[str, Any] = {
        "source": str(root),
        "labels_csv": None if labels_csv is None else str(labels_csv),
        "au_csv": None if au_csv is None else str(au_csv),
        "preprocessing": dict(items.params),
        "from_cache": items.from_cache,
        "skipped": skipped,
        "aus_missing": aus_missing,
        "face_crop": _face_crop_summary(items, relative, mode),
    }
    return _folder_set(items, relative, paths, labels, aus, au_ids, meta, size=size, interpolation=interpolation,
                       lazy=streamed, why=_why(lazy, count), workers=workers)  # fmt: skip


def _why(lazy: bool | None, files: int) -> str:
    """Why a set is streamed, for ``meta["stream"]`` and the note."""
    if lazy is None:
        return (f"{files} files >= {lazy_module.STREAM_THRESHOLD}, the default threshold; lazy=False / --no-stream "
                "keeps them in memory")
    return "lazy=True / --stream"


def _folder_set(
    items: _Items, relative: Sequence[str], paths: Sequence[Path], labels: _FolderLabels, aus: np.ndarray | None,
    au_ids: tuple[str, ...], meta: dict[str, Any], *, size: int, interpolation: str, lazy: bool, why: str,
    workers: int | None,
) -> FaceSet | LazyFaceSet:  # fmt: skip
    """The FaceSet (or, ``lazy``, the LazyFaceSet) of a folder's face items: names, labels and ``meta`` made
    the same way for both from the items (eager crops or the streaming index)."""
    keep = items.owner
    per_file = np.bincount(keep, minlength=len(relative))
    face_no = np.zeros(len(keep), np.int64)
    for i in range(1, len(keep)):
        face_no[i] = face_no[i - 1] + 1 if keep[i] == keep[i - 1] else 0
    names = np.array([relative[f] + (f"#face{k + 1}" if per_file[f] > 1 else "") for f, k in zip(keep, face_no)])
    pick = lambda a: None if a is None else a[keep]  # noqa: E731
    item_aus = pick(aus)
    if item_aus is not None and (per_file > 1).any():
        item_aus[per_file[keep] > 1] = np.nan  # which face a per-image AU row describes is unknown
    fields: dict[str, Any] = dict(class_names=labels.class_names, emotions=pick(labels.emotions), aus=item_aus,
                                  au_ids=au_ids, subjects=pick(labels.subjects), sequences=pick(labels.sequences),
                                  folds=pick(labels.folds), names=names, name="folder")  # fmt: skip
    if not lazy:
        meta["boxes"] = {str(name): [int(v) for v in box] for name, box in zip(names, items.boxes)}
        return FaceSet(images=items.images, meta=meta, **fields)
    faces = LazyFaceSet(paths, items.owner, items.boxes, items.digests, size=size, interpolation=interpolation,
                        workers=workers, meta=meta, **fields)  # fmt: skip
    faces.meta["stream"] = {"files": len(relative), "items": len(faces), "workers": faces.num_workers, "why": why,
                      "from_cache": items.from_cache}  # fmt: skip
    return faces


__all__ = [
    "AUTO_FILL_FRACTION",
    "AUTO_WHOLE_MAX_ASPECT",
    "AUTO_WHOLE_MAX_SIDE",
    "AUTable",
    "AU_FORMATS",
    "FACE_CROPS",
    "IMAGE_EXTENSIONS",
    "check_face_crop",
    "face_crop_note",
    "load_folder",
    "read_au_csv",
]
