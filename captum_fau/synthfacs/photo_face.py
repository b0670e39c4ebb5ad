"""The face of the photo style: AU appearance changes (wrinkles, furrows, bulges) and the features (eyes, brows,
lips, teeth), drawn on a subject's canonical frame by :mod:`captum_fau.synthfacs.photo`.

Every AU term is gated by the AU's canonical region (:func:`_photo_ellipses`), fading to exactly zero at
its border, so an AU never changes a pixel outside its region mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from captum_fau.synthfacs.layout import Identity, _AUs, _Layout, _mouth_shape, _region_ellipses
from captum_fau.synthfacs.photo_fields import band, banks, bump, clamp, crop, grid, hgroove, paint, segment, window


@dataclass(frozen=True)
class PhotoIdentity:
    """What the photo style adds to a subject: tones, texture offsets, age."""

    skin: float
    lip: float
    hair: float
    brow: float
    iris: float
    sclera: float
    age: float  # 0 young .. 1 old: baseline wrinkles, fold depth, skin texture
    texture: tuple[int, int, int, int]  # noise-bank offsets (skin y, x; hair y, x)
    hair_style: float  # 0 short and high .. 1 long and low at the sides
    depth: float  # how far the face stands out (nose, brow ridge, cheeks)
    background: float


# The cartoon layout's mouth is small for a real face (a mouth is about as wide as the distance between the
# pupils, its lips about a sixth of its width high): the photo style draws it wider and its lips fuller, and
# widens the regions of the AUs that act on it the same way.
_MOUTH_SPREAD = 1.45
_LIP_FULLNESS = 1.6
_MOUTH_AUS = frozenset({"AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU27",
                        "R12", "R14"})  # fmt: skip


def _photo_ellipses(ident: Identity, a: _AUs, size: int) -> dict[str, list[tuple[float, float, float, float]]]:
    """The cartoon style's canonical AU regions, those of the mouth widened as the photo style draws it."""
    lay = _Layout(ident, a, size)
    out = {}
    for au, ellipses in _region_ellipses(ident, a, size).items():
        if au in _MOUTH_AUS:
            ellipses = [(lay.cx + (ecx - lay.cx) * _MOUTH_SPREAD, ecy, ax * _MOUTH_SPREAD, ay * 1.2)
                        for ecx, ecy, ax, ay in ellipses]  # fmt: skip
        out[au] = ellipses
    if "R12" in out:  # the lip thinning of a unilateral corner puller reaches the middle of the lips
        out["R12"] = out["R12"] + [(lay.cx, lay.mouth_y, lay.mouth_w * _MOUTH_SPREAD + 0.01 * size, 0.04 * size)]
    return out


def _photo_mouth(ident: Identity, lay: _Layout, a: _AUs) -> dict[str, np.ndarray]:
    """The cartoon mouth curves, wider and with fuller lips."""
    mouth = _mouth_shape(ident, lay, a)
    mouth["x"] = lay.cx + (mouth["x"] - lay.cx) * _MOUTH_SPREAD
    mouth["corners"] = mouth["corners"].copy()
    mouth["corners"][:, 0] = lay.cx + (mouth["corners"][:, 0] - lay.cx) * _MOUTH_SPREAD
    mouth["upper_top"] = mouth["upper_low"] - (mouth["upper_low"] - mouth["upper_top"]) * _LIP_FULLNESS
    mouth["lower_low"] = mouth["lower_top"] + (mouth["lower_low"] - mouth["lower_top"]) * _LIP_FULLNESS
    return mouth


class _Scene:
    """One face in the canonical frame: layout with the AUs applied, and the regions that gate AU changes."""

    def __init__(self, ident: Identity, pid: PhotoIdentity, aus: np.ndarray, size: int) -> None:
        self.ident, self.pid, self.size = ident, pid, size
        self.a = _AUs(aus)
        self.lay = _Layout(ident, self.a, size)
        self.s = float(size)
        self.k = self.s / 96.0  # pixel scale of details designed at 96 px
        self._regions = _photo_ellipses(ident, self.a, size)

    def gated(self, au: str, term: np.ndarray) -> np.ndarray:
        """``term`` faded to exactly 0 at the border of ``au``'s canonical regions."""
        return term * window(self.size, self._regions.get(au, []))


