"""The Extended Cohn-Kanade dataset (CK+) in its distributed layout.

Layout (as unpacked from the CK+ archives)::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ...
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt      "   3.0000000e+00"
    ROOT/FACS/S005/001/S005_001_00000011_facs.txt            "   9.0000000e+00   0.0000000e+00" per AU
    ROOT/Landmarks/S005/001/S005_001_00000001_landmarks.txt  68 lines "x y"

(``Emotion_labels`` / ``FACS_labels`` are accepted for the first two folders.)

The reference protocol: keep the sequences that have an emotion file; take the
first frame (neutral, label 0, no AUs) and the last three frames (the
sequence's label and its FACS AUs, which describe the peak); crop the face
with the Haar cascade and resize to 96x96; 10 folds with subjects sorted by
folder name and fold = index mod 10. On the full dataset this gives 327
sequences, 1308 images, 118 subjects. ``num_classes=6`` drops neutral (0) and
contempt (2) afterwards, keeping the 8-class folds.

FACS intensity 0 means "present, intensity not coded"; it is stored as 1 (A).
Peak frames of a sequence without a FACS file get NaN AU values ("not coded").
Landmarks are mapped into crop coordinates and kept in
``meta["landmarks"]`` (file name -> ``[68, 2]`` float32); :func:`landmarks_for`
returns them aligned to any (sub)set.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from captum_fau.data.au import au_number, parse_au
from captum_fau.data.base import CKPLUS_CLASSES, FaceSet
from captum_fau.data.faces import (
    FaceCrops,
    FaceDetector,
    HaarFaceDetector,
    OneFace,
    detector_token,
    preprocess_faces,
    warn_skipped,
)
from captum_fau.data import lazy as lazy_module
from captum_fau.data.lazy import LazyFaceSet, index_faces, should_stream
from captum_fau.data.folds import ckplus_folds
from captum_fau.data.options import ReadOptions, read_options
from captum_fau.errors import ConfigError, DatasetLayoutError, LabelError

#: The six basic emotions (CK+ codes 1, 3, 4, 5, 6, 7) of the 6-class protocol.
CKPLUS6_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sadness", "surprise")
#: CK+ code -> 6-class index (-1: dropped).
CKPLUS8_TO_6 = np.array([-1, 0, -1, 1, 2, 3, 4, 5], dtype=np.int64)

IMAGE_DIR = "cohn-kanade-images"
EMOTION_DIRS = ("Emotion", "Emotion_labels")
FACS_DIRS = ("FACS", "FACS_labels")
LANDMARK_DIRS = ("Landmarks", "Landmarks_labels")
NUM_LANDMARKS = 68

LAYOUT = (
    "expected the CK+ layout ROOT/cohn-kanade-images/Sxxx/yyy/*.png, ROOT/Emotion/Sxxx/yyy/*_emotion.txt, "
    "and optionally ROOT/FACS/Sxxx/yyy/*_facs.txt and ROOT/Landmarks/Sxxx/yyy/*_landmarks.txt"
)


@dataclass
class _Frame:
    path: Path
    name: str
    subject: str
    sequence: str
    label: int
    aus: dict[str, float] | None  # None: AUs not coded
    landmark_path: Path | None


@dataclass
class _Scan:
    frames: list[_Frame] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    unlabelled_sequences: list[str] = field(default_factory=list)
    sequences_without_facs: list[str] = field(default_factory=list)
    sequences: int = 0


def _find_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_emotion_file(path: str | os.PathLike[str]) -> int:
    """The CK+ code (0..7) in an ``*_emotion.txt`` file such as ``"   3.0000000e+00"``.

    Raises:
        LabelError: the file does not hold exactly one whole number in 0..7.
    """
    text = Path(path).read_text(errors="replace").split()
    try:
        values = [float(token) for token in text]
    except ValueError:
        values = []
    if len(values) != 1 or not values[0].is_integer() or not 0 <= values[0] <= 7:
        raise LabelError(f"{path}: expected one CK+ emotion code 0..7 like '3.0000000e+00', found {text[:4]!r}.")
    return int(values[0])


def read_facs_file(path: str | os.PathLike[str]) -> dict[str, float]:
    """AU -> intensity from a ``*_facs.txt`` file (lines ``"AU intensity"`` as floats).

    Intensity 0 ("present, not coded") becomes 1; FACS A..E are 1..5.

    Raises:
        LabelError: a non-empty line is not two numbers, the AU is unknown, or the intensity is outside 0..5.
    """
    aus: dict[str, float] = {}
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            au_value, intensity = (float(t) for t in tokens)
        except ValueError:
            raise LabelError(
                f"{path}:{number}: expected 'AU intensity' as two numbers, found {line.strip()!r}."
            ) from None
        au = parse_au(au_value)
        if not 0 <= intensity <= 5:
            raise LabelError(f"{path}:{number}: AU intensity must be 0..5 (0 = not coded), found {intensity}.")
        aus[au] = max(aus.get(au, 0.0), intensity if intensity > 0 else 1.0)
    return aus


def read_landmarks_file(path: str | os.PathLike[str]) -> np.ndarray:
    """The ``[68, 2]`` float32 (x, y) points of a ``*_landmarks.txt`` file.

    Raises:
        LabelError: the file does not hold 68 pairs of numbers.
    """
    try:
        points = np.array(Path(path).read_text().split(), dtype=np.float64)
    except ValueError:
        raise LabelError(f"{path}: landmark file holds non-numbers; expected 68 lines 'x y'.") from None
    if points.size != 2 * NUM_LANDMARKS:
        raise LabelError(f"{path}: expected 68 lines 'x y', found {points.size} numbers.")
    return points.reshape(NUM_LANDMARKS, 2).astype(np.float32)


def _scan(root: Path) -> _Scan:
    image_dir = root / IMAGE_DIR
    if not image_dir.is_dir():
        raise DatasetLayoutError(f"CK+ root {root} has no '{IMAGE_DIR}' folder; {LAYOUT}.")
    emotion_dir = _find_dir(root, EMOTION_DIRS)
    if emotion_dir is None:
        raise DatasetLayoutError(f"CK+ root {root} has no 'Emotion' folder (the emotion labels archive); {LAYOUT}.")
    facs_dir = _find_dir(root, FACS_DIRS)
    landmark_dir = _find_dir(root, LANDMARK_DIRS)
    subjects = _visible_dirs(image_dir)
    if not subjects:
        raise DatasetLayoutError(f"{image_dir} holds no subject folders (S005, S010, ...); {LAYOUT}.")

    scan = _Scan()
    for subject_path in subjects:
        for sequence_path in _visible_dirs(subject_path):
            subject, sequence = subject_path.name, sequence_path.name
            seq_id = f"{subject}/{sequence}"
            scan.sequences += 1
            label_files = sorted((emotion_dir / subject / sequence).glob("*.txt"))
            if not label_files:
                scan.unlabelled_sequences.append(seq_id)
                continue
            try:
                label = read_emotion_file(label_files[0])
            except (LabelError, OSError) as err:
                scan.skipped.append({"file": f"{seq_id} emotion", "reason": f"malformed label ({err})"})
                continue
            frames = sorted(p for p in sequence_path.glob("*.png") if not p.name.startswith("."))
            if len(frames) < 2:
                scan.skipped.append({"file": seq_id, "reason": f"sequence has {len(frames)} frame(s), needs >= 2"})
                continue
            aus: dict[str, float] | None = None
            facs_files = sorted((facs_dir / subject / sequence).glob("*.txt")) if facs_dir is not None else []
            if facs_files:
                try:
                    aus = read_facs_file(facs_files[0])
                except (LabelError, OSError) as err:
                    scan.skipped.append(
                        {"file": f"{seq_id} FACS", "reason": f"malformed FACS file, AUs left uncoded ({err})"}
                    )
            if aus is None and facs_dir is not None:
                scan.sequences_without_facs.append(seq_id)
            # First frame: neutral onset; last three: the apex the labels describe.
            chosen = [(frames[0], 0, {})] + [(f, label, aus) for f in frames[1:][-3:]]
            for path, frame_label, frame_aus in chosen:
                landmark = None
                if landmark_dir is not None:
                    candidate = landmark_dir / subject / sequence / f"{path.stem}_landmarks.txt"
                    landmark = candidate if candidate.is_file() else None
                scan.frames.append(
                    _Frame(
                        path=path,
                        name=f"{subject}/{sequence}/{path.name}",
                        subject=subject,
                        sequence=seq_id,
                        label=frame_label,
                        aus=frame_aus,
                        landmark_path=landmark,
                    )
                )
    return scan


def _frame_aus(frames: list[_Frame]) -> tuple[tuple[str, ...], np.ndarray]:
    """The AU columns (sorted by number) and a ``[frames, AUs]`` table; NaN rows for frames without FACS."""
    au_ids = tuple(sorted({au for f in frames if f.aus for au in f.aus}, key=lambda a: (au_number(a), a)))
    aus = np.zeros((len(frames), len(au_ids)), np.float32)
    column = {au: j for j, au in enumerate(au_ids)}
    for i, frame in enumerate(frames):
        if frame.aus is None:
            aus[i] = np.nan
        else:
            for au, value in frame.aus.items():
                aus[i, column[au]] = value
    return au_ids, aus


def _crop_geometry(
    frames: list[_Frame], crops: FaceCrops, size: int, skipped: list[dict[str, str]]
) -> tuple[dict[str, list[int]], dict[str, np.ndarray]]:
    """Face boxes (source pixels) and landmarks (crop pixels) by frame name, for the frames with a crop.

    Malformed landmark files are added to ``skipped``; their frames are kept without landmarks.
    """
    landmarks: dict[str, np.ndarray] = {}
    boxes: dict[str, list[int]] = {}
    for i, frame in enumerate(frames):
        if not crops.ok[i]:
            continue
        x, y, w, h = (int(v) for v in crops.boxes[i])
        boxes[frame.name] = [x, y, w, h]
        if frame.landmark_path is not None:
            try:
                points = read_landmarks_file(frame.landmark_path)
            except (LabelError, OSError) as err:
                skipped.append(
                    {
                        "file": str(frame.landmark_path.name),
                        "reason": f"malformed landmarks, frame kept without them ({err})",
                    }
                )
                continue
            # Source pixels -> crop pixels (the crop is resized from w x h to size x size).
            landmarks[frame.name] = ((points - (x, y)) * (size / w, size / h)).astype(np.float32)
    return boxes, landmarks


def _class_labels(frames: list[_Frame], num_classes: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The frames' labels in the ``num_classes`` list, which frames that list keeps, and its class names."""
    labels = np.array([f.label for f in frames], np.int64)
    if num_classes == 6:
        labels = CKPLUS8_TO_6[labels]
        return labels, labels >= 0, CKPLUS6_CLASSES
    return labels, np.ones(len(frames), bool), CKPLUS_CLASSES


