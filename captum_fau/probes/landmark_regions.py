"""AU regions on real photos, from the 68 facial landmarks that OpenFace and py-feat CSVs carry.

Landmarks follow the iBUG 300-W 68-point scheme (0-16 jaw, 17-21 the subject's right brow, 22-26
left brow, 27-30 nose bridge, 31-35 lower nose, 36-41 right eye, 42-47 left eye, 48-59 outer lips,
60-67 inner lips); OpenFace and py-feat name their columns ``x_0..x_67`` and ``y_0..y_67`` in image
pixels. Each AU's region is the union of the convex hulls of the landmark groups in
:data:`AU_LANDMARK_REGIONS`, each hull dilated by ``margin`` times the inter-ocular distance (the
distance between the eye centres), so that regions scale with the face. The table follows where FACS
says each AU moves the face (brows and forehead for AU1/2/4, lids for AU5/7, cheeks for AU6, nose for
AU9, lip corners for AU12/14/20, chin for AU17, the mouth for AU23-27). "The subject's right" is the
image's left in a frontal photo: R12/R14 use landmarks 48/60 (the image-left lip corner).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from captum_fau.errors import LabelError

#: AU -> (landmark index groups, margin as a fraction of the inter-ocular distance).
AU_LANDMARK_REGIONS: dict[str, tuple[tuple[tuple[int, ...], ...], float]] = {
    "AU1": (((20, 21, 22, 23),), 0.3),
    "AU2": (((17, 18, 19), (24, 25, 26)), 0.3),
    "AU4": (((19, 20, 21, 22, 23, 24, 27),), 0.2),
    "AU5": (((36, 37, 38, 39), (42, 43, 44, 45)), 0.1),
    "AU6": (((1, 2, 3, 31, 40, 41, 36), (15, 14, 13, 35, 47, 46, 45)), 0.1),
    "AU7": (((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47)), 0.1),
    "AU9": (((21, 22, 27, 28, 29, 30, 31, 35),), 0.1),
    "AU10": (((31, 32, 33, 34, 35, 48, 49, 50, 51, 52, 53, 54),), 0.05),
    "AU12": (((48, 49, 59, 60), (54, 53, 55, 64)), 0.15),
    "AU14": (((48, 49, 59, 60), (54, 53, 55, 64)), 0.15),
    "AU15": (((48, 59, 58, 5, 6), (54, 55, 56, 11, 10)), 0.1),
    "AU16": (((55, 56, 57, 58, 59, 7, 8, 9),), 0.05),
    "AU17": (((57, 58, 56, 7, 8, 9),), 0.1),
    "AU20": (((48, 4, 5, 59), (54, 12, 11, 55)), 0.1),
    "AU23": ((tuple(range(48, 60)),), 0.05),
    "AU24": ((tuple(range(48, 60)),), 0.05),
    "AU25": ((tuple(range(48, 68)),), 0.05),
    "AU26": ((tuple(range(48, 68)) + (6, 7, 8, 9, 10),), 0.1),
    "AU27": ((tuple(range(48, 68)) + (6, 7, 8, 9, 10),), 0.1),
    "R12": (((48, 49, 59, 60),), 0.15),
    "R14": (((48, 49, 59, 60),), 0.15),
}

X_COLUMNS: tuple[str, ...] = tuple(f"x_{i}" for i in range(68))
Y_COLUMNS: tuple[str, ...] = tuple(f"y_{i}" for i in range(68))


def landmarks_from_columns(table: Mapping[str, Any]) -> np.ndarray:
    """``[N, 68, 2]`` (x, y) landmarks from a column table (``x_0..x_67``, ``y_0..y_67``; names stripped).

    Raises:
        LabelError: columns missing (named), or values that are not finite numbers.
    """
    columns = {str(k).strip(): v for k, v in table.items()}
    missing = [c for c in X_COLUMNS + Y_COLUMNS if c not in columns]
    if missing:
        shown = ", ".join(missing[:6]) + (f", ... ({len(missing)} missing)" if len(missing) > 6 else "")
        raise LabelError(
            f"AU regions from landmarks need the 68-point columns x_0..x_67 and y_0..y_67 (OpenFace, py-feat); "
            f"missing: {shown}. Export landmarks with OpenFace's FeatureExtraction -2Dfp or py-feat's detect_image."
        )
    xs = np.stack([np.asarray(columns[c], dtype=np.float64) for c in X_COLUMNS], -1)
    ys = np.stack([np.asarray(columns[c], dtype=np.float64) for c in Y_COLUMNS], -1)
    points = np.stack([xs, ys], -1)
    if not np.isfinite(points).all():
        rows = sorted(set(np.argwhere(~np.isfinite(points))[:, 0].tolist()))[:5]
        raise LabelError(f"landmark values must be finite numbers; rows {rows} have missing or non-numeric values.")
    return points


def to_crop(points: np.ndarray, boxes: np.ndarray, image_sizes: np.ndarray, size: int) -> np.ndarray:
    """Map landmarks ``[N, 68, 2]`` from image pixels into ``size`` x ``size`` face crops.

    Args:
        points (np.ndarray): Landmarks in the original images' pixels.
        boxes (np.ndarray): ``[N, 4]`` face boxes ``(x0, y0, x1, y1)`` the crops were cut from.
        image_sizes (np.ndarray): ``[N, 2]`` ``(height, width)`` of the original images.
        size (int): The crop's side.

    Raises:
        LabelError: a landmark outside its image (wrong columns, or coordinates of another image size).
    """
    points = np.asarray(points, np.float64)
    h = np.asarray(image_sizes, np.float64)[:, None, 0]
    w = np.asarray(image_sizes, np.float64)[:, None, 1]
    outside = (points[..., 0] < 0) | (points[..., 0] > w) | (points[..., 1] < 0) | (points[..., 1] > h)
    if outside.any():
        rows = sorted(set(np.argwhere(outside)[:, 0].tolist()))[:5]
        raise LabelError(
            f"landmarks of images {rows} lie outside the image; the x_*/y_* columns must be pixel coordinates "
            "of the same image the face was cropped from (not normalised, not of a resized copy)."
        )
    b = np.asarray(boxes, np.float64)
    scale_x = size / (b[:, 2] - b[:, 0])
    scale_y = size / (b[:, 3] - b[:, 1])
    out = np.empty_like(points)
    out[..., 0] = (points[..., 0] - b[:, None, 0]) * scale_x[:, None]
    out[..., 1] = (points[..., 1] - b[:, None, 1]) * scale_y[:, None]
    return out


def region_masks(points: np.ndarray, aus: Sequence[str], size: int) -> np.ndarray:
    """bool ``[N, len(aus), size, size]``: each AU's region from crop landmarks ``[N, 68, 2]``.

    Raises:
        LabelError: an AU without a landmark region (the message lists those with one).
    """
    unknown = [a for a in aus if a not in AU_LANDMARK_REGIONS]
    if unknown:
        raise LabelError(f"no landmark region for {unknown}; regions exist for {', '.join(AU_LANDMARK_REGIONS)}.")
    points = np.asarray(points, np.float64)
    out = np.zeros((len(points), len(aus), size, size), bool)
    for n, p in enumerate(points):
        iod = float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0)))
        for j, au in enumerate(aus):
            groups, margin = AU_LANDMARK_REGIONS[au]
            canvas = np.zeros((size, size), np.uint8)
            for group in groups:
                hull = cv2.convexHull(np.round(p[list(group)] * 16).astype(np.int32))
                cv2.fillConvexPoly(canvas, hull, 1, lineType=cv2.LINE_8, shift=4)
            radius = max(0, int(round(margin * iod)))
            if radius:
                canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
            out[n, j] = canvas > 0
    return out


__all__ = ["AU_LANDMARK_REGIONS", "X_COLUMNS", "Y_COLUMNS", "landmarks_from_columns", "region_masks", "to_crop"]