def _zeros(sc: _Scene) -> np.ndarray:
    return np.zeros((sc.size, sc.size), dtype=np.float32)


def _upper_face_wrinkles(sc: _Scene) -> np.ndarray:
    """Height changes of AU1, AU2, AU4, AU6, AU7, AU9 (and the baseline lines of age), in pixels."""
    s, lay, a, k = sc.s, sc.lay, sc.a, sc.k
    h = _zeros(sc)
    w = 0.012 * s
    by, ey, cx = lay.brow_y, lay.eye_y, lay.cx
    for j in range(2):  # age: faint long forehead lines
        hgroove(h, by - (0.062 + 0.026 * j) * s, cx, 0.15 * s, w, 0.01 * s, -0.3 * k * sc.pid.age)
    if a.aAU1 > 0:
        g = _zeros(sc)
        for j in range(3):
            hgroove(g, by - (0.045 + 0.021 * j) * s, cx, 0.06 * s, w, 0.006 * s, -0.13 * k * a.aAU1)
        h += sc.gated("AU1", g)
    if a.aAU2 > 0:
        g = _zeros(sc)
        for j in range(2):
            for side in (-1, 1):
                hgroove(g, by - (0.045 + 0.021 * j) * s, cx + side * (lay.eye_dx + 0.02 * s), 0.045 * s, w, 0.006 * s,
                        -0.13 * k * a.aAU2)  # fmt: skip
        h += sc.gated("AU2", g)
    if a.aAU4 > 0:
        g = _zeros(sc)
        for side in (-1, 1):
            segment(g, (cx + side * 0.013 * s, by - 0.012 * s), (cx + side * 0.016 * s, by + 0.03 * s), w,
                    -0.16 * k * a.aAU4)  # fmt: skip
            bump(g, cx + side * 0.035 * s, by + 0.004 * s, 0.03 * s, 0.018 * s, 0.14 * k * a.aAU4)
        hgroove(g, by + 0.032 * s, cx, 0.028 * s, w, 0.0, -0.08 * k * a.aAU4)
        h += sc.gated("AU4", g)
    for side in (-1, 1):
        ex = cx + side * lay.eye_dx
        corner = ex + side * sc.ident.eye_w * s
        feet = [((corner + side * 0.010 * s, ey + dy * 0.6 * s), (corner + side * 0.036 * s, ey + dy * 2.2 * s))
                for dy in (-0.012, 0.0, 0.012)]  # fmt: skip
        for p0, p1 in feet:
            segment(h, p0, p1, w, -0.15 * k * sc.pid.age)
        bump(h, ex, ey + (sc.ident.lid_lo + 0.02) * s, 0.05 * s, 0.014 * s, 0.25 * k * sc.pid.age)  # bags
        if a.aAU6 > 0:
            g = _zeros(sc)
            for p0, p1 in feet:
                segment(g, p0, p1, w, -0.2 * k * a.aAU6)
            bump(g, ex + side * 0.012 * s, ey + (0.066 - 0.004 * a.aAU6) * s, 0.05 * s, 0.026 * s, 0.4 * k * a.aAU6)
            hgroove(g, ey + (0.040 - 0.002 * a.aAU6) * s, ex, 0.05 * s, w, -0.008 * s, -0.14 * k * a.aAU6)
            h += sc.gated("AU6", g)
        if a.aAU7 > 0:
            g = _zeros(sc)
            hgroove(g, ey + (sc.ident.lid_lo + 0.010) * s, ex, 0.06 * s, 0.010 * s, -0.008 * s, 0.16 * k * a.aAU7)
            h += sc.gated("AU7", g)
    if a.aAU9 > 0:
        g = _zeros(sc)
        for j in range(3):
            hgroove(g, ey + (0.006 + 0.013 * j) * s, cx, 0.03 * s, w, -0.004 * s, -0.15 * k * a.aAU9)
        h += sc.gated("AU9", g)
    return h


