"""Face detection and cropping shared by every real-image loader.

The reference pipeline found faces with OpenCV's bundled Haar cascade
``haarcascade_frontalface_default.xml`` (scaleFactor 1.3, minNeighbors 5, and
a second try with minNeighbors 3 when the first finds nothing; face size
between 0.5 and 0.8 of the image's shorter side), cropped the detected box and
resized it to 96x96 (bilinear, without anti-aliasing; here shrinking uses
area averaging, which does not alias). :class:`HaarFaceDetector` reproduces those parameters and
:func:`preprocess_faces` runs a detector over a list of files with a progress
bar, caching the crops (see :mod:`captum_fau.data.cache`) so a second run is a
file read.

Files that cannot be read and images without a detectable face are never an
error in the middle of a long run: they come back with a status code, and the
loaders drop them and report them all in one warning
(:func:`warn_skipped`). Reading files and refusing 16-bit or transparent ones live in
:mod:`captum_fau.data.image_files` (re-exported here).

A detector is any callable ``gray uint8 [H, W] -> (x, y, w, h) or None``; give it
a ``cache_token`` attribute (a string describing its parameters) so cached crops
are told apart per detector.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from captum_fau._utils.validate import int_at_least
from captum_fau.data.cache import ArrayCache, cache_key, file_fingerprints
from captum_fau.data.image_files import check_image_files, image_format_problem, read_gray
from captum_fau.errors import ConfigError

#: A face box ``(x, y, w, h)`` in pixels of the source image.
Box = tuple[int, int, int, int]
#: Anything that finds one face in a grayscale uint8 image.
FaceDetector = Callable[[np.ndarray], "Box | None"]

#: Per-file status codes of :class:`FaceCrops`.
STATUS_OK, STATUS_UNREADABLE, STATUS_NO_FACE = 0, 1, 2
STATUS_REASONS = {STATUS_UNREADABLE: "unreadable image", STATUS_NO_FACE: "no face found"}


def status_reasons(status: Sequence[int] | np.ndarray) -> list[str | None]:
    """Per file: ``None`` when it gave a face item, else why it gave none (:data:`STATUS_REASONS`)."""
    return [STATUS_REASONS.get(int(s)) for s in status]


_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


class HaarFaceDetector:
    """OpenCV Haar-cascade face detector with the reference parameters.

    Args:
        scale_factor (float, optional): ``detectMultiScale`` pyramid step. Default: 1.3
        min_neighbors (int, optional): Overlapping detections required. Default: 5
        retry_min_neighbors (sequence of int, optional): Laxer ``min_neighbors`` tried in order
            when nothing is found. Default: ``(3,)``, the reference's one retry.
        min_size_fraction (float, optional): Smallest face side, as a fraction of the image's
            shorter side. Default: 0.5
        max_size_fraction (float, optional): Largest face side, same unit. Default: 0.8
        cascade (str, optional): Cascade file name inside ``cv2.data.haarcascades``, or a path.
            Default: ``"haarcascade_frontalface_default.xml"``

    When several faces pass, the largest is returned (the reference took the
    first one OpenCV listed; with the size limits above there is rarely more than one).

    Examples::

        >>> import numpy as np
        >>> detector = HaarFaceDetector()
        >>> detector(np.zeros((120, 160), np.uint8)) is None
        True
    """

    def __init__(
        self,
        scale_factor: float = 1.3,
        min_neighbors: int = 5,
        retry_min_neighbors: Sequence[int] = (3,),
        min_size_fraction: float = 0.5,
        max_size_fraction: float = 0.8,
        cascade: str = "haarcascade_frontalface_default.xml",
    ) -> None:
        if scale_factor <= 1.0:
            raise ConfigError(f"scale_factor must be > 1 (the reference uses 1.3), got {scale_factor}.")
        if not 0 < min_size_fraction <= max_size_fraction <= 1:
            raise ConfigError(
                "face size fractions must satisfy 0 < min_size_fraction <= max_size_fraction <= 1 "
                f"(the reference uses 0.5 and 0.8), got {min_size_fraction} and {max_size_fraction}."
            )
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.retry_min_neighbors = tuple(int(n) for n in retry_min_neighbors)
        self.min_size_fraction = float(min_size_fraction)
        self.max_size_fraction = float(max_size_fraction)
        self.cascade_path = self._resolve_cascade(cascade)
        self._classifier: cv2.CascadeClassifier | None = None

    @staticmethod
    def _resolve_cascade(cascade: str) -> str:
        if os.path.isfile(cascade):
            return cascade
        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
        candidate = os.path.join(folder, cascade)
        if not folder or not os.path.isfile(candidate):
            raise ConfigError(
                f"OpenCV's Haar cascade {cascade!r} was not found (cv2.data.haarcascades={folder!r}). "
                "OpenCV 5 no longer ships the cascades: install opencv-python-headless>=4.8,<5, or pass "
                "the path of a cascade XML file, or load the dataset with detect_faces=False."
            )
        return candidate

    @property
    def classifier(self) -> cv2.CascadeClassifier:
        # Loaded on first use: the XML parse costs ~50 ms and detectors are cheap to create.
        if self._classifier is None:
            classifier = cv2.CascadeClassifier(self.cascade_path)
            if classifier.empty():
                raise ConfigError(f"OpenCV could not load the cascade file {self.cascade_path}; is it a Haar XML?")
            self._classifier = classifier
        return self._classifier

    @property
    def cache_token(self) -> str:
        """Identifies the detection parameters in cache keys."""
        return (
            f"haar:{os.path.basename(self.cascade_path)}:sf={self.scale_factor}:mn={self.min_neighbors}:"
            f"retry={self.retry_min_neighbors}:min={self.min_size_fraction}:max={self.max_size_fraction}"
        )

    def detect_all(self, gray: np.ndarray, min_neighbors: int) -> np.ndarray:
        """All boxes ``[K, 4]`` (x, y, w, h) found with ``min_neighbors``."""
        shorter = min(gray.shape[:2])
        min_side = int(shorter * self.min_size_fraction)
        max_side = int(shorter * self.max_size_fraction)
        boxes = self.classifier.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=min_neighbors,
            flags=0,
            minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
        )
        return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)

    @classmethod
    def general(cls) -> "HaarFaceDetector":
        """Settings for ordinary photos (portraits, group photos, faces small in the frame).

        The reference settings only accept a face 50-80% of the image's shorter side, as in
        CK+'s frames; here any face from 5% to 100% of it is found (scaleFactor 1.1,
        minNeighbors 5, then 3). Keep the reference settings (``HaarFaceDetector()``) for the
        CK+ protocol.

        Examples::

            >>> HaarFaceDetector.general().min_size_fraction
            0.05
        """
        return cls(
            scale_factor=1.1, min_neighbors=5, retry_min_neighbors=(3,), min_size_fraction=0.05, max_size_fraction=1.0
        )

    def detect_many(self, gray: np.ndarray) -> np.ndarray:
        """Every face box ``[K, 4]`` (x, y, w, h) in ``gray``, left to right; boxes inside a larger one are dropped.

        Uses the first ``min_neighbors`` (then the retries) that finds anything.
        """
        for neighbors in (self.min_neighbors, *self.retry_min_neighbors):
            boxes = self.detect_all(gray, neighbors)
            if len(boxes):
                order = np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")
                kept: list[np.ndarray] = []
                for box in boxes[order]:
                    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
                    if not any(k[0] <= cx <= k[0] + k[2] and k[1] <= cy <= k[1] + k[3] for k in kept):
                        kept.append(box)
                out = np.stack(kept)
                return out[np.argsort(out[:, 0], kind="stable")]
        return np.zeros((0, 4), np.int64)

    def __call__(self, gray: np.ndarray) -> Box | None:
        """The largest face box ``(x, y, w, h)`` in ``gray`` (uint8 ``[H, W]``), or ``None``."""
        for neighbors in (self.min_neighbors, *self.retry_min_neighbors):
            boxes = self.detect_all(gray, neighbors)
            if len(boxes):
                x, y, w, h = boxes[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]
                return int(x), int(y), int(w), int(h)
        return None

    def __getstate__(self) -> dict[str, Any]:
        # OpenCV classifiers cannot be pickled; worker processes reload the XML.
        return {**self.__dict__, "_classifier": None}

    def __repr__(self) -> str:
        return f"HaarFaceDetector({self.cache_token})"


def detector_token(detector: FaceDetector | None) -> str | None:
    """What identifies ``detector`` in cache keys: its ``cache_token``; ``None`` when it has none.

    A callable without a ``cache_token`` cannot be told apart from another one of
    the same code with other parameters (two lambdas, two closures), so its
    results are not cached.
    """
    if detector is None:
        return "none:centre-square"
    token = getattr(detector, "cache_token", None)
    return token if isinstance(token, str) else None


def centre_square(shape: tuple[int, ...]) -> Box:
    """The largest centred square box in an image of ``shape``: used when detection is off."""
    height, width = int(shape[0]), int(shape[1])
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


def crop_resize(gray: np.ndarray, box: Box, size: int, interpolation: str = "area") -> np.ndarray:
    """Crop ``box`` (clipped to the image) out of ``gray`` and resize it to ``size`` x ``size``.

    ``"area"`` averages source pixels when shrinking (no aliasing); enlarging
    always uses linear interpolation.
    """
    x, y, w, h = box
    x0, y0 = max(int(x), 0), max(int(y), 0)
    x1, y1 = min(int(x + w), gray.shape[1]), min(int(y + h), gray.shape[0])
    crop = gray[y0:y1, x0:x1]
    if crop.shape == (size, size):
        return np.ascontiguousarray(crop)
    flag = _INTERPOLATIONS[interpolation] if min(crop.shape) >= size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=flag)


def resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    """``[N, H, W]`` uint8 faces resized to ``[N, size, size]`` (area when shrinking, bilinear when growing).

    Args:
        images (np.ndarray): ``[N, H, W]`` images; returned as they are when already ``size`` x ``size``.
        size (int): Side of the output images.

    Returns:
        np.ndarray: ``[N, size, size]``, same dtype.
    """
    if images.shape[1:] == (size, size):
        return images
    flag = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(image, (size, size), interpolation=flag) for image in images])


class FaceFinder(Protocol):
    """What turns one decoded image into the boxes of its face items: ``gray -> (boxes [K, 4], whole [K])``.

    ``whole[k]`` says that box ``k`` is the whole image kept as a face crop (not a detection).
    ``cache_token`` identifies the finder's settings in cache keys (``None``: not cacheable).
    """

    cache_token: str | None

    def __call__(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class OneFace:
    """At most one face item per image: ``detector``'s box, or the centred square when ``detector`` is ``None``.

    Args:
        detector (callable, optional): ``gray -> (x, y, w, h) or None``. Default: None (centred square)

    Examples::

        >>> boxes, whole = OneFace(None)(np.zeros((50, 80), np.uint8))
        >>> boxes.tolist(), whole.tolist()
        ([[15, 0, 50, 50]], [True])
    """

    def __init__(self, detector: FaceDetector | None) -> None:
        self.detector = detector
        self.cache_token = detector_token(detector)

    def __call__(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        box = centre_square(gray.shape) if self.detector is None else self.detector(gray)
        if box is None:
            return np.zeros((0, 4), np.int64), np.zeros(0, bool)
        return np.asarray([box], np.int64).reshape(1, 4), np.array([self.detector is None])


@dataclass
class FileFaces:
    """The face items of one image file (see :func:`file_faces`).

    Attributes:
        status (int): :data:`STATUS_OK`, :data:`STATUS_UNREADABLE` or :data:`STATUS_NO_FACE`.
        shape (tuple of int): The source ``(H, W)``; ``(-1, -1)`` when unreadable.
        boxes (np.ndarray): ``[K, 4]`` int64 ``(x, y, w, h)`` in source pixels, one per item.
        whole (np.ndarray): ``[K]`` bool, the item is the whole image kept as a face crop.
        crops (np.ndarray): ``[K, size, size]`` uint8 face crops.
    """

    status: int
    shape: tuple[int, int]
    boxes: np.ndarray
    whole: np.ndarray
    crops: np.ndarray


def file_faces(path: str | os.PathLike[str], finder: FaceFinder, size: int, interpolation: str = "area") -> FileFaces:
    """Decode one file and cut its face items: the one per-image step of every real-image loader.

    The eager loaders (:func:`preprocess_faces`, :func:`~captum_fau.data.folder.load_folder`'s face
    modes) and the streaming index (:mod:`captum_fau.data.lazy`) call this, so both see the same
    boxes, and a streamed item re-cut with :func:`crop_resize` from the same file equals the eager crop.

    Args:
        path (path): The image file.
        finder (FaceFinder): Boxes of the face items, e.g. :class:`OneFace`.
        size (int): Side of the crops.
        interpolation (str, optional): Resize method of :func:`crop_resize`. Default: ``"area"``

    Returns:
        FileFaces: status, source shape, boxes, ``whole`` flags and crops (none when the status is not OK).

    Examples::

        >>> import tempfile, cv2, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> _ = cv2.imwrite(path, np.full((50, 80), 128, np.uint8))
        >>> found = file_faces(path, OneFace(None), 32)
        >>> found.status, found.shape, found.crops.shape
        (0, (50, 80), (1, 32, 32))
    """
    gray = read_gray(path)
    empty = np.zeros((0, size, size), np.uint8)
    if gray is None:
        return FileFaces(STATUS_UNREADABLE, (-1, -1), np.zeros((0, 4), np.int64), np.zeros(0, bool), empty)
    boxes, whole = finder(gray)
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    shape = (int(gray.shape[0]), int(gray.shape[1]))
    if len(boxes) == 0:
        return FileFaces(STATUS_NO_FACE, shape, boxes, np.zeros(0, bool), empty)
    crops = np.stack([crop_resize(gray, tuple(int(v) for v in box), size, interpolation)  # type: ignore[arg-type]
                      for box in boxes])  # fmt: skip
    return FileFaces(STATUS_OK, shape, boxes, np.asarray(whole, bool).reshape(-1), crops)


@dataclass
class FaceCrops:
    """What :func:`preprocess_faces` found, one row per input file.

    Attributes:
        images (np.ndarray): ``[M, size, size]`` uint8 crops (zeros where ``status != 0``).
        boxes (np.ndarray): ``[M, 4]`` int32 ``(x, y, w, h)`` in source pixels (-1 where none).
        source_shapes (np.ndarray): ``[M, 2]`` int32 source ``(H, W)`` (-1 where unreadable).
        status (np.ndarray): ``[M]`` int8, :data:`STATUS_OK`, :data:`STATUS_UNREADABLE` or
            :data:`STATUS_NO_FACE`.
        from_cache (bool): The crops were read from the cache; no image was decoded.
        cache_path (Path, optional): The cache entry used or written.
    """

    images: np.ndarray
    boxes: np.ndarray
    source_shapes: np.ndarray
    status: np.ndarray
    from_cache: bool = False
    cache_path: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        """``[M]`` bool: a face crop exists."""
        return self.status == STATUS_OK

    def reasons(self) -> list[str | None]:
        """Per file: ``None`` for a crop, else why there is none."""
        return status_reasons(self.status)

    def skipped(self, names: Sequence[str]) -> list[dict[str, str]]:
        """``{"file": name, "reason": why}`` for every file without a crop, as loaders report them.

        Args:
            names (sequence of str): How to name each file in the report, in the order of the crops.
        """
        return [
            {"file": str(name), "reason": reason} for name, reason in zip(names, self.reasons()) if reason is not None
        ]


def preprocess_faces(
    paths: Sequence[str | os.PathLike[str]],
    *,
    size: int = 96,
    detector: FaceDetector | None = None,
    interpolation: str = "area",
    cache_dir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    progress: bool = True,
    desc: str = "detecting faces",
) -> FaceCrops:
    """Detect, crop and resize the face in every file, with a cache.

    Args:
        paths (sequence of path): Image files.
        size (int, optional): Side of the square output crops. Default: 96
        detector (callable, optional): ``gray -> (x, y, w, h) or None``. ``None`` skips
            detection and takes the centred square of each image (for images that are
            already face crops). Loaders pass :class:`HaarFaceDetector` by default.
        interpolation (str, optional): ``"area"``, ``"linear"`` or ``"cubic"``. Default: ``"area"``
        cache_dir (str or Path, optional): Cache folder. Default: :func:`~captum_fau.data.cache.default_cache_dir`
        cache (bool, optional): Read and write the cache (only for detectors with a
            ``cache_token``, such as :class:`HaarFaceDetector`). Default: True
        progress (bool, optional): Show a progress bar. Default: True
        desc (str, optional): Progress-bar label.

    Returns:
        FaceCrops: crops, boxes and a status per file, in the order of ``paths``.

    Examples::

        >>> import tempfile, cv2, numpy as np, os
        >>> folder = tempfile.mkdtemp()
        >>> path = os.path.join(folder, "a.png")
        >>> _ = cv2.imwrite(path, np.full((50, 80), 128, np.uint8))
        >>> crops = preprocess_faces([path], size=32, detector=None, cache=False, progress=False)
        >>> crops.images.shape, crops.boxes[0].tolist()
        ((1, 32, 32), [15, 0, 50, 50])
    """
    int_at_least(size, "size", 8, hint="give the crop side in pixels (the reference uses 96).")
    if interpolation not in _INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}.")
    size = int(size)
    token = detector_token(detector)
    params = {"size": size, "detector": token or repr(detector), "interpolation": interpolation}
    store = ArrayCache(cache_dir, prefix="faces") if cache and token is not None else None
    key = cache_key({**params, "files": file_fingerprints(paths)}) if store is not None else ""
    if store is not None:
        hit = store.load(key)
        if hit is not None and len(hit.get("status", ())) == len(paths):
            return FaceCrops(
                images=hit["images"],
                boxes=hit["boxes"],
                source_shapes=hit["source_shapes"],
                status=hit["status"],
                from_cache=True,
                cache_path=store.path(key),
                params=params,
            )

    count = len(paths)
    images = np.zeros((count, size, size), np.uint8)
    boxes = np.full((count, 4), -1, np.int32)
    shapes = np.full((count, 2), -1, np.int32)
    status = np.zeros(count, np.int8)
    finder = OneFace(detector)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=not progress, leave=False)):
        found = file_faces(path, finder, size, interpolation)
        status[i], shapes[i] = found.status, found.shape
        if found.status == STATUS_OK:
            boxes[i], images[i] = found.boxes[0], found.crops[0]

    crops = FaceCrops(images=images, boxes=boxes, source_shapes=shapes, status=status, params=params)
    if store is not None:
        crops.cache_path = store.save(
            key, {"images": images, "boxes": boxes, "source_shapes": shapes, "status": status}
        )
        announce_cache(crops.cache_path, progress)
    return crops


def announce_cache(path: Any, progress: bool) -> None:
    """Say where a new cache entry went: the one write outside the caller's folders, and how to move or skip it."""
    if progress:
        tqdm.write(f"Face crops cached in {path} (set CAPTUM_FAU_CACHE to move the cache; "
                   "--no-cache / cache=False skips it).", file=sys.stderr)  # fmt: skip


