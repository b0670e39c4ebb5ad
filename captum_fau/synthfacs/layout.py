"""The layout of a SynthFACS face: who it is, where its features sit, where each AU acts.

* an :class:`Identity` (face shape, feature sizes and positions, tones),
  sampled from ``(seed, subject)``;
* a :class:`Nuisance` (in-plane pose, lighting, blur, sensor noise level),
  sampled per image;
* an AU intensity vector (0..5) in :data:`SYNTHFACS_AUS` order, read through ``_AUs``;
* ``_Layout``: the feature positions of one face with its AUs applied, the face outline and the mouth
  curves, the pose transform, and the ellipses where each AU changes the face (the region masks' source).

Both styles draw from this layout (:mod:`captum_fau.synthfacs.geometry` the cartoon,
:mod:`captum_fau.synthfacs.photo` the photo style). Coordinates are fractions of the image side until
drawing, where they are scaled to pixels and given 4 bits of sub-pixel precision (OpenCV's ``shift``).

Sides: FACS names unilateral AUs by the *subject's* side. In a frontal image
the subject's right half is the image's left half, so ``R12`` / ``R14`` act
on the image's left (``side = -1`` below).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

#: The action units SynthFACS renders, in the column order of every AU array.
SYNTHFACS_AUS: tuple[str, ...] = (
    "AU1",
    "AU2",
    "AU4",
    "AU5",
    "AU6",
    "AU7",
    "AU9",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU17",
    "AU20",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
    "AU27",
    "R12",
    "R14",
)
AU_INDEX: dict[str, int] = {au: j for j, au in enumerate(SYNTHFACS_AUS)}

_SHIFT = 4
_ONE = float(1 << _SHIFT)
_AA = cv2.LINE_AA
_SUBJECT_STREAM = 0x5F1D  # separates identity streams from per-image streams of the same seed


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Identity:
    """What stays fixed for one subject. Lengths are fractions of the image side."""

    cx: float
    cy: float
    face_w: float  # half-width of the face
    face_h: float  # half-height of the face
    chin_taper: float
    eye_dx: float  # eye centre distance from the midline
    eye_dy: float  # eye centre height above the face centre
    eye_w: float  # eye half-width
    lid_up: float  # upper lid height above the eye centre
    lid_lo: float  # lower lid depth below the eye centre
    eye_tilt: float
    iris_r: float
    brow_gap: float
    brow_in: float
    brow_out: float
    brow_th: float
    brow_arch: float
    nose_dy: float
    nostril_dx: float
    mouth_dy: float
    mouth_w: float
    lip_up: float
    lip_lo: float
    bow: float
    hairline: float
    hair_volume: float
    fold_depth: float
    skin: float
    lip_tone: float
    hair_tone: float
    brow_tone: float
    sclera: float
    iris_tone: float
    background: float
    chin_dots: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Nuisance:
    """What varies from image to image of one subject, besides the AUs."""

    angle: float  # in-plane rotation, degrees
    scale: float
    shift_x: float
    shift_y: float
    gaze: float
    light_angle: float
    light_strength: float
    gain: float
    bias: float
    noise: float  # sensor noise std, grey levels
    blur: float  # Gaussian blur sigma, pixels


@lru_cache(maxsize=4096)
def sample_identity(seed: int, subject: int) -> Identity:
    """The identity of ``subject`` under ``seed`` (cached: subjects repeat across images)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SUBJECT_STREAM, subject]))
    u = rng.uniform
    skin = u(115.0, 205.0)
    background = u(25.0, 235.0)
    if abs(background - skin) < 35.0:  # keep the face outline visible
        background = skin - 60.0 if skin > 130.0 else skin + 60.0
    hair = u(15.0, 110.0) if rng.random() < 0.8 else u(120.0, 170.0)
    return Identity(
        cx=0.5 + u(-0.015, 0.015),
        cy=0.5 + u(-0.012, 0.012),
        face_w=u(0.31, 0.36),
        face_h=u(0.44, 0.49),
        chin_taper=u(0.12, 0.30),
        eye_dx=u(0.138, 0.160),
        eye_dy=u(0.085, 0.110),
        eye_w=u(0.068, 0.080),
        lid_up=u(0.030, 0.037),
        lid_lo=u(0.018, 0.024),
        eye_tilt=u(-0.004, 0.006),
        iris_r=u(0.031, 0.036),
        brow_gap=u(0.072, 0.086),
        brow_in=u(0.055, 0.070),
        brow_out=u(0.070, 0.088),
        brow_th=u(0.020, 0.033),
        brow_arch=u(0.006, 0.016),
        nose_dy=u(0.075, 0.100),
        nostril_dx=u(0.026, 0.034),
        mouth_dy=u(0.195, 0.225),
        mouth_w=u(0.075, 0.092),
        lip_up=u(0.014, 0.021),
        lip_lo=u(0.019, 0.028),
        bow=u(0.15, 0.45),
        hairline=u(0.30, 0.37),
        hair_volume=u(1.02, 1.14),
        fold_depth=u(4.0, 14.0),
        skin=skin,
        lip_tone=skin - u(30.0, 60.0),
        hair_tone=hair,
        brow_tone=min(hair, skin - 55.0) - u(0.0, 20.0),
        sclera=min(240.0, max(skin + u(30.0, 60.0), u(175.0, 215.0))),
        iris_tone=u(15.0, 75.0),
        background=float(np.clip(background, 5.0, 250.0)),
        chin_dots=tuple((float(a), float(b)) for a, b in rng.uniform(-1.0, 1.0, size=(7, 2))),
    )