def _nasolabial(sc: _Scene, mouth: dict[str, np.ndarray], h: np.ndarray) -> None:
    """The nasolabial furrow: age and identity, deepened above by AU9 / AU10 and below by AU12."""
    s, lay, a, k, ident = sc.s, sc.lay, sc.a, sc.k, sc.ident
    w = 0.013 * s
    cx, my = lay.cx, lay.mouth_y
    base = 0.12 + 0.025 * ident.fold_depth * (0.6 + sc.pid.age)
    for side_i, side in enumerate((-1, 1)):
        top = (cx + side * (ident.nostril_dx + 0.024) * s, lay.nose_y - 0.004 * s)
        mw = ident.mouth_w * _MOUTH_SPREAD
        mid = (cx + side * ((ident.nostril_dx + mw + 0.056) * 0.5 + 0.01) * s, 0.5 * (lay.nose_y + my))
        bottom = (cx + side * (mw + 0.020) * s, my + 0.014 * s)
        segment(h, top, mid, w, -base * k)
        segment(h, mid, bottom, w, -base * k)
        if a.aAU9 > 0 or a.aAU10 > 0:
            for au in ("AU9", "AU10"):
                if a.get(au) > 0:
                    g = _zeros(sc)
                    segment(g, top, mid, w, -0.10 * k * a.get(au))
                    h += sc.gated(au, g)
        a12 = a.au12(side)
        if a12 > 0:
            c = mouth["corners"][side_i]
            g = _zeros(sc)
            segment(g, mid, (c[0] + side * 0.022 * s, c[1] - 0.004 * s), 1.1 * w, -0.16 * k * a12)
            bump(g, c[0] + side * 0.035 * s, c[1] - 0.03 * s, 0.03 * s, 0.03 * s, 0.12 * k * a12)
            h += sc.gated("AU12" if a.aAU12 >= a.aR12 or side > 0 else "R12", g)


def _lower_face_wrinkles(sc: _Scene, mouth: dict[str, np.ndarray]) -> np.ndarray:
    """Height changes of AU9/10/12 (the furrow), AU14, AU15, AU17, AU24 and the chin moved by the jaw, in pixels."""
    s, lay, a, k, ident = sc.s, sc.lay, sc.a, sc.k, sc.ident
    h = _zeros(sc)
    w = 0.012 * s
    cx, my = lay.cx, lay.mouth_y
    _nasolabial(sc, mouth, h)
    for side_i, side in enumerate((-1, 1)):
        c = mouth["corners"][side_i]
        a14 = a.au14(side)
        if a14 > 0:
            g = _zeros(sc)
            bump(g, c[0] + side * 0.012 * s, c[1], 0.008 * s, 0.012 * s, -0.3 * k * a14)
            h += sc.gated("AU14" if a.aAU14 >= a.aR14 or side > 0 else "R14", g)
        if a.aAU15 > 0:
            g = _zeros(sc)
            segment(g, (c[0] + side * 0.004 * s, c[1] + 0.004 * s), (c[0] + side * 0.014 * s, c[1] + 0.032 * s), w,
                    -0.15 * k * a.aAU15)  # fmt: skip
            h += sc.gated("AU15", g)
    chin_y = my + (ident.lip_lo + 0.062) * s + lay.jaw
    furrow_y = my + (ident.lip_lo + 0.026) * s + lay.jaw
    hgroove(h, furrow_y, cx, 0.045 * s, w, -0.006 * s, -0.25 * k)
    bump(h, cx, chin_y, 0.06 * s, 0.04 * s, 0.012 * s)
    if a.aAU17 > 0:
        g = _zeros(sc)
        bump(g, cx, chin_y - 0.01 * s, 0.045 * s, 0.035 * s, 0.004 * s * a.aAU17)
        hgroove(g, furrow_y - 0.004 * s * a.aAU17, cx, 0.04 * s, w, -0.006 * s, -0.1 * k * a.aAU17)
        boss = _zeros(sc)
        bump(boss, cx, chin_y - 0.01 * s, 0.045 * s, 0.035 * s, 0.15 * k * a.aAU17)
        g += boss * crop(banks(sc.size)[0], sc.pid.texture[0] + 7, sc.pid.texture[1] + 7, sc.size)  # peau d'orange
        h += sc.gated("AU17", g)
    if a.aAU24 > 0:
        g = _zeros(sc)
        half = 0.5 * float(mouth["x"][-1] - mouth["x"][0])
        hgroove(g, float(mouth["upper_top"][6]) - 0.010 * s, cx, half, 1.5 * w, 0.004 * s, 0.13 * k * a.aAU24)
        hgroove(g, float(mouth["lower_low"][6]) + 0.010 * s, cx, half, 1.5 * w, -0.004 * s, 0.13 * k * a.aAU24)
        h += sc.gated("AU24", g)
    return h


