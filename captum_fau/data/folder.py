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

import os
import warnings
from dataclasses import dataclass, fields as dataclass_fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau._utils.validate import with_settings
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
from captum_fau.data.folder_labels import (
    AU_FORMATS,
    EMOTION_COLUMNS,
    FILE_COLUMNS,
    FOLD_COLUMNS,
    IMAGE_EXTENSIONS,
    SEQUENCE_COLUMNS,
    SUBJECT_COLUMNS,
    AUTable,
    FolderLabels,
    ImageIndex,
    folder_aus,
    list_images,
    read_au_csv,
    read_labels_csv,
    subfolder_labels,
)
from captum_fau.data import lazy as lazy_module
from captum_fau.data.lazy import LazyFaceSet, index_faces, should_stream
from captum_fau.data.options import ReadOptions
from captum_fau.errors import ConfigError, DatasetLayoutError, LabelError

#: Keywords of :func:`load_folder` (its ``**settings``) besides the ReadOptions fields, with their defaults.
_FOLDER_SETTINGS: dict[str, Any] = {
    "au_format": "auto",
    "au_threshold": 0.5,
    "detect_faces": None,
    "interpolation": "area",
}
#: ``face_crop`` modes of :func:`load_folder` (``--face-crop``).
FACE_CROPS = ("auto", "haar", "none")
#: ``auto`` keeps an image whole when its shorter side is at most this many pixels ...
AUTO_WHOLE_MAX_SIDE = 256
#: ... its longer side is at most this many times the shorter ...
AUTO_WHOLE_MAX_ASPECT = 1.25
#: ... and no face is found, or one face whose side is at least this share of the shorter side.
AUTO_FILL_FRACTION = 0.5


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
    return (
        f"No image under {root} gave a face (face crop {mode}): {len(unreadable)} could not be read as images "
        f"(e.g. {', '.join(unreadable[:3])}) and {len(faceless)} show no face the detector finds. Check the "
        "files open in an image viewer; pass face_crop='none' (--face-crop none) if they are face crops already."
    )


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
    options: ReadOptions,
) -> _Items:  # fmt: skip
    """The items :func:`_face_items` gives, without their pixels: the streaming index (same finder, same boxes),
    read with ``options``' cache, workers and progress."""
    if mode == "none" or detector is not None:
        finder: Any = OneFace(None if mode == "none" else detector)
        params = {"size": size, "detector": finder.cache_token or repr(finder.detector), "interpolation": interpolation,
                  "face_crop": mode}  # fmt: skip
    else:
        finder = FolderFaces(mode)
        params = {
            "size": size,
            "face_crop": mode,
            "detector": finder.detector.cache_token,
            "interpolation": interpolation,
        }
    index = index_faces(paths, finder, size=size, interpolation=interpolation, cache_dir=options.cache_dir,
                        cache=options.cache, workers=options.workers, progress=options.progress,
                        desc="folder faces")  # fmt: skip
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
    options: ReadOptions | None = None,
    *,
    au_csv: str | os.PathLike[str] | None = None,
    size: int = 96,
    detector: FaceDetector | None = None,
    class_names: Sequence[str] | None = None,
    **settings: Any,
) -> FaceSet | LazyFaceSet:
    """Load a folder of face images with optional emotion and AU labels.

    Args:
        root (str or Path): The image folder (searched recursively).
        labels_csv (str or Path, optional): CSV with a file column and ``emotion``/``label``,
            ``subject``, ``sequence``, ``fold`` columns. Default: ``ROOT/labels.csv`` if it
            exists, else class subfolders if the images sit in them, else no emotion labels.
        options (ReadOptions, optional): How the images are read: ``face_crop`` (``"auto"``, ``"haar"`` or
            ``"none"``, see the module docstring), ``cache`` / ``cache_dir`` (the crop cache), ``progress``,
            ``lazy`` (return a :class:`~captum_fau.data.lazy.LazyFaceSet` that cuts each face item from its
            file when read, in ``workers`` DataLoader processes, memory flat in the number of images, after
            one index pass that finds the faces; its items equal the FaceSet's; ``None`` streams folders of
            :data:`~captum_fau.data.lazy.STREAM_THRESHOLD` images or more) and ``workers`` (processes of the
            index pass and of a lazy set's reads). Default: :class:`~captum_fau.data.options.ReadOptions`
        au_csv (str or Path, optional): OpenFace 2.0 or py-feat AU CSV, or a folder of
            per-image OpenFace CSVs; see :func:`read_au_csv`.
        size (int, optional): Side of the face crops. Default: 96
        detector (callable, optional): A face detector finding one face per image (then
            ``face_crop`` must not be ``"none"``). Default: :meth:`HaarFaceDetector.general`
            finding every face.
        class_names (sequence of str, optional): Class order. Default: from the labels
            (``"0".."K"`` for integer labels, sorted names otherwise).
        **settings: Any :class:`~captum_fau.data.options.ReadOptions` field by name (``face_crop=``,
            ``cache=``, ``cache_dir=``, ``lazy=``, ``workers=``, ``progress=``; they change ``options``), and
            ``au_format`` (``"auto"``, ``"openface"`` or ``"pyfeat"``; default ``"auto"``), ``au_threshold``
            (py-feat presence threshold; default 0.5), ``detect_faces`` (shorthand: False is
            ``face_crop="none"``, True is ``face_crop="haar"``; default None, ``face_crop`` decides) and
            ``interpolation`` (resize method; default ``"area"``).

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
    extra = {name: settings.pop(name, default) for name, default in _FOLDER_SETTINGS.items()}
    unknown = sorted(set(settings) - {f.name for f in dataclass_fields(ReadOptions)})
    if unknown:
        raise ConfigError(f"load_folder got unknown keyword(s) {unknown}; it takes au_csv, size, detector, "
                          f"class_names, {', '.join(_FOLDER_SETTINGS)} and the ReadOptions fields "
                          f"{[f.name for f in dataclass_fields(ReadOptions)]}.")  # fmt: skip
    opts = with_settings(ReadOptions, options, settings)
    au_format, au_threshold, detect_faces, interpolation = (extra[name] for name in _FOLDER_SETTINGS)
    root = Path(root).expanduser()
    relative = list_images(root)
    index = ImageIndex(root, relative)
    count = len(relative)
    skipped: list[dict[str, str]] = []
    if labels_csv is None and (root / "labels.csv").is_file():
        labels_csv = root / "labels.csv"
    if labels_csv is not None:
        labels = read_labels_csv(Path(labels_csv).expanduser(), index, count, class_names, skipped)
    else:
        labels = subfolder_labels(root, relative, class_names)
    aus_missing: list[str] = []
    if au_csv is not None:
        labels.aus, labels.au_ids, aus_missing = folder_aus(au_csv, au_format, au_threshold, index, relative, skipped)
        if labels.au_ids and len(aus_missing) == count:  # before the (slow) face crops: nothing would be labelled
            unmatched = [s["file"] for s in skipped if s["reason"] == "AU row names no image"][:3]
            raise LabelError(
                f"No row of the AU table {au_csv} names one of the {count} images under {root} (rows name "
                f"{unmatched}, images are e.g. {list(relative[:3])}). Make its file (or input) column hold the image "
                "paths relative to the folder, or their file names, or pass the AU table made for these images."
            )

    mode = check_face_crop(opts.face_crop) if detect_faces is None else ("haar" if detect_faces else "none")
    paths = [root / rel for rel in relative]
    check_image_files(paths, f"folder {root}")
    if should_stream(opts.lazy, count):
        items = _indexed_items(paths, size=size, mode=mode, detector=detector, interpolation=interpolation,
                               options=opts)  # fmt: skip
    else:
        items = _face_items(paths, size=size, mode=mode, detector=detector, interpolation=interpolation,
                            cache_dir=opts.cache_dir, cache=opts.cache, progress=opts.progress)  # fmt: skip
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
    return _folder_set(items, relative, paths, labels, meta, size=size, interpolation=interpolation, options=opts)


def _why(lazy: bool | None, files: int) -> str:
    """Why a set is streamed, for ``meta["stream"]`` and the note."""
    if lazy is None:
        return (
            f"{files} files >= {lazy_module.STREAM_THRESHOLD}, the default threshold; lazy=False / --no-stream "
            "keeps them in memory"
        )
    return "lazy=True / --stream"


def _folder_set(
    items: _Items, relative: Sequence[str], paths: Sequence[Path], labels: FolderLabels, meta: dict[str, Any], *,
    size: int, interpolation: str, options: ReadOptions,
) -> FaceSet | LazyFaceSet:  # fmt: skip
    """The FaceSet (or, for the streaming index's items, the LazyFaceSet) of a folder's face items: names, labels
    and ``meta`` made the same way for both from the items (eager crops or the streaming index)."""
    keep = items.owner
    per_file = np.bincount(keep, minlength=len(relative))
    face_no = np.zeros(len(keep), np.int64)
    for i in range(1, len(keep)):
        face_no[i] = face_no[i - 1] + 1 if keep[i] == keep[i - 1] else 0
    names = np.array([relative[f] + (f"#face{k + 1}" if per_file[f] > 1 else "") for f, k in zip(keep, face_no)])
    pick = lambda a: None if a is None else a[keep]  # noqa: E731
    item_aus = pick(labels.aus)
    if item_aus is not None and (per_file > 1).any():
        item_aus[per_file[keep] > 1] = np.nan  # which face a per-image AU row describes is unknown
    fields: dict[str, Any] = dict(class_names=labels.class_names, emotions=pick(labels.emotions), aus=item_aus,
                                  au_ids=labels.au_ids, subjects=pick(labels.subjects),
                                  sequences=pick(labels.sequences), folds=pick(labels.folds), names=names,
                                  name="folder")  # fmt: skip
    if items.images is not None:
        meta["boxes"] = {str(name): [int(v) for v in box] for name, box in zip(names, items.boxes)}
        return FaceSet(images=items.images, meta=meta, **fields)
    faces = LazyFaceSet(paths, items.owner, items.boxes, items.digests, options, size=size,
                        interpolation=interpolation, meta=meta, **fields)  # fmt: skip
    why = _why(options.lazy, len(relative))
    faces.meta["stream"] = {"files": len(relative), "items": len(faces), "workers": faces.num_workers, "why": why,
                      "from_cache": items.from_cache}  # fmt: skip
    return faces


__all__ = [
    "AUTO_FILL_FRACTION",
    "AUTO_WHOLE_MAX_ASPECT",
    "AUTO_WHOLE_MAX_SIDE",
    "AUTable",
    "AU_FORMATS",
    "EMOTION_COLUMNS",
    "FACE_CROPS",
    "FILE_COLUMNS",
    "FOLD_COLUMNS",
    "IMAGE_EXTENSIONS",
    "SEQUENCE_COLUMNS",
    "SUBJECT_COLUMNS",
    "check_face_crop",
    "face_crop_note",
    "load_folder",
    "read_au_csv",
]
