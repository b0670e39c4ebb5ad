"""The photometric SynthFACS style: a shaded height-field head with skin texture and FACS appearance changes.

A face is the feature layout of the cartoon style (:class:`~captum_fau.synthfacs.layout.Identity`,
the same lid, brow and lip curves, so both styles show one subject with the same AUs) turned into an
image the way a camera sees a face:

* **Geometry** is a height field in canonical pixels: a head dome, the brow ridge, eye sockets, the
  nose (bridge, tip, wings), cheeks, lips and chin. FACS appearance changes are height changes:
  horizontal forehead wrinkles (AU1 inner, AU2 outer), vertical glabellar furrows (AU4), crow's
  feet and raised cheeks (AU6), the lower-lid bulge (AU7), wrinkles across the root of the nose
  (AU9), the nasolabial furrow deepened by AU9/AU10 (upper part) and AU12 (lower part), dimples
  (AU14), the fold below a depressed corner (AU15), the raised, wrinkled chin boss (AU17), skin
  bulging around pressed lips (AU24). Intensities A..E (1..5) scale each change.
* **Shading**: Lambertian under one directional light plus ambient, with the socket and mouth
  cavities darkened and the nose casting a shadow away from the light.
* **Albedo**: skin with multi-scale texture (pores, blotches, tone gradient), age cues (baseline
  forehead lines, deeper folds), textured brows and hair, eyes with sclera, iris, pupil, lids and
  lashes, lips, a dark mouth interior with upper and lower teeth once the lips part.
* **Camera**: yaw / pitch / roll within +-20 degrees (yaw and pitch move points by their height),
  a crop (``"detector"``: a CK+-style face-detector box; ``"tight"``: a FER2013-style tight crop),
  blur, sensor noise and, for most images, JPEG compression at a random quality.

Nothing here is fitted to a classifier: every constant comes from facial anatomy and the FACS
descriptions of appearance changes. Region masks (:func:`photo_regions`) are the cartoon style's
canonical regions with a margin, moved by the same camera warp, grown by the blur radius and, for
JPEG-compressed images, to whole 8x8 blocks, so they cover every pixel an AU can change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from captum_fau.synthfacs.layout import AU_INDEX, SYNTHFACS_AUS, Identity, _AUs, _face_outline, _jaw_region, _Layout
from captum_fau.synthfacs.photo_face import (
    PhotoIdentity,
    _brows,
    _eyes,
    _lower_face_wrinkles,
    _mouth,
    _photo_ellipses,
    _photo_mouth,
    _Scene,
    _upper_face_wrinkles,
    _zeros,
)
from captum_fau.synthfacs.photo_fields import banks, bump, clamp, crop, grid, polygon

#: Crop conventions of the photo style: a CK+-style face-detector box, or a FER2013-style tight crop.
CROPS: tuple[str, ...] = ("detector", "tight")
_PHOTO_STREAM = 0x9407  # separates the photo identity stream from the cartoon one
_REGION_MARGIN = 0.018  # region masks grow by this fraction of the side (wrinkle and shading tails)


@dataclass(frozen=True)
class PhotoNuisance:
    """Per-image camera and light of the photo style."""

    yaw: float  # degrees
    pitch: float
    roll: float
    zoom: float
    shift_x: float
    shift_y: float
    light: tuple[float, float, float]  # unit vector towards the light (x right, y down, z to the camera)
    ambient: float
    gain: float
    blur: float  # sigma in pixels at 96
    noise: float  # grey levels
    jpeg: int  # quality 1..100, 0 = not compressed
    background_slope: float


@lru_cache(maxsize=4096)
def sample_photo_identity(seed: int, subject: int) -> PhotoIdentity:
    """The photo-style look of ``subject`` under ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _PHOTO_STREAM, subject]))
    u = rng.uniform
    skin = u(95.0, 200.0)
    dark_hair = rng.random() < 0.85
    hair = u(15.0, 70.0) if dark_hair else u(110.0, 180.0)
    return PhotoIdentity(
        skin=skin,
        lip=skin * u(0.62, 0.78),
        hair=hair,
        brow=min(hair + u(0.0, 25.0), skin * 0.55),
        iris=u(20.0, 90.0),
        sclera=u(185.0, 225.0),
        age=float(u(0.0, 1.0) ** 1.5),
        texture=tuple(int(v) for v in rng.integers(0, 1 << 16, size=4)),  # type: ignore[arg-type]
        hair_style=u(0.0, 1.0),
        depth=u(0.85, 1.15),
        background=u(30.0, 225.0),
    )