def _eyes(sc: _Scene, albedo: np.ndarray, height: np.ndarray) -> None:
    """Sclera, iris, pupil, the upper lid's shadow, lashes and lid creases, painted into ``albedo`` / ``height``."""
    s, lay, a, ident, pid, size = sc.s, sc.lay, sc.a, sc.ident, sc.pid, sc.size
    up = ident.lid_up * s * (1.0 + 0.13 * a.aAU5 - 0.045 * a.aAU7)
    lo = ident.lid_lo * s * max(0.15, 1.0 - 0.09 * a.aAU7 - 0.065 * a.aAU6)
    lo_power = max(0.35, 0.9 - 0.09 * a.aAU7)
    w, r = ident.eye_w * s, ident.iris_r * s * 0.95
    xr = np.linspace(-1.0, 1.0, 17)
    bulge = np.sqrt(clamp(1.0 - xr**2, 0.0, 1.0))
    x, y = grid(size)
    fine = crop(banks(size)[0], pid.texture[0] + 31, pid.texture[1], size)
    for side in (-1, 1):
        ex, ey = lay.cx + side * lay.eye_dx, lay.eye_y
        xs = ex + xr * w
        tilt = -ident.eye_tilt * s * xr * side
        y_up = ey + tilt - up * bulge**1.7
        y_lo = ey + tilt + lo * bulge ** (2.0 * lo_power)
        found = band(size, xs, y_up, y_lo)
        if found is not None:
            b, cover = found
            xb, yb = x[b], y[b]
            # the iris sits on the eyeball, not on the lids: at rest the upper lid hides its top, a raised lid
            # (AU5) bares the white above it
            d = np.sqrt((xb - np.float32(ex)) ** 2 + (yb - np.float32(ey - ident.lid_up * s + 0.72 * r)) ** 2)
            iris = clamp(np.float32(r) - d + 0.5, 0.0, 1.0)
            pupil = clamp(np.float32(0.42 * r) - d + 0.5, 0.0, 1.0)
            corner = clamp(np.abs(xb - np.float32(ex)) / np.float32(w), 0.0, 1.0)
            eye = np.float32(pid.sclera) * (1.0 - 0.3 * corner * corner)
            eye += iris * (np.float32(pid.iris) * (1.0 + 0.2 * fine[b]) - eye)
            eye += pupil * (np.float32(8.0) - eye)
            lid = np.interp(xb[0], xs, y_up, left=ey, right=ey).astype(np.float32)[None, :]
            eye *= 1.0 - 0.45 * clamp(1.0 - (yb - lid) / np.float32(0.03 * s), 0.0, 1.0)
            albedo[b] += cover * (eye - albedo[b])
            height[b] -= np.float32(0.006 * s) * cover
        paint(albedo, band(size, xs, y_up - (0.008 + 0.006 * bulge) * s, y_up + 0.004 * s, soft=0.6), 15.0, 0.85)
        paint(albedo, band(size, xs[2:-2], y_lo[2:-2] - 0.002 * s, y_lo[2:-2] + 0.005 * s), 0.6 * pid.skin, 0.5)
        crease = ey + tilt - ident.lid_up * s * (1.8 + 0.06 * a.aAU5) * bulge**1.4 - 0.004 * s
        found = band(size, xs[2:-2], crease[2:-2] - 0.008 * s, crease[2:-2] + 0.006 * s, soft=1.0)
        if found is not None:
            height[found[0]] -= np.float32(0.3 * sc.k) * found[1]