def load_ckplus(
    root: str | os.PathLike[str],
    options: ReadOptions | None = None,
    *,
    num_classes: int = 8,
    size: int = 96,
    detector: FaceDetector | None = None,
    detect_faces: bool = True,
    interpolation: str = "area",
    **settings: Any,
) -> FaceSet | LazyFaceSet:
    """Load CK+ with the paper's protocol.

    Args:
        root (str or Path): Folder holding ``cohn-kanade-images`` and ``Emotion``
            (plus ``FACS`` and ``Landmarks`` when available).
        num_classes (int, optional): 8 (CK+ codes 0..7) or 6 (neutral and contempt
            dropped; anger, disgust, fear, happy, sadness, surprise). Default: 8
        size (int, optional): Side of the face crops. Default: 96
        detector (callable, optional): Face detector. Default: :class:`HaarFaceDetector`
            with the reference parameters.
        detect_faces (bool, optional): False takes the centred square of each frame
            instead of detecting. Default: True
        interpolation (str, optional): Resize method, see :func:`~captum_fau.data.faces.crop_resize`.
        options (ReadOptions, optional): ``cache_dir`` / ``cache`` (the crop cache, default
            :func:`~captum_fau.data.cache.default_cache_dir`), ``progress``, ``lazy`` (a
            :class:`~captum_fau.data.lazy.LazyFaceSet` whose items, the same as the FaceSet's with the same
            ``meta``, are cut from the frames when read, in ``workers`` DataLoader processes, after one index
            pass that detects the faces; ``None`` streams from :data:`~captum_fau.data.lazy.STREAM_THRESHOLD`
            protocol frames on: the full CK+ has 1308, so it stays in memory) and ``workers`` (of the index pass
            and of a lazy set's reads; default the usable cores, at most 8). CK+ keeps the reference detector
            (``face_crop`` is not used). Default: ``ReadOptions()``
        **settings: :class:`~captum_fau.data.options.ReadOptions` fields as keywords (``cache=False``).

    Returns:
        FaceSet (or LazyFaceSet): ``name`` ``"ckplus"`` / ``"ckplus6"``; ``subjects`` (``"S005"``),
        ``sequences`` (``"S005/001"``), ``folds`` (0..9), ``names`` (relative image paths),
        ``aus`` / ``au_ids`` from the FACS files, ``meta`` with ``"landmarks"``, ``"boxes"``,
        ``"skipped"``, ``"unlabelled_sequences"``, ``"sequences_without_facs"``.

    Raises:
        DatasetLayoutError: ``cohn-kanade-images`` or ``Emotion`` is missing.
        DatasetError: no labelled sequence with a detectable face remains.

    Frames that cannot be read, frames without a detectable face and sequences
    with malformed label files are dropped and reported in one warning.

    Examples::

        One labelled sequence of four frames (first frame neutral, last three the label):

        >>> import os, tempfile, cv2, numpy as np
        >>> root = tempfile.mkdtemp()
        >>> frames = os.path.join(root, "cohn-kanade-images", "S005", "001")
        >>> os.makedirs(frames)
        >>> for i in range(1, 5):
        ...     _ = cv2.imwrite(os.path.join(frames, f"S005_001_{i:08d}.png"), np.full((120, 160), 128, np.uint8))
        >>> os.makedirs(os.path.join(root, "Emotion", "S005", "001"))
        >>> _ = open(os.path.join(root, "Emotion", "S005", "001", "S005_001_00000004_emotion.txt"), "w").write(
        ...     "   5.0000000e+00\\n")
        >>> faces = load_ckplus(root, detect_faces=False, cache=False, progress=False)
        >>> [faces.class_names[e] for e in faces.emotions], faces.subjects.tolist(), faces.images.shape
        (['neutral', 'happy', 'happy', 'happy'], ['S005', 'S005', 'S005', 'S005'], (4, 96, 96))

        The real dataset (327 labelled sequences):

        >>> faces = load_ckplus("/data/CK+")                   # doctest: +SKIP
        >>> len(faces), faces.class_names[5]                   # doctest: +SKIP
        (1308, 'happy')
    """
    opts = read_options(options, **settings)
    cache_dir, cache, progress, lazy, workers = opts.cache_dir, opts.cache, opts.progress, opts.lazy, opts.workers
    if num_classes not in (6, 8):
        raise ConfigError(f"num_classes must be 8 (CK+ codes 0..7) or 6 (basic emotions), got {num_classes!r}.")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError(f"CK+ root {root} is not a folder; {LAYOUT}.")
    scan = _scan(root)
    if not scan.frames:
        warn_skipped("CK+", scan.skipped, scan.sequences)
        raise DatasetLayoutError(
            f"no labelled CK+ sequence found under {root} ({scan.sequences} sequences, "
            f"{len(scan.unlabelled_sequences)} without an emotion file); {LAYOUT}."
        )

    frames = scan.frames
    subjects = np.array([f.subject for f in frames])
    folds = ckplus_folds(subjects)  # before any frame is dropped, as the reference did
    if detect_faces and detector is None:
        detector = HaarFaceDetector()
    streamed = should_stream(lazy, len(frames))
    paths, finder = [f.path for f in frames], detector if detect_faces else None
    if streamed:
        crops: FaceCrops = _indexed_crops(paths, size, finder, interpolation, "CK+ faces", opts)
    else:
        crops = preprocess_faces(paths, size=size, detector=finder, interpolation=interpolation, cache_dir=cache_dir,
                                 cache=cache, progress=progress, desc="CK+ faces")  # fmt: skip
    skipped = list(scan.skipped) + crops.skipped([f.name for f in frames])
    au_ids, aus = _frame_aus(frames)
    has_facs = _find_dir(root, FACS_DIRS) is not None
    boxes, landmarks = _crop_geometry(frames, crops, size, skipped)

    labels, in_classes, class_names = _class_labels(frames, num_classes)
    keep = crops.ok & in_classes
    warn_skipped("CK+", skipped, len(frames))
    if scan.sequences_without_facs:
        warnings.warn(
            f"CK+: {len(scan.sequences_without_facs)} labelled sequences have no FACS file; their peak "
            f"frames get NaN AU values (not coded): {', '.join(scan.sequences_without_facs[:20])}.",
            stacklevel=2,
        )
    if not keep.any():
        raise LabelError(f"no CK+ image remains under {root} after face detection and the {num_classes}-class map.")

    index = np.flatnonzero(keep)
    meta: dict[str, Any] = {
        "source": str(root),
        "protocol": "first frame (neutral) + last three frames of each labelled sequence; folds = sorted subject index mod 10",
        "num_classes": num_classes,
        "preprocessing": dict(crops.params),
        "from_cache": crops.from_cache,
        "skipped": skipped,
        "sequences_total": scan.sequences,
        "unlabelled_sequences": scan.unlabelled_sequences,
        "sequences_without_facs": scan.sequences_without_facs,
        "landmarks": landmarks,
        "boxes": boxes,
    }
    fields: dict[str, Any] = dict(
        class_names=class_names, emotions=labels[index], aus=aus[index] if has_facs else None,
        au_ids=au_ids if has_facs else (), subjects=subjects[index],
        sequences=np.array([f.sequence for f in frames])[index], folds=folds[index],
        names=np.array([f.name for f in frames])[index], name="ckplus" if num_classes == 8 else "ckplus6", meta=meta,
    )  # fmt: skip
    if not streamed:
        return FaceSet(images=crops.images[index], **fields)
    return _streamed_set(frames, crops, index, fields, lazy=bool(lazy), size=size, interpolation=interpolation,
                         workers=workers)  # fmt: skip