def sample_photo_nuisance(rng: np.random.Generator, crop: str) -> PhotoNuisance:
    """Per-image camera and light (drawn after the labels from the image's generator)."""
    u = rng.uniform
    azimuth, elevation = u(0.0, 2.0 * np.pi), np.deg2rad(u(25.0, 70.0))
    light = (float(np.cos(elevation) * np.cos(azimuth)), float(np.cos(elevation) * np.sin(azimuth) - 0.25),
             float(np.sin(elevation)))  # fmt: skip
    norm = float(np.sqrt(sum(c * c for c in light)))
    tight = crop == "tight"
    return PhotoNuisance(
        yaw=float(np.clip(rng.normal(0.0, 8.0), -20.0, 20.0)),
        pitch=float(np.clip(rng.normal(0.0, 6.0), -20.0, 20.0)),
        roll=float(np.clip(rng.normal(0.0, 5.0), -20.0, 20.0)),
        zoom=u(1.30, 1.42) if tight else u(1.02, 1.14),
        shift_x=u(-0.025, 0.025),
        shift_y=u(-0.02, 0.02) + (0.035 if tight else 0.0),
        light=(light[0] / norm, light[1] / norm, light[2] / norm),
        ambient=u(0.30, 0.55),
        gain=u(0.85, 1.15),
        blur=u(0.35, 0.9),
        noise=u(1.0, 4.0),
        jpeg=int(rng.integers(40, 96)) if rng.random() < 0.7 else 0,
        background_slope=u(-40.0, 40.0),
    )


# ----------------------------------------------------------------------------- the subject


@lru_cache(maxsize=64)
def head_depth(ident: Identity, pid: PhotoIdentity, size: int) -> np.ndarray:
    """AU-independent depth (pixels towards the camera) of the head: dome, brow ridge, sockets, nose, cheeks."""
    s = float(size)
    lay = _Layout(ident, _AUs(np.zeros(len(SYNTHFACS_AUS))), size)
    x, y = grid(size)
    fw, fh = lay.fw * 1.08, lay.fh * 1.05
    r2 = ((x - np.float32(lay.cx)) / np.float32(fw)) ** 2 + ((y - np.float32(lay.cy)) / np.float32(fh)) ** 2
    depth = np.float32(0.5 * lay.fw) * clamp(1.0 - r2, 0.0, None) ** np.float32(0.6)
    d, ny = pid.depth * s, lay.nose_y
    # the nose: a ridge from between the eyes growing towards the tip, the tip, the wings
    t = clamp((y - np.float32(lay.eye_y)) / np.float32(ny - lay.eye_y), 0.0, 1.0)
    below = clamp(1.0 - (y - np.float32(ny)) / np.float32(0.03 * s), 0.0, 1.0) ** 2
    half = np.float32(0.03 * s) + np.float32(0.02 * s) * t
    across = np.square(clamp(1.0 - ((x - np.float32(lay.cx)) / half) ** 2, 0.0, None))
    depth += np.float32(0.03 * d) * t**1.5 * below * across
    bump(depth, lay.cx, ny - 0.008 * s, 0.03 * s, 0.028 * s, 0.016 * d)
    for side in (-1, 1):
        ex = lay.cx + side * lay.eye_dx
        bump(depth, lay.cx + side * 0.03 * s, ny, 0.022 * s, 0.018 * s, 0.008 * d)  # wings
        bump(depth, ex, lay.eye_y - 0.006 * s, 0.09 * s, 0.06 * s, -0.018 * d)  # socket
        bump(depth, ex + side * 0.015 * s, lay.eye_y + 0.085 * s, 0.07 * s, 0.05 * s, 0.012 * d)  # cheekbone
        bump(depth, ex, lay.brow_y - 0.006 * s, 0.08 * s, 0.028 * s, 0.008 * d)  # brow ridge
        bump(depth, ex, lay.eye_y + 0.004 * s, 0.05 * s, 0.03 * s, 0.006 * d)  # the eyeball under the lids
    bump(depth, lay.cx, lay.mouth_y, 0.11 * s, 0.06 * s, 0.012 * d)  # the teeth arch under the lips
    return depth