def _brows(sc: _Scene, albedo: np.ndarray, height: np.ndarray) -> None:
    """Textured brows along the cartoon style's brow curves (AU1 / AU2 raise them, AU4 lowers and draws them in)."""
    s, lay, a, ident, pid = sc.s, sc.lay, sc.a, sc.ident, sc.pid
    strands = crop(banks(sc.size)[2], pid.texture[2], pid.texture[3] + 97, sc.size)
    u = np.linspace(0.0, 1.0, 12)
    for side in (-1, 1):
        ex = lay.cx + side * lay.eye_dx
        inner = ex - side * (ident.brow_in - 0.004 * a.aAU4) * s
        outer = ex + side * ident.brow_out * s
        xs = inner + (outer - inner) * u
        yc = lay.brow_y - ident.brow_arch * s * 4.0 * u * (1.0 - u) + 0.006 * s * u
        yc = yc - 0.0085 * s * a.aAU1 * (1.0 - u) ** 1.5
        yc = yc - 0.0085 * s * a.aAU2 * u**1.5 - 0.003 * s * a.aAU2 * 4.0 * u * (1.0 - u)
        yc = yc + 0.0065 * s * a.aAU4 * (1.0 - 0.55 * u)
        half = 0.5 * ident.brow_th * s * (1.5 - 0.6 * u)
        if side < 0:
            xs, yc, half = xs[::-1], yc[::-1], half[::-1]
        found = band(sc.size, xs, yc - half, yc + half, soft=0.8)
        if found is None:
            continue
        b, cover = found
        alpha = cover * clamp(0.8 + 0.25 * strands[b], 0.0, 1.0)
        albedo[b] += alpha * (np.float32(pid.brow) - albedo[b])
        height[b] += np.float32(0.25 * sc.k) * cover


def _teeth(sc: _Scene, mouth: dict[str, np.ndarray], gap: np.ndarray) -> np.ndarray:
    """Grey levels of the mouth interior with the upper (and, wide open, lower) teeth, full size."""
    s, lay, size = sc.s, sc.lay, sc.size
    x, y = grid(size)
    xs = mouth["x"]
    inside = np.float32(25.0) + np.float32(25.0) * clamp((y - np.float32(lay.mouth_y)) / np.float32(0.04 * s), 0.0, 1.0)
    teeth = _zeros(sc)
    upper_edge = mouth["upper_low"] + np.minimum(gap * 0.95, 0.024 * s)
    found = band(size, xs[2:-2], mouth["upper_low"][2:-2] - 1.0, upper_edge[2:-2])
    if found is not None:
        teeth[found[0]] = found[1]
    if gap.max() > 0.05 * s:
        low_h = np.minimum(gap * 0.2, 0.012 * s)
        found = band(size, xs[3:-3], (mouth["lower_top"] - low_h)[3:-3], mouth["lower_top"][3:-3] + 1.0)
        if found is not None:
            np.maximum(teeth[found[0]], found[1], out=teeth[found[0]])
    pitch = np.float32(0.024 * s)
    frac = np.abs(((x - np.float32(lay.cx)) / pitch + 0.5) % 1.0 - 0.5) * pitch
    xr = clamp(np.abs(x - np.float32(lay.cx)) / np.float32(0.5 * (xs[-1] - xs[0])), 0.0, 1.0)
    between = clamp(1.0 - frac / np.float32(0.6 * sc.k), 0.0, 1.0)  # the dark line between two teeth
    tooth = np.float32(210.0) * (1.0 - 0.35 * between) * (1.0 - 0.5 * xr * xr)
    return inside + teeth * (tooth - inside)


def _mouth(sc: _Scene, albedo: np.ndarray, height: np.ndarray, mouth: dict[str, np.ndarray]) -> np.ndarray:
    """Lips, the mouth interior and teeth; returns the cavity weight (deep, hardly lit)."""
    s, a, pid, size = sc.s, sc.a, sc.pid, sc.size
    xs = mouth["x"]
    fine = crop(banks(size)[0], pid.texture[0] + 53, pid.texture[1] + 11, size)
    lip = np.float32(pid.lip) * (1.0 + 0.05 * fine)
    for top, low, tone in (("upper_top", "upper_low", 0.9), ("lower_top", "lower_low", 1.04)):
        found = band(size, xs, mouth[top], mouth[low], soft=0.7)
        paint(albedo, found, lip * np.float32(tone - 0.03 * a.aAU23))
        if found is not None:
            height[found[0]] += np.float32(0.008 * s) * found[1]
    gap = mouth["lower_top"] - mouth["upper_low"]
    cavity = _zeros(sc)
    if gap.max() <= 0.3:
        line = 0.5 * (mouth["upper_low"] + mouth["lower_top"])
        paint(albedo, band(size, xs, line - 0.005 * s, line + 0.005 * s), 0.35 * pid.lip, 0.8)
        return cavity
    found = band(size, xs, mouth["upper_low"], mouth["lower_top"])
    if found is not None:
        interior = _teeth(sc, mouth, gap)
        paint(albedo, found, interior)
        cavity[found[0]] = found[1] * (interior[found[0]] < 100.0)
    return cavity
