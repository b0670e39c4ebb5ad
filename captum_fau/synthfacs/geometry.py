"""Drawing the cartoon SynthFACS face and its AU region masks.

A face is drawn from three parts, each a deterministic function of its seed (their layout lives in
:mod:`captum_fau.synthfacs.layout`, and its names stay importable from here):

* an :class:`Identity` (face shape, feature sizes and positions, tones),
  sampled from ``(seed, subject)``;
* a :class:`Nuisance` (in-plane pose, lighting, blur, sensor noise level),
  sampled per image;
* an AU intensity vector (0..5) in :data:`SYNTHFACS_AUS` order.

:func:`draw_face` turns them into a uint8 image and :func:`au_regions`
into per-AU region masks. Every AU moves or shades only the features that
FACS attributes to it, and each region mask covers the area those changes
can reach at the given intensity, so the masks are the ground truth for
localisation checks.

Coordinates are fractions of the image side until drawing, where they are
scaled to pixels and given 4 bits of sub-pixel precision (OpenCV's
``shift``) so anti-aliased edges move smoothly with intensity.

Sides: FACS names unilateral AUs by the *subject's* side. In a frontal image
the subject's right half is the image's left half, so ``R12`` / ``R14`` act
on the image's left (``side = -1`` below).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from captum_fau.synthfacs.layout import (
    _AA,
    _ALA_ARC,
    _DIMPLE_ARC,
    _ONE,
    _SHIFT,
    _SIN,
    _U5,
    _U8,
    _X9,
    AU_INDEX,
    SYNTHFACS_AUS,
    Identity,
    Nuisance,
    _AUs,
    _face_outline,
    _ip,
    _jaw_region,
    _Layout,
    _mouth_shape,
    _region_ellipses,
    _xy,
    pose_matrix,
    sample_identity,
    sample_nuisance,
)


def _tone(tone: float) -> float:
    return 0.0 if tone < 0.0 else 255.0 if tone > 255.0 else float(tone)


def _fill(img: np.ndarray, points: np.ndarray, tone: float) -> None:
    cv2.fillPoly(img, [_ip(points)], _tone(tone), _AA, _SHIFT)


def _line(img: np.ndarray, points: np.ndarray, tone: float, thickness: int = 1) -> None:
    cv2.polylines(img, [_ip(points)], False, _tone(tone), thickness, _AA, _SHIFT)


def _ellipse(img: np.ndarray, cx: float, cy: float, ax: float, ay: float, tone: float, thickness: int = -1) -> None:
    cv2.ellipse(
        img,
        (int(round(cx * _ONE)), int(round(cy * _ONE))),
        (max(1, int(round(ax * _ONE))), max(1, int(round(ay * _ONE)))),
        0.0,
        0.0,
        360.0,
        _tone(tone),
        thickness,
        _AA,
        _SHIFT,
    )


# ----------------------------------------------------------------------------- drawing


def _draw_head(img: np.ndarray, ident: Identity, lay: _Layout) -> None:
    s, cx, cy, fw, fh = lay.s, lay.cx, lay.cy, lay.fw, lay.fh
    skin = ident.skin
    # neck, hair behind the head and ears sit under the face
    neck = np.array(
        [
            [cx - 0.55 * fw, cy + 0.55 * fh],
            [cx + 0.55 * fw, cy + 0.55 * fh],
            [cx + 0.62 * fw, s * 1.2],
            [cx - 0.62 * fw, s * 1.2],
        ]
    )
    _fill(img, neck, skin * 0.78)
    _ellipse(img, cx, cy - 0.12 * fh, fw * ident.hair_volume, fh * 0.92, ident.hair_tone)
    for side in (-1, 1):
        _ellipse(img, cx + side * 0.97 * fw, lay.eye_y + 0.06 * s, 0.032 * s, 0.068 * s, skin * 0.88)
    x, y = _face_outline(ident, lay)
    _fill(img, _xy(x, y), skin)
    # hair cap down to a hairline that dips at the temples
    top = _SIN < 0.2
    ox, oy = x[top], y[top]
    order = np.argsort(ox)
    ox, oy = ox[order], oy[order]
    hair_y = lambda xx: cy - ident.hairline * s + 0.9 * ((xx - cx) / fw) ** 2 * 0.12 * s  # noqa: E731
    oy = np.minimum(oy, hair_y(ox))
    hx = np.linspace(ox[-1], ox[0], 12)
    cap = np.concatenate([_xy(ox, oy), _xy(hx, hair_y(hx))])
    _fill(img, cap, ident.hair_tone)


def _draw_forehead(img: np.ndarray, ident: Identity, lay: _Layout, aus: _AUs) -> None:
    s, skin = lay.s, ident.skin
    # AU1: horizontal wrinkles in the centre of the forehead; AU2: in its lateral parts
    if aus.aAU1 > 0:
        for k in range(3):
            y0 = lay.brow_y - (0.062 + 0.020 * k) * s
            x = lay.cx + _X9 * 0.055 * s
            _line(img, _xy(x, y0 + 0.006 * s * _X9**2), skin - 8.0 * aus.aAU1 * (1.0 - 0.2 * k))
    if aus.aAU2 > 0:
        for side in (-1, 1):
            for k in range(2):
                y0 = lay.brow_y - (0.058 + 0.020 * k) * s
                x = lay.cx + side * (lay.eye_dx + 0.01 * s) + _X9 * 0.04 * s
                _line(img, _xy(x, y0 + 0.006 * s * _X9**2), skin - 8.0 * aus.aAU2 * (1.0 - 0.2 * k))


def _draw_brows(img: np.ndarray, ident: Identity, lay: _Layout, aus: _AUs) -> None:
    s, skin = lay.s, ident.skin
    u = _U8
    for side in (-1, 1):
        ex = lay.cx + side * lay.eye_dx
        inner = ex - side * (ident.brow_in - 0.004 * aus.aAU4) * s
        outer = ex + side * ident.brow_out * s
        x = inner + (outer - inner) * u
        y = lay.brow_y - ident.brow_arch * s * 4.0 * u * (1.0 - u) + 0.006 * s * u
        y = y - 0.0085 * s * aus.aAU1 * (1.0 - u) ** 1.5  # inner corner up
        y = y - 0.0085 * s * aus.aAU2 * u**1.5 - 0.003 * s * aus.aAU2 * 4.0 * u * (1.0 - u)  # outer part up
        y = y + 0.0065 * s * aus.aAU4 * (1.0 - 0.55 * u)  # lowered, inner end most
        half = 0.5 * ident.brow_th * s * (1.0 - 0.45 * u)
        _fill(img, np.concatenate([_xy(x, y - half), _xy(x[::-1], (y + half)[::-1])]), ident.brow_tone)
    if aus.aAU4 > 0:
        # vertical furrows between the drawn-together brows
        tone = skin - 9.0 * aus.aAU4
        for side in (-1, 1):
            x0 = lay.cx + side * 0.012 * s
            _line(img, np.array([[x0, lay.brow_y - 0.008 * s], [x0 + side * 0.003 * s, lay.brow_y + 0.028 * s]]), tone)
        _line(
            img,
            np.array([[lay.cx - 0.03 * s, lay.brow_y + 0.030 * s], [lay.cx + 0.03 * s, lay.brow_y + 0.030 * s]]),
            skin - 4.0 * aus.aAU4,
        )


def _draw_eyes(img: np.ndarray, ident: Identity, lay: _Layout, aus: _AUs) -> None:
    s, skin = lay.s, ident.skin
    up = ident.lid_up * s * (1.0 + 0.13 * aus.aAU5 - 0.045 * aus.aAU7)
    lo = ident.lid_lo * s * max(0.15, 1.0 - 0.09 * aus.aAU7 - 0.065 * aus.aAU6)
    lo_power = max(0.35, 0.9 - 0.09 * aus.aAU7)  # a tightened lower lid runs straighter
    w = ident.eye_w * s
    r = ident.iris_r * s
    x_rel = _X9
    bulge = np.sqrt(np.clip(1.0 - x_rel**2, 0.0, 1.0))
    lash = min(ident.brow_tone, skin - 70.0)
    for side in (-1, 1):
        ex = lay.cx + side * lay.eye_dx
        ey = lay.eye_y
        x = ex + x_rel * w
        tilt = -ident.eye_tilt * s * x_rel * side
        y_up = ey + tilt - up * bulge**1.7
        y_lo = ey + tilt + lo * bulge ** (2.0 * lo_power)
        _fill(img, np.concatenate([_xy(x, y_up), _xy(x[::-1], y_lo[::-1])]), ident.sclera)
        ix, iy = ex + lay.gaze, ey + 0.12 * ident.lid_up * s
        _ellipse(img, ix, iy, r, r, ident.iris_tone)
        _ellipse(img, ix, iy, 0.45 * r, 0.45 * r, ident.iris_tone * 0.4)
        # skin over the parts of the iris that the lids hide
        cover = r + 0.012 * s
        _fill(img, np.concatenate([_xy(x, y_up), _xy(x[::-1], (y_up - cover * bulge - 0.5)[::-1])]), skin)
        _fill(img, np.concatenate([_xy(x, y_lo), _xy(x[::-1], (y_lo + cover * bulge + 0.5)[::-1])]), skin)
        _line(img, _xy(x, y_up), lash, max(1, int(round(s / 110))))
        _line(img, _xy(x, y_lo), skin - 40.0)
        crease = ey + tilt - ident.lid_up * s * (1.75 + 0.05 * aus.aAU5) * bulge**1.4 - 0.004 * s
        _line(img, _xy(x[1:-1], crease[1:-1]), skin - 12.0)
        corner = ex + side * w
        if aus.aAU6 > 0:
            tone = skin - 10.0 * aus.aAU6
            for dy in (-0.012, 0.0, 0.012):  # crow's feet fan out from the outer corner
                p0 = [corner + side * 0.010 * s, ey + dy * s * 0.6]
                p1 = [corner + side * 0.034 * s, ey + dy * s * 2.0]
                _line(img, np.array([p0, p1]), tone)
            # the raised cheek: a lit bulge under the eye bounded by a pushed-up furrow
            cheek_y = ey + (0.068 - 0.003 * aus.aAU6) * s
            _ellipse(img, ex + side * 0.012 * s, cheek_y, 0.048 * s, 0.024 * s, min(255.0, skin + 2.0 * aus.aAU6))
            fy = ey + lo + (0.022 - 0.0015 * aus.aAU6) * s
            _line(img, _xy(ex + x_rel * w * 0.9, fy + 0.006 * s * (1.0 - bulge)), skin - 9.0 * aus.aAU6)
        if aus.aAU7 > 0:
            # bulge of the tightened lower lid just under its margin
            by = y_lo + 0.009 * s
            _line(img, _xy(x[1:-1], by[1:-1]), skin - 7.0 * aus.aAU7)


def _draw_nose(img: np.ndarray, ident: Identity, lay: _Layout, aus: _AUs) -> None:
    s, skin, cx = lay.s, ident.skin, lay.cx
    ny = lay.nose_y - (0.005 * aus.aAU9 + 0.0025 * aus.aAU10) * s  # wings pulled up
    nd = ident.nostril_dx * s
    for side in (-1, 1):
        _line(
            img,
            np.array([[cx + side * 0.022 * s, lay.eye_y + 0.02 * s], [cx + side * 0.030 * s, ny - 0.022 * s]]),
            skin - 14.0,
        )
    _ellipse(img, cx, ny - 0.008 * s, 0.017 * s, 0.013 * s, min(255.0, skin + 12.0))
    for side in (-1, 1):
        _ellipse(img, cx + side * nd, ny + 0.008 * s, 0.011 * s, 0.0055 * s, skin - 75.0)
        arc = _ALA_ARC
        ax = cx + side * (nd + 0.006 * s) + side * 0.012 * s * np.cos(arc)
        ay = ny + 0.002 * s + 0.014 * s * np.sin(arc)
        _line(img, _xy(ax, ay), skin - 40.0 - 3.0 * aus.aAU9)
    if aus.aAU9 > 0:
        tone = skin - 9.0 * aus.aAU9
        for k in range(3):  # wrinkles across the root of the nose
            y0 = lay.eye_y + (0.004 + 0.014 * k) * s
            x = cx + _X9 * 0.024 * s
            _line(img, _xy(x, y0 - 0.004 * s * (1.0 - _X9**2)), tone)


def _draw_lower_face(img: np.ndarray, ident: Identity, lay: _Layout, aus: _AUs) -> None:
    s, skin, cx = lay.s, ident.skin, lay.cx
    m = _mouth_shape(ident, lay, aus)
    x = m["x"]
    corners = m["corners"]
    # nasolabial folds, segment by segment: AU9/AU10 deepen the upper part, AU12 the lower part
    for side_i, side in enumerate((-1, 1)):
        a12 = aus.au12(side)
        top = np.array([cx + side * (ident.nostril_dx + 0.024) * s, lay.nose_y - 0.004 * s])
        # the fold's lower end follows the lip corner puller only, so other mouth AUs leave it alone
        bottom = np.array(
            [cx + side * (ident.mouth_w + 0.020 + 0.004 * a12) * s, lay.mouth_y + (0.012 - 0.010 * a12) * s]
        )
        t = _U5
        pts = top + (bottom - top) * t[:, None]
        pts[:, 0] += side * 0.012 * s * np.sin(np.pi * t)
        for k in range(4):
            w_up = 1.0 - k / 3.0
            depth = (
                ident.fold_depth
                + 5.0 * aus.aAU9 * w_up * (k < 2)
                + 6.0 * aus.aAU10 * w_up
                + 7.0 * a12 * (k / 3.0) * (k >= 2)
            )
            _line(img, pts[k : k + 2], skin - depth)
    # lips and the opening between them
    upper = np.concatenate([_xy(x, m["upper_top"]), _xy(x[::-1], m["upper_low"][::-1])])
    lower = np.concatenate([_xy(x, m["lower_top"]), _xy(x[::-1], m["lower_low"][::-1])])
    _fill(img, upper, ident.lip_tone)
    _fill(img, lower, ident.lip_tone + 8.0)
    gap = m["lower_top"] - m["upper_low"]
    if gap.max() > 0.25:
        _fill(img, np.concatenate([_xy(x, m["upper_low"]), _xy(x[::-1], m["lower_top"][::-1])]), 22.0)
        teeth = np.minimum(gap, 0.020 * s) * 0.9
        _fill(
            img,
            np.concatenate(
                [_xy(x[2:-2], m["upper_low"][2:-2]), _xy(x[2:-2][::-1], (m["upper_low"] + teeth)[2:-2][::-1])]
            ),
            215.0,
        )
        if gap.max() > 0.05 * s:
            low_teeth = np.minimum(gap * 0.18, 0.010 * s)
            _fill(
                img,
                np.concatenate(
                    [
                        _xy(x[3:-3], m["lower_top"][3:-3] - low_teeth[3:-3]),
                        _xy(x[3:-3][::-1], m["lower_top"][3:-3][::-1]),
                    ]
                ),
                185.0,
            )
    _line(
        img,
        _xy(x, 0.5 * (m["upper_low"] + m["lower_top"])) if gap.max() <= 0.25 else _xy(x, m["upper_low"]),
        ident.lip_tone - 45.0,
    )
    if aus.aAU23 > 0:  # rolled-in, tightened lip margins
        _line(img, _xy(x, m["upper_top"]), ident.lip_tone - 6.0 * aus.aAU23)
        _line(img, _xy(x, m["lower_low"]), ident.lip_tone - 6.0 * aus.aAU23)
    if aus.aAU24 > 0:  # skin bulging above and below the pressed lips
        tone = skin - 6.0 * aus.aAU24
        _line(img, _xy(x[2:-2], m["upper_top"][2:-2] - 0.010 * s), tone)
        _line(img, _xy(x[2:-2], m["lower_low"][2:-2] + 0.010 * s), tone)
    for side_i, side in enumerate((-1, 1)):
        c = corners[side_i]
        a14 = aus.au14(side)
        if a14 > 0:  # dimple: a short crescent just lateral to the corner
            arc = _DIMPLE_ARC
            pts = _xy(c[0] + side * (0.010 * s + 0.005 * s * np.cos(arc)), c[1] + 0.011 * s * np.sin(arc))
            _line(img, pts, skin - 14.0 * a14, max(1, int(round(s / 80))))
        if aus.aAU15 > 0:  # the fold that runs down from a depressed corner
            _line(
                img,
                np.array([[c[0] + side * 0.004 * s, c[1] + 0.004 * s], [c[0] + side * 0.014 * s, c[1] + 0.030 * s]]),
                skin - 7.0 * aus.aAU15,
            )
    # chin: mentolabial furrow and, with AU17, the wrinkled chin boss
    low = m["lower_low"]
    furrow_y = low[4:9] + (0.020 - 0.004 * aus.aAU17) * s
    _line(img, _xy(x[4:9], furrow_y + 0.004 * s * _X9[::2] ** 2), skin - 10.0 - 5.0 * aus.aAU17)
    if aus.aAU17 > 0:
        chin_cy = low[6] + 0.055 * s
        tone = skin - 7.0 * aus.aAU17
        for dx, dy in ident.chin_dots:
            _ellipse(img, cx + dx * 0.030 * s, chin_cy + dy * 0.018 * s, 0.0045 * s, 0.0035 * s, tone)


@lru_cache(maxsize=8)
def _light_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return np.broadcast_to(g[None, :], (size, size)), np.broadcast_to(g[:, None], (size, size))


def draw_face(
    ident: Identity,
    nuis: Nuisance,
    aus: np.ndarray,
    size: int,
    noise: np.ndarray | None,
) -> np.ndarray:
    """Render one face as uint8 ``[size, size]``.

    Args:
        ident (Identity): The subject.
        nuis (Nuisance): Pose, lighting and sensor parameters of this image.
        aus (np.ndarray): ``[J]`` AU intensities (0..5) in :data:`SYNTHFACS_AUS` order.
        size (int): Image side in pixels.
        noise (np.ndarray, optional): ``[size, size]`` float32 standard normal noise; ``None`` for none.

    Returns:
        np.ndarray: uint8 ``[size, size]``.
    """
    a = _AUs(aus)
    lay = _Layout(ident, a, size, nuis.gaze)
    canvas = np.full((size, size), int(round(ident.background)), dtype=np.uint8)
    _draw_head(canvas, ident, lay)
    _draw_forehead(canvas, ident, lay, a)
    _draw_eyes(canvas, ident, lay, a)
    _draw_brows(canvas, ident, lay, a)
    _draw_nose(canvas, ident, lay, a)
    _draw_lower_face(canvas, ident, lay, a)
    img = cv2.warpAffine(
        canvas, pose_matrix(ident, nuis, size), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    img = cv2.GaussianBlur(img, (0, 0), nuis.blur * size / 96.0)
    gx, gy = _light_grid(size)
    light = np.float32(nuis.gain) * (
        1.0
        + np.float32(nuis.light_strength)
        * (np.float32(np.cos(nuis.light_angle)) * gx + np.float32(np.sin(nuis.light_angle)) * gy)
    )
    out = img.astype(np.float32) * light + np.float32(nuis.bias)
    if noise is not None:
        out += np.float32(nuis.noise) * noise
    np.clip(out, 0.0, 255.0, out=out)
    return (out + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- regions


def draw_regions(ident: Identity, nuis: Nuisance, aus: np.ndarray, size: int) -> np.ndarray:
    """Boolean ``[J, size, size]`` region masks of the present AUs (absent AUs: all False)."""
    a = _AUs(aus)
    masks = np.zeros((len(SYNTHFACS_AUS), size, size), dtype=bool)
    regions = _region_ellipses(ident, a, size)
    if not regions:
        return masks
    m = pose_matrix(ident, nuis, size)
    canvas = np.zeros((size, size), dtype=np.uint8)
    for au, ellipses in regions.items():
        canvas[:] = 0
        for ecx, ecy, ax, ay in ellipses:
            cv2.ellipse(
                canvas,
                (int(round(ecx * _ONE)), int(round(ecy * _ONE))),
                (max(1, int(round(ax * _ONE))), max(1, int(round(ay * _ONE)))),
                0.0,
                0.0,
                360.0,
                1,
                -1,
                cv2.LINE_8,
                _SHIFT,
            )
        if au in ("AU26", "AU27"):
            jaw = _ip(_jaw_region(ident, a, size, au))
            cv2.fillPoly(canvas, [jaw], 1, cv2.LINE_8, _SHIFT)
            cv2.polylines(canvas, [jaw], True, 1, max(2, int(round(0.05 * size))), cv2.LINE_8, _SHIFT)
        warped = cv2.warpAffine(canvas, m, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        masks[AU_INDEX[au]] = warped.astype(bool)
    return masks


__all__ = [
    "AU_INDEX",
    "Identity",
    "Nuisance",
    "SYNTHFACS_AUS",
    "draw_face",
    "draw_regions",
    "pose_matrix",
    "sample_identity",
    "sample_nuisance",
]