@lru_cache(maxsize=64)
def _look(ident: Identity, pid: PhotoIdentity, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AU-independent albedo of skin and hair, hair coverage, and the hair-behind-the-head coverage."""
    s = float(size)
    lay = _Layout(ident, _AUs(np.zeros(len(SYNTHFACS_AUS))), size)
    x, y = grid(size)
    fine, blotch, strands = (crop(b, pid.texture[0] + 5 * i, pid.texture[1] + 3 * i, size)
                             for i, b in enumerate(banks(size)))  # fmt: skip
    tone = np.float32(pid.skin) * (1.0 + np.float32(0.03 + 0.025 * pid.age) * fine + np.float32(0.035) * blotch)
    tone *= 1.0 - 0.07 * clamp((y - np.float32(lay.cy)) / np.float32(lay.fh), 0.0, 1.0)
    hair_tex = np.float32(pid.hair) * (1.0 + 0.12 * strands)
    behind = np.zeros((size, size), dtype=np.float32)
    bump(behind, lay.cx, lay.cy - 0.15 * lay.fh, lay.fw * (1.12 + 0.15 * pid.hair_style),
         lay.fh * (0.98 + 0.22 * pid.hair_style), 1.0)  # fmt: skip
    low = np.float32(lay.cy + lay.fh * (0.15 + 0.55 * pid.hair_style))
    behind = clamp(behind * 5.0, 0.0, 1.0) * clamp((low - y) / np.float32(0.05 * s), 0.0, 1.0)
    rel = (x - np.float32(lay.cx)) / np.float32(lay.fw)
    hairline = np.float32(lay.cy - ident.hairline * s) + np.float32(0.11 * s) * rel * rel
    cap = clamp((hairline - y) / np.float32(0.025 * s) + 0.25 * strands, 0.0, 1.0)
    return tone + cap * (hair_tex - tone), cap, behind * (0.85 + 0.15 * clamp(strands, -1.0, 1.0))


def _shade(height: np.ndarray, light: tuple[float, float, float], ambient: float) -> np.ndarray:
    """Lambertian shading of a height field under one directional light plus ambient (1 on a flat surface facing it)."""
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=1) * np.float32(0.5)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=1) * np.float32(0.5)
    np.clip(gx, -3.0, 3.0, out=gx)
    np.clip(gy, -3.0, 3.0, out=gy)
    lx, ly, lz = light
    lambert = (np.float32(lz) - np.float32(lx) * gx - np.float32(ly) * gy) / np.sqrt(gx * gx + gy * gy + 1.0)
    return np.float32(ambient) + np.float32((1.0 - ambient) / max(lz, 0.3)) * clamp(lambert, 0.0, None)


def _cast_shadow(base: np.ndarray, light: tuple[float, float, float], size: int, depth: float) -> np.ndarray:
    """Where the AU-independent head rises between a point and the light (nose, brow ridge): 0..1."""
    shift = 0.03 * size
    m = np.float32([[1.0, 0.0, -light[0] * shift], [0.0, 1.0, -light[1] * shift]])
    towards = cv2.warpAffine(base, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return clamp((towards - base - np.float32(0.01 * size)) / np.float32(0.02 * size * depth), 0.0, 1.0)


def _canonical(ident: Identity, pid: PhotoIdentity, aus: np.ndarray, size: int, pn: PhotoNuisance) -> np.ndarray:
    """The lit face in the canonical frame, float32 grey levels."""
    sc = _Scene(ident, pid, aus, size)
    lay, s = sc.lay, sc.s
    mouth = _photo_mouth(ident, lay, sc.a)
    base = head_depth(ident, pid, size)
    look, cap, behind = _look(ident, pid, size)
    albedo = look.copy()
    wrinkles = _upper_face_wrinkles(sc) + _lower_face_wrinkles(sc, mouth)
    height = base + wrinkles
    _brows(sc, albedo, height)
    _eyes(sc, albedo, height)
    cavity = _mouth(sc, albedo, height, mouth)
    ny = lay.nose_y - 0.005 * sc.a.aAU9 * s
    nostrils = _zeros(sc)
    for side in (-1, 1):
        bump(nostrils, lay.cx + side * ident.nostril_dx * s, ny + 0.009 * s, 0.012 * s, 0.0065 * s, 0.6)
    albedo *= 1.0 - nostrils
    lit = _shade(height, pn.light, pn.ambient)
    lit *= 1.0 - 0.45 * _cast_shadow(base, pn.light, size, pid.depth) * (1.0 - cap)
    lit *= (1.0 - 0.8 * cavity) * (1.0 + np.float32(0.05 / sc.k) * clamp(wrinkles, None, 0.0))  # creases trap light
    fx, fy = _face_outline(ident, lay)
    face = polygon(size, np.stack([fx, fy], axis=1))
    top = lay.cy + 0.4 * lay.fh
    neck = polygon(size, np.array([[lay.cx - 0.5 * lay.fw, top], [lay.cx + 0.5 * lay.fw, top],
                                   [lay.cx + 0.62 * lay.fw, 1.3 * s], [lay.cx - 0.62 * lay.fw, 1.3 * s]]))  # fmt: skip
    for side in (-1, 1):  # ears
        bump(neck, lay.cx + side * 0.99 * lay.fw, lay.eye_y + 0.06 * s, 0.035 * s, 0.07 * s, 6.0)
    np.clip(neck, 0.0, 1.0, out=neck)
    x = grid(size)[0]
    background = np.float32(pid.background) + np.float32(pn.background_slope / s) * (x - np.float32(0.5 * s))
    shadowed = lit * np.float32(0.6)
    head = face * (albedo * lit) + (1.0 - face) * (neck * (look * shadowed) + (1.0 - neck) * background)
    hair = behind * (1.0 - face) * (1.0 - 0.5 * neck * (1.0 - cap))
    return head + hair * (np.float32(pid.hair) * shadowed - head)


@lru_cache(maxsize=4)  # an image's pixels and its masks use the same maps
def _camera_maps(ident: Identity, pid: PhotoIdentity, pn: PhotoNuisance, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output pixel, the canonical point it shows: roll / zoom / shift inverted, then yaw and pitch
    undone with the head's depth there (one fixed-point step)."""
    s = float(size)
    x, y = grid(size)
    cx, cy = ident.cx * s, (ident.cy - 0.02) * s
    ox, oy = 0.5 * s + pn.shift_x * s, 0.5 * s + pn.shift_y * s
    c, sn = np.cos(np.deg2rad(pn.roll)), np.sin(np.deg2rad(pn.roll))
    u, v = (x - np.float32(ox)) / np.float32(pn.zoom), (y - np.float32(oy)) / np.float32(pn.zoom)
    xr, yr = np.float32(c) * u + np.float32(sn) * v, -np.float32(sn) * u + np.float32(c) * v
    cyaw, syaw = np.cos(np.deg2rad(pn.yaw)), np.sin(np.deg2rad(pn.yaw))
    cpit, spit = np.cos(np.deg2rad(pn.pitch)), np.sin(np.deg2rad(pn.pitch))
    mx, my = xr / np.float32(cyaw) + np.float32(cx), yr / np.float32(cpit) + np.float32(cy)
    z = cv2.remap(head_depth(ident, pid, size), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mx = (xr - z * np.float32(syaw)) / np.float32(cyaw) + np.float32(cx)
    my = (yr - z * np.float32(spit)) / np.float32(cpit) + np.float32(cy)
    return mx, my


def draw_photo(
    ident: Identity, pid: PhotoIdentity, pn: PhotoNuisance, aus: np.ndarray, size: int, noise: np.ndarray | None
) -> np.ndarray:
    """Render one photo-style face as uint8 ``[size, size]``.

    Args:
        ident (Identity): The subject's feature layout (shared with the cartoon style).
        pid (PhotoIdentity): The subject's photo look.
        pn (PhotoNuisance): Camera and light of this image.
        aus (np.ndarray): ``[J]`` AU intensities 0..5 in :data:`SYNTHFACS_AUS` order.
        size (int): Image side in pixels.
        noise (np.ndarray, optional): ``[size, size]`` float32 standard normal noise; ``None`` for none.

    Returns:
        np.ndarray: uint8 ``[size, size]``.
    """
    canonical = _canonical(ident, pid, aus, size, pn)
    mx, my = _camera_maps(ident, pid, pn, size)
    img = cv2.remap(canonical, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    img = cv2.GaussianBlur(img, (0, 0), pn.blur * size / 96.0)
    img *= np.float32(pn.gain)
    if noise is not None:
        img += np.float32(pn.noise) * noise
    np.clip(img, 0.0, 255.0, out=img)
    out = (img + 0.5).astype(np.uint8)
    if pn.jpeg:
        out = cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, pn.jpeg])[1], cv2.IMREAD_GRAYSCALE)
    return out