def sample_nuisance(rng: np.random.Generator) -> Nuisance:
    """Per-image pose, lighting and sensor parameters (drawn first from the image's generator)."""
    u = rng.uniform
    return Nuisance(
        angle=u(-4.0, 4.0),
        scale=u(0.96, 1.04),
        shift_x=u(-0.02, 0.02),
        shift_y=u(-0.02, 0.02),
        gaze=u(-0.006, 0.006),
        light_angle=u(0.0, 2.0 * np.pi),
        light_strength=u(0.0, 0.30),
        gain=u(0.88, 1.12),
        bias=u(-10.0, 10.0),
        noise=u(0.5, 3.5),
        blur=u(0.3, 0.6),
    )


# ----------------------------------------------------------------------------- AU readout


class _AUs:
    """Named access to an AU vector, with the unilateral variants folded into sides."""

    __slots__ = tuple(f"a{au}" for au in SYNTHFACS_AUS)

    def __init__(self, aus: np.ndarray) -> None:
        for au, value in zip(SYNTHFACS_AUS, np.asarray(aus, dtype=np.float64).tolist()):
            setattr(self, f"a{au}", float(value))

    def get(self, au: str) -> float:
        return getattr(self, f"a{au}")

    def au12(self, side: int) -> float:
        """Lip corner puller on ``side`` (-1 image left = subject right, +1 image right)."""
        return max(self.aAU12, self.aR12) if side < 0 else self.aAU12

    def au14(self, side: int) -> float:
        return max(self.aAU14, self.aR14) if side < 0 else self.aAU14

    def jaw(self) -> float:
        """How far the jaw drops (fraction of the image side)."""
        return 0.010 * self.aAU26 + 0.024 * self.aAU27


# ----------------------------------------------------------------------------- layout


class _Layout:
    """Feature positions of one face with its AUs applied, in pixels (canonical, before pose)."""

    def __init__(self, ident: Identity, aus: _AUs, size: int, gaze: float = 0.0) -> None:
        s = float(size)
        self.s = s
        self.cx, self.cy = ident.cx * s, ident.cy * s
        self.fw, self.fh = ident.face_w * s, ident.face_h * s
        self.eye_y = self.cy - ident.eye_dy * s
        self.eye_dx = ident.eye_dx * s
        self.brow_y = self.eye_y - ident.brow_gap * s
        self.nose_y = self.cy + ident.nose_dy * s
        self.mouth_y = self.cy + ident.mouth_dy * s
        self.mouth_w = ident.mouth_w * s
        self.chin_y = self.cy + self.fh
        self.jaw = aus.jaw() * s
        self.gaze = gaze * s


_T = np.linspace(0.0, 2.0 * np.pi, 56, endpoint=False)
_COS, _SIN = np.cos(_T), np.sin(_T)
_U8 = np.linspace(0.0, 1.0, 8)
_X9 = np.linspace(-1.0, 1.0, 9)
_X13 = np.linspace(-1.0, 1.0, 13)
_U5 = np.linspace(0.0, 1.0, 5)
_ALA_ARC = np.linspace(-0.6 * np.pi, 0.6 * np.pi, 7)
_DIMPLE_ARC = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 6)


