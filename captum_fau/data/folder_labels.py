"""A folder's images and labels: the image listing, a labels CSV or class subfolders, and OpenFace / py-feat AU CSVs.

The formats are described in :mod:`captum_fau.data.folder`, whose :func:`~captum_fau.data.folder.load_folder` reads
them through this module (and re-exports :func:`read_au_csv`, :class:`AUTable` and the column names).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from captum_fau.data.au import au_number, parse_au
from captum_fau.errors import ConfigError, DatasetLayoutError, LabelError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"})
FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_path", "path", "name", "input")
EMOTION_COLUMNS = ("emotion", "label", "expression", "class")
SUBJECT_COLUMNS = ("subject", "subject_id", "identity", "person")
SEQUENCE_COLUMNS = ("sequence", "sequence_id", "video")
FOLD_COLUMNS = ("fold",)
AU_FORMATS = ("auto", "openface", "pyfeat")

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
            [
                _number(row[index] if index < len(row) else "", header[index], f"{path}:{r + 2}")
                for r, row in enumerate(rows)
            ],
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
        if (
            success is not None
            and _number(row[success] if success < len(row) else "", "success", f"{path}:{r + 2}") == 0
        ):
            continue
        value = _number(row[score], header[score], f"{path}:{r + 2}") if score is not None and score < len(row) else 0.0
        value = -np.inf if np.isnan(value) else value
        if key not in best or value > best[key][0]:
            best[key] = (value, r)
    return [r for _, r in best.values()]


def read_au_csv(path: str | os.PathLike[str], au_format: str = "auto", *, threshold: float = 0.5) -> AUTable:
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
        raise DatasetLayoutError(
            f"AU file {source} does not exist; expected an OpenFace or py-feat CSV, or a folder of them."
        )
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


class ImageIndex:
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


def _class_index(
    values: Sequence[str], class_names: Sequence[str] | None, where: str
) -> tuple[np.ndarray, tuple[str, ...]]:
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


def list_images(root: Path) -> list[str]:
    """The images under ``root`` (recursively, hidden entries excluded) as sorted relative paths."""
    if not root.is_dir():
        raise DatasetLayoutError(
            f"image folder {root} does not exist; expected a folder of images (optionally ROOT/labels.csv "
            "or class subfolders ROOT/<class>/*.png)."
        )
    relative = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not relative:
        raise DatasetLayoutError(
            f"{root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); expected a folder of face images."
        )
    return relative


@dataclass
class FolderLabels:
    """Per-image labels of a folder; ``None`` where the source has no such column."""

    class_names: tuple[str, ...]
    emotions: np.ndarray | None = None
    subjects: np.ndarray | None = None
    sequences: np.ndarray | None = None
    folds: np.ndarray | None = None
    aus: np.ndarray | None = None  # [images, AUs], NaN where not coded
    au_ids: tuple[str, ...] = ()


def read_labels_csv(
    labels_path: Path, index: ImageIndex, count: int, class_names: Sequence[str] | None, skipped: list[dict[str, str]]
) -> FolderLabels:
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

    labels = FolderLabels(tuple(class_names) if class_names is not None else ())
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


def subfolder_labels(root: Path, relative: Sequence[str], class_names: Sequence[str] | None) -> FolderLabels:
    """Emotions from class subfolders (``ROOT/<class>/x.png``), when every image sits in one and there are several."""
    labels = FolderLabels(tuple(class_names) if class_names is not None else ())
    parents = {rel.rsplit("/", 1)[0] if "/" in rel else "" for rel in relative}
    if "" not in parents and all(rel.count("/") == 1 for rel in relative) and len(parents) > 1:
        labels.emotions, labels.class_names = _class_index(
            [rel.split("/")[0] for rel in relative], class_names, str(root)
        )
    return labels


def folder_aus(
    au_csv: str | os.PathLike[str], au_format: str, au_threshold: float, index: ImageIndex,
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


__all__ = [
    "AU_FORMATS",
    "EMOTION_COLUMNS",
    "FILE_COLUMNS",
    "FOLD_COLUMNS",
    "IMAGE_EXTENSIONS",
    "SEQUENCE_COLUMNS",
    "SUBJECT_COLUMNS",
    "AUTable",
    "FolderLabels",
    "ImageIndex",
    "folder_aus",
    "list_images",
    "read_au_csv",
    "read_labels_csv",
    "subfolder_labels",
]