def _blocks(mask: np.ndarray, block: int = 8) -> np.ndarray:
    """Grow a mask to the whole JPEG blocks it touches."""
    h, w = mask.shape
    ph, pw = -h % block, -w % block
    hit = np.pad(mask, ((0, ph), (0, pw))).reshape((h + ph) // block, block, (w + pw) // block, block).any(axis=(1, 3))
    return np.repeat(np.repeat(hit, block, axis=0), block, axis=1)[:h, :w]


def photo_regions(ident: Identity, pid: PhotoIdentity, pn: PhotoNuisance, aus: np.ndarray, size: int) -> np.ndarray:
    """Boolean ``[J, size, size]`` masks of where each present AU changes the photo-style image (absent: all False)."""
    a = _AUs(aus)
    masks = np.zeros((len(SYNTHFACS_AUS), size, size), dtype=bool)
    regions = _photo_ellipses(ident, a, size)
    if not regions:
        return masks
    mx, my = _camera_maps(ident, pid, pn, size)
    margin = _REGION_MARGIN * size
    radius = int(np.ceil(4.0 * pn.blur * size / 96.0)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    for au, ellipses in regions.items():
        canvas = np.zeros((size, size), dtype=np.uint8)
        for ecx, ecy, ax, ay in ellipses:
            cv2.ellipse(canvas, (int(round(ecx * 16)), int(round(ecy * 16))),
                        (int(round((ax + margin) * 16)), int(round((ay + margin) * 16))), 0.0, 0.0, 360.0, 1, -1,
                        cv2.LINE_8, 4)  # fmt: skip
        if au in ("AU26", "AU27"):
            jaw = np.rint(_jaw_region(ident, a, size, au) * 16).astype(np.int32)
            cv2.fillPoly(canvas, [jaw], 1, cv2.LINE_8, 4)
            cv2.polylines(canvas, [jaw], True, 1, max(2, int(round(0.05 * size))), cv2.LINE_8, 4)
        canvas = cv2.dilate(canvas, np.ones((3, 3), np.uint8))  # bilinear sampling reads one pixel further
        warped = cv2.remap(canvas, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        warped = cv2.dilate(cv2.dilate(warped, np.ones((3, 3), np.uint8)), kernel).astype(bool)
        masks[AU_INDEX[au]] = _blocks(warped) if pn.jpeg else warped
    return masks


__all__ = [
    "CROPS",
    "PhotoIdentity",
    "PhotoNuisance",
    "draw_photo",
    "head_depth",
    "photo_regions",
    "sample_photo_identity",
    "sample_photo_nuisance",
]
