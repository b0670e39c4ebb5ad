"""AU-region occlusion: exact zeros where a network cannot see, refusal of non-local layers, landmark regions."""

from __future__ import annotations

import numpy as np
import pytest

from captum_fau import InputSpec, errors
from captum_fau.synthfacs import load_synthfacs
from captum_fau.synthfacs.geometry import SYNTHFACS_AUS
from captum_fau.probes import AUOcclusion, OcclusionResult, synthfacs_masks
from captum_fau.probes.landmark_regions import landmarks_from_columns, region_masks, to_crop
from captum_fau.probes.planted import MOUTH_AUS, brow_masked_net, planted_decision_net

SPEC = InputSpec(size=96)


def test_occlusion_of_regions_a_network_cannot_see_is_exactly_zero(tmp_path) -> None:
    faces = load_synthfacs(60, mode="independent")
    masks = synthfacs_masks(faces)
    net = brow_masked_net(0, 16, 96).eval()
    result = AUOcclusion(net, "body.2", SPEC, fill="blur").run(
        faces.images, masks, faces.aus > 0, SYNTHFACS_AUS, units=faces.subjects, progress=False
    )
    mouth = [SYNTHFACS_AUS.index(a) for a in MOUTH_AUS]
    assert np.all(np.nan_to_num(result.drop[:, mouth]) == 0) and not result.significant[:, mouth].any()
    brow = SYNTHFACS_AUS.index("AU2")
    assert np.abs(result.drop[:, brow]).max() > 0
    assert result.meta["unit"] == "unit" and result.fill == "blur"
    again = OcclusionResult.load(result.save(tmp_path / "occ.npz"))
    np.testing.assert_array_equal(again.drop, result.drop)


def test_occlusion_refuses_a_layer_that_sees_the_whole_face() -> None:
    with pytest.raises(errors.LayerError, match="not local"):
        AUOcclusion(planted_decision_net(0), "pool", SPEC).check_local(96)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int) -> np.ndarray:
    t = np.linspace(np.pi, -np.pi, n + 1)[:n]
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _face_landmarks() -> np.ndarray:
    """68 plausible points on a 200x200 photo (jaw arc, brows, nose, eyes, lips)."""
    t = np.linspace(np.pi, 2 * np.pi, 17)
    jaw = np.stack([100 + 60 * np.cos(t), 100 - 70 * np.sin(t)], 1)
    brows = np.stack([np.r_[np.linspace(55, 90, 5), np.linspace(110, 145, 5)], np.full(10, 70.0)], 1)
    nose_x = np.r_[np.full(4, 100.0), np.linspace(88, 112, 5)]
    nose = np.stack([nose_x, np.r_[np.linspace(85, 115, 4), np.full(5, 122.0)]], 1)
    eyes = [_ellipse(75, 88, 12, 5, 6), _ellipse(125, 88, 12, 5, 6)]
    return np.concatenate([jaw, brows, nose, *eyes, _ellipse(100, 145, 25, 8, 12), _ellipse(100, 145, 15, 3, 8)])


def test_landmark_regions_map_through_the_crop_and_fail_loudly() -> None:
    pts = _face_landmarks()
    assert pts.shape == (68, 2)
    table = {f" x_{i}": [pts[i, 0]] for i in range(68)} | {f"y_{i}": [pts[i, 1]] for i in range(68)}
    points = landmarks_from_columns(table)
    crop = to_crop(points, np.array([[40, 40, 160, 160]]), np.array([[200, 200]]), 96)
    masks = region_masks(crop, ["AU12", "AU1"], 96)
    corner = np.round(crop[0, 48]).astype(int)
    assert masks[0, 0, corner[1], corner[0]] and masks[0, 0].sum() < 0.1 * 96 * 96
    assert masks[0, 1, :40].sum() > 0 and masks[0, 1, 60:].sum() == 0  # AU1 sits on the brows, not the mouth
    with pytest.raises(errors.LabelError, match="x_0..x_67"):
        landmarks_from_columns({k: v for k, v in table.items() if k != "y_3"})
    with pytest.raises(errors.LabelError, match="outside the image"):
        to_crop(points * 3, np.array([[40, 40, 160, 160]]), np.array([[200, 200]]), 96)