def _ip(points: np.ndarray) -> np.ndarray:
    return np.rint(points * _ONE).astype(np.int32)


def _xy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), 2))
    out[:, 0] = x
    out[:, 1] = y
    return out


def _face_outline(ident: Identity, lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """The face outline: an egg, narrower at the chin; below the mouth it follows the jaw down."""
    lower = np.clip(_SIN, 0.0, None)
    x = lay.cx + lay.fw * _COS * (1.0 - ident.chin_taper * lower**2)
    y = lay.cy + lay.fh * _SIN
    drop = np.clip((y - lay.mouth_y) / max(lay.chin_y - lay.mouth_y, 1e-6), 0.0, 1.0)
    return x, y + lay.jaw * drop


def _mouth_shape(ident: Identity, lay: _Layout, aus: _AUs) -> dict[str, np.ndarray]:
    """Outline curves of the lips and the opening between them, in pixels."""
    s = lay.s
    mx, my = lay.cx, lay.mouth_y
    corner_x, corner_y = [], []
    for side in (-1, 1):
        a12, a14 = aus.au12(side), aus.au14(side)
        out = ident.mouth_w + 0.004 * a12 + 0.009 * aus.aAU20 - 0.004 * aus.aAU23 - 0.002 * aus.aAU24
        out -= 0.0035 * a14 + 0.004 * aus.aAU27
        corner_x.append(mx + side * out * s)
        corner_y.append(my + (-0.010 * a12 + 0.008 * aus.aAU15 + 0.0015 * aus.aAU20 + 0.0015 * a14) * s)
    xr = _X13
    x = np.where(xr < 0, mx + xr * (mx - corner_x[0]), mx + xr * (corner_x[1] - mx))
    # where the lips meet: the corners pull the lateral parts, AU17 arches the middle up
    line = my + np.where(xr < 0, corner_y[0] - my, corner_y[1] - my) * xr**2
    line = line - 0.005 * s * aus.aAU17 * (1.0 - xr**2)
    thin = (
        1.0
        - 0.085 * aus.aAU23
        - 0.095 * aus.aAU24
        - 0.04 * aus.aAU20
        - 0.04 * aus.aAU27
        - 0.02 * max(aus.aAU12, aus.aR12)
    )
    thin = max(0.12, thin)
    body = (1.0 - xr**2) ** 0.6
    bow = 1.0 - ident.bow * np.exp(-((xr / 0.16) ** 2))
    part = (1.0 - xr**2) ** 0.7
    lift = 0.0060 * aus.aAU10 * np.clip(1.0 - (np.abs(xr) - 0.35) ** 2 * 2.5, 0.0, 1.0)
    gap_up = (0.0030 * aus.aAU25 + 0.004 * aus.aAU27) * s * part + lift * s * part**0.5
    gap_lo = (0.0035 * aus.aAU25) * s * part + lay.jaw * part
    upper_lip_top = line - gap_up - ident.lip_up * s * thin * body * bow - 0.0025 * s * aus.aAU10 * body
    upper_lip_low = line - gap_up
    lower_lip_top = line + gap_lo
    lower_lip_low = line + gap_lo + ident.lip_lo * s * thin * body * (1.0 + 0.08 * aus.aAU17)
    return {
        "x": x,
        "upper_top": upper_lip_top,
        "upper_low": upper_lip_low,
        "lower_top": lower_lip_top,
        "lower_low": lower_lip_low,
        "corners": np.array([[corner_x[0], corner_y[0]], [corner_x[1], corner_y[1]]]),
    }


def pose_matrix(ident: Identity, nuis: Nuisance, size: int) -> np.ndarray:
    """The 2x3 similarity transform from the canonical drawing to the image."""
    m = cv2.getRotationMatrix2D((ident.cx * size, ident.cy * size), nuis.angle, nuis.scale)
    m[0, 2] += nuis.shift_x * size
    m[1, 2] += nuis.shift_y * size
    return m


# ----------------------------------------------------------------------------- regions


def _region_ellipses(ident: Identity, aus: _AUs, size: int) -> dict[str, list[tuple[float, float, float, float]]]:
    """Per present AU, the ellipses ``(cx, cy, ax, ay)`` in canonical pixels where it changes the face."""
    lay = _Layout(ident, aus, size)
    s, cx = lay.s, lay.cx
    ex = (cx - lay.eye_dx, cx + lay.eye_dx)
    out: dict[str, list[tuple[float, float, float, float]]] = {}

    def add(au: str, *ellipses: tuple[float, float, float, float]) -> None:
        if aus.get(au) > 0:
            out[au] = list(ellipses)

    by, ey = lay.brow_y, lay.eye_y
    add(
        "AU1",
        (cx, by - 0.060 * s, 0.085 * s, 0.072 * s),
        *[(e - side * 0.035 * s, by - 0.010 * s, 0.075 * s, 0.045 * s) for e, side in zip(ex, (-1, 1))],
    )
    add("AU2", *[(e + side * 0.03 * s, by - 0.040 * s, 0.075 * s, 0.070 * s) for e, side in zip(ex, (-1, 1))])
    add("AU4", (cx, by + 0.010 * s, lay.eye_dx + 0.075 * s, 0.050 * s))
    add("AU5", *[(e, ey - 0.020 * s, ident.eye_w * s + 0.014 * s, 0.055 * s) for e in ex])
    add(
        "AU6",
        *[
            (e + side * 0.010 * s, ey + 0.045 * s, ident.eye_w * s + 0.030 * s, 0.062 * s)
            for e, side in zip(ex, (-1, 1))
        ],
        *[
            (e + side * (ident.eye_w + 0.024) * s, ey, 0.030 * s, 0.032 * s) for e, side in zip(ex, (-1, 1))
        ],  # crow's feet
    )
    add("AU7", *[(e, ey + 0.002 * s, ident.eye_w * s + 0.016 * s, 0.050 * s) for e in ex])
    add("AU9", (cx, 0.5 * (ey + lay.nose_y) + 0.010 * s, 0.070 * s, 0.5 * (lay.nose_y - ey) + 0.040 * s))
    mx, my, mw = cx, lay.mouth_y, lay.mouth_w
    add("AU10", (cx, 0.5 * (lay.nose_y + my), mw + 0.060 * s, 0.5 * (my - lay.nose_y) + 0.040 * s))
    corner = [(mx + side * (mw + 0.012 * s), side) for side in (-1, 1)]
    add("AU12", *[(x0, my - 0.022 * s, 0.058 * s, 0.062 * s) for x0, _ in corner])
    add("R12", (corner[0][0], my - 0.022 * s, 0.058 * s, 0.062 * s))
    # corners that move drag the lateral halves of the lips with them
    lateral = [mx + side * (0.55 * mw + 0.010 * s) for side in (-1, 1)]
    add("AU14", *[(x0, my + 0.004 * s, 0.55 * mw + 0.030 * s, 0.036 * s) for x0 in lateral])
    add("R14", (lateral[0], my + 0.004 * s, 0.55 * mw + 0.030 * s, 0.036 * s))
    add("AU15", *[(x0, my + 0.018 * s, 0.55 * mw + 0.035 * s, 0.048 * s) for x0 in lateral])
    lower = my + (ident.lip_lo + 0.010) * s
    add("AU17", (mx, my, mw + 0.012 * s, 0.050 * s), (mx, lower + 0.040 * s, mw + 0.005 * s, 0.070 * s))
    add("AU20", (mx, my, mw + 0.065 * s, 0.045 * s))
    add("AU23", (mx, my, mw + 0.030 * s, 0.050 * s))
    add("AU24", (mx, my, mw + 0.030 * s, 0.060 * s))
    add("AU25", (mx, my + 0.008 * s, mw + 0.025 * s, 0.045 * s))
    add("AU26", (mx, my, mw, 0.02 * s))  # plus the jaw polygon, see draw_regions
    add("AU27", (mx, my, mw, 0.02 * s))
    return out


def _jaw_region(ident: Identity, aus: _AUs, size: int, au: str) -> np.ndarray:
    """Polygon of the face below the mouth, down to the dropped chin (AU26 / AU27 move all of it)."""
    lay = _Layout(ident, aus, size)
    x, y = _face_outline(ident, lay)
    top = lay.mouth_y - (0.030 + (0.025 if au == "AU27" else 0.0)) * lay.s
    keep = _SIN > 0.0
    return _xy(x[keep], np.maximum(y[keep], top))


__all__ = [
    "AU_INDEX",
    "Identity",
    "Nuisance",
    "SYNTHFACS_AUS",
    "pose_matrix",
    "sample_identity",
    "sample_nuisance",
]