def _streamed_set(
    frames: list[_Frame], crops: FaceCrops, index: np.ndarray, fields: dict[str, Any], *, lazy: bool, size: int,
    interpolation: str, workers: int | None,
) -> LazyFaceSet:  # fmt: skip
    """The LazyFaceSet of the kept frames ``index``: the same fields as the FaceSet, pixels cut per read."""
    digests = crops.digests[index]  # type: ignore[attr-defined]
    faces = LazyFaceSet([f.path for f in frames], index, crops.boxes[index], digests, size=size,
                        interpolation=interpolation, workers=workers, **fields)  # fmt: skip
    why = "lazy=True / --stream" if lazy else f"{len(frames)} frames >= {lazy_module.STREAM_THRESHOLD}, the default"
    faces.meta["stream"] = {"files": len(frames), "items": len(faces), "workers": faces.num_workers, "why": why,
                            "from_cache": crops.from_cache}  # fmt: skip
    return faces


@dataclass
class _IndexedCrops(FaceCrops):
    """:class:`FaceCrops` from the streaming index: boxes and status per file, no pixels, a digest per file."""

    digests: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint8))


def _indexed_crops(
    paths: list[Path], size: int, detector: FaceDetector | None, interpolation: str, desc: str, read: ReadOptions,
) -> _IndexedCrops:  # fmt: skip
    """What :func:`preprocess_faces` finds, from :func:`~captum_fau.data.lazy.index_faces` with the same
    one-face finder (boxes, status, parameters), without keeping any crop; ``read`` gives the cache, the
    workers and the progress bar."""
    found = index_faces(paths, OneFace(detector), size=size, interpolation=interpolation, cache_dir=read.cache_dir,
                        cache=read.cache, workers=read.workers, progress=read.progress, desc=desc)  # fmt: skip
    boxes = np.full((len(paths), 4), -1, np.int32)
    boxes[found.owner] = found.boxes
    digests = np.zeros((len(paths), found.digests.shape[1]), np.uint8)
    digests[found.owner] = found.digests
    params = {"size": size, "detector": detector_token(detector) or repr(detector), "interpolation": interpolation}
    return _IndexedCrops(images=np.zeros((0, size, size), np.uint8), boxes=boxes, source_shapes=found.shapes,
                         status=found.status, from_cache=found.from_cache, digests=digests, params=params)  # fmt: skip


def landmarks_for(faceset: FaceSet) -> np.ndarray:
    """``[N, 68, 2]`` float32 landmarks in crop pixels for each image of ``faceset`` (NaN where unknown).

    Works on subsets too: points are looked up by ``faceset.names``.
    """
    table: dict[str, np.ndarray] = faceset.meta.get("landmarks", {})
    out = np.full((len(faceset), NUM_LANDMARKS, 2), np.nan, np.float32)
    if faceset.names is None:
        return out
    for i, name in enumerate(faceset.names):
        points = table.get(str(name))
        if points is not None:
            out[i] = points
    return out


__all__ = [
    "CKPLUS6_CLASSES",
    "CKPLUS8_TO_6",
    "landmarks_for",
    "load_ckplus",
    "read_emotion_file",
    "read_facs_file",
    "read_landmarks_file",
]
