"""Field primitives of the photo style: compact bumps, grooves and bands evaluated only on their bounding box.

Every primitive is exactly zero outside its support, so an AU's height or albedo change never leaks
beyond the region it is drawn in, and is evaluated only on the pixels of its bounding box (a face is
about fifty of them: evaluating each on the whole image would cost ten times more).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

Box = tuple[slice, slice]


@lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``x`` (columns) and ``y`` (rows), float32 ``[size, size]`` (read-only views)."""
    g = np.arange(size, dtype=np.float32)
    return np.broadcast_to(g[None, :], (size, size)), np.broadcast_to(g[:, None], (size, size))


@lru_cache(maxsize=8)
def banks(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed texture banks, 4x the side, unit std: fine pores, blotches, hair strands (vertical streaks)."""
    rng = np.random.default_rng(0x7E57)
    side = 4 * size
    white = rng.standard_normal((side, side), dtype=np.float32)
    k = size / 96.0
    fine = cv2.GaussianBlur(white, (0, 0), 0.6 * k)
    blotch = cv2.GaussianBlur(rng.standard_normal((side, side), dtype=np.float32), (0, 0), 5.0 * k)
    strands = cv2.GaussianBlur(white, (0, 0), sigmaX=0.45 * k, sigmaY=3.5 * k)
    return tuple(b / b.std() for b in (fine, blotch, strands))  # type: ignore[return-value]


def clamp(a: np.ndarray, lo: float | None, hi: float | None = None) -> np.ndarray:
    """``np.clip`` without its dispatch overhead (the same values; it is called thousands of times per batch)."""
    out = a if lo is None else np.maximum(a, np.float32(lo))
    return out if hi is None else np.minimum(out, np.float32(hi))


def crop(bank: np.ndarray, oy: int, ox: int, size: int) -> np.ndarray:
    """A ``[size, size]`` view of ``bank`` at a seeded offset."""
    span = bank.shape[0] - size
    return bank[oy % span : oy % span + size, ox % span : ox % span + size]


def box(size: int, x0: float, x1: float, y0: float, y1: float) -> Box | None:
    """The pixel window covering ``[x0, x1] x [y0, y1]``, clipped to the image; None when empty."""
    ix0, ix1 = max(0, math.floor(x0)), min(size, math.ceil(x1) + 1)
    iy0, iy1 = max(0, math.floor(y0)), min(size, math.ceil(y1) + 1)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    return slice(iy0, iy1), slice(ix0, ix1)


def bump(out: np.ndarray, cx: float, cy: float, rx: float, ry: float, amp: float) -> None:
    """Add ``amp * (1 - r^2)^2`` inside the ellipse (exactly 0 outside) to ``out``."""
    b = box(out.shape[0], cx - rx, cx + rx, cy - ry, cy + ry)
    if b is None:
        return
    x, y = grid(out.shape[0])
    r2 = ((x[b] - np.float32(cx)) * np.float32(1.0 / rx)) ** 2 + ((y[b] - np.float32(cy)) * np.float32(1.0 / ry)) ** 2
    out[b] += np.float32(amp) * np.square(clamp(1.0 - r2, 0.0, None))


def segment(out: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], width: float, amp: float) -> None:
    """Add a compact groove (``amp < 0``) or ridge along ``p0 -> p1``, ``width`` pixels to each side."""
    b = box(out.shape[0], min(p0[0], p1[0]) - width, max(p0[0], p1[0]) + width,
            min(p0[1], p1[1]) - width, max(p0[1], p1[1]) + width)  # fmt: skip
    if b is None:
        return
    x, y = grid(out.shape[0])
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    length = max(math.hypot(dx, dy), 1e-6)
    ux, uy = dx / length, dy / length
    rx, ry = x[b] - np.float32(p0[0]), y[b] - np.float32(p0[1])
    t = (rx * np.float32(ux) + ry * np.float32(uy)) * np.float32(2.0 / length) - 1.0
    d = (ry * np.float32(ux) - rx * np.float32(uy)) * np.float32(1.0 / width)
    out[b] += np.float32(amp) * np.square(clamp(1.0 - d * d, 0.0, None)) * clamp(1.0 - t * t, 0.0, None)


def hgroove(out: np.ndarray, yc: float, xc: float, half: float, width: float, bend: float, amp: float) -> None:
    """Add a horizontal groove at row ``yc``, ``xc +- half`` long, its ends bent by ``bend`` pixels."""
    b = box(out.shape[0], xc - half, xc + half, yc - width + min(bend, 0.0), yc + width + max(bend, 0.0))
    if b is None:
        return
    x, y = grid(out.shape[0])
    t = (x[b] - np.float32(xc)) * np.float32(1.0 / half)
    across = (y[b] - np.float32(yc) - np.float32(bend) * t * t) * np.float32(1.0 / width)
    out[b] += np.float32(amp) * np.square(clamp(1.0 - across * across, 0.0, None)) * clamp(1.0 - t * t, 0.0, None)


def band(
    size: int, xs: np.ndarray, top: np.ndarray, low: np.ndarray, soft: float = 0.5
) -> tuple[Box, np.ndarray] | None:
    """Coverage of the area between two curves sampled at increasing ``xs``, anti-aliased over ``2 soft`` pixels.

    Returns:
        tuple or None: the window and the coverage on it (None when the area misses the image).
    """
    b = box(size, float(xs[0]), float(xs[-1]), float(top.min()) - soft, float(low.max()) + soft)
    if b is None:
        return None
    x, y = grid(size)
    col = x[0, b[1]]
    t = np.interp(col, xs, top, left=np.inf, right=np.inf).astype(np.float32)
    lo = np.interp(col, xs, low, left=-np.inf, right=-np.inf).astype(np.float32)
    yy = y[b]
    scale = np.float32(0.5 / soft)
    cover = clamp((yy - t[None, :]) * scale + 0.5, 0.0, 1.0) * clamp((lo[None, :] - yy) * scale + 0.5, 0.0, 1.0)
    return b, cover


def paint(
    albedo: np.ndarray, found: tuple[Box, np.ndarray] | None, value: np.ndarray | float, alpha: float = 1.0
) -> None:
    """Blend ``value`` (a full-size field or a number) over ``albedo`` with a band's coverage."""
    if found is None:
        return
    b, cover = found
    v = value[b] if isinstance(value, np.ndarray) else np.float32(value)
    albedo[b] += np.float32(alpha) * cover * (v - albedo[b])


def window(size: int, ellipses: list[tuple[float, float, float, float]]) -> np.ndarray:
    """1 deep inside the ellipses, falling to exactly 0 at their border (gates an AU's changes)."""
    out = np.zeros((size, size), dtype=np.float32)
    x, y = grid(size)
    for ecx, ecy, ax, ay in ellipses:
        b = box(size, ecx - ax, ecx + ax, ecy - ay, ecy + ay)
        if b is None:
            continue
        r2 = (((x[b] - np.float32(ecx)) * np.float32(1.0 / ax)) ** 2
              + ((y[b] - np.float32(ecy)) * np.float32(1.0 / ay)) ** 2)  # fmt: skip
        np.maximum(out[b], np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)), out=out[b])
    return out


def polygon(size: int, points: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a polygon, float32 ``[size, size]``."""
    canvas = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(canvas, [np.rint(points * 16.0).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return canvas.astype(np.float32) * np.float32(1.0 / 255.0)


__all__ = ["band", "banks", "box", "bump", "clamp", "crop", "grid", "hgroove", "paint", "polygon", "segment", "window"]