def warn_skipped(dataset: str, skipped: Sequence[dict[str, str]], total: int, *, show: int = 20) -> None:
    """One warning that counts and lists what a loader dropped (nothing when ``skipped`` is empty).

    Args:
        dataset (str): Name used in the message.
        skipped (sequence of dict): ``{"file": ..., "reason": ...}`` entries.
        total (int): How many items the loader looked at.
        show (int, optional): List at most this many; the rest are in ``FaceSet.meta["skipped"]``.
    """
    if not skipped:
        return
    by_reason: dict[str, int] = {}
    for entry in skipped:
        by_reason[entry["reason"]] = by_reason.get(entry["reason"], 0) + 1
    counts = ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items()))
    listed = "; ".join(f"{e['file']} ({e['reason']})" for e in skipped[:show])
    more = f"; ... and {len(skipped) - show} more" if len(skipped) > show else ""
    warnings.warn(
        f"{dataset}: skipped {len(skipped)} of {total} items ({counts}): {listed}{more}. "
        "The full list is in FaceSet.meta['skipped'].",
        stacklevel=3,
    )


__all__ = [
    "Box",
    "FaceCrops",
    "FaceDetector",
    "FaceFinder",
    "FileFaces",
    "HaarFaceDetector",
    "OneFace",
    "STATUS_NO_FACE",
    "STATUS_OK",
    "STATUS_UNREADABLE",
    "centre_square",
    "check_image_files",
    "crop_resize",
    "detector_token",
    "file_faces",
    "image_format_problem",
    "preprocess_faces",
    "read_gray",
    "resize_stack",
    "status_reasons",
    "warn_skipped",
]
