"""The batched reference augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_fau.data.transforms import local_mean_subtract
from captum_fau.errors import ConfigError, InputShapeError
from captum_fau.train.augment import AugmentConfig, AugmentParams, augment_batch, sample_params


def _identity_params(b: int, **over: torch.Tensor) -> AugmentParams:
    params = dict(
        angle_deg=torch.zeros(b),
        scale=torch.ones(b),
        shift_x=torch.zeros(b),
        shift_y=torch.zeros(b),
        flip=torch.zeros(b, dtype=torch.bool),
        gamma=torch.ones(b),
    )
    params.update(over)
    return AugmentParams(**params)


def _ramp(b: int = 2, size: int = 32) -> torch.Tensor:
    x = torch.linspace(0, 1, size).view(1, 1, 1, size).expand(b, 1, size, size)
    return x.clone()


def test_identity_params_give_reference_preprocessing() -> None:
    x = torch.rand(3, 1, 32, 32)
    out = augment_batch(x, params=_identity_params(3))
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    expected = local_mean_subtract((x - lo) / (hi - lo) * 2.0, 5)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_flip_mirrors_left_right() -> None:
    x = torch.rand(2, 1, 16, 16)
    cfg = AugmentConfig(local_mean=0)
    plain = augment_batch(x, cfg, params=_identity_params(2))
    flipped = augment_batch(x, cfg, params=_identity_params(2, flip=torch.tensor([True, False])))
    torch.testing.assert_close(flipped[0], plain[0].flip(-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(flipped[1], plain[1], atol=1e-5, rtol=1e-5)


def test_gamma_and_minmax_stretch_to_zero_two() -> None:
    x = _ramp()
    cfg = AugmentConfig(local_mean=0)
    out = augment_batch(x, cfg, params=_identity_params(2, gamma=torch.tensor([2.0, 0.5])))
    assert torch.allclose(out.amin(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.full((2,), 2.0), atol=1e-5)
    # gamma 2 darkens the mid-tones, gamma 0.5 brightens them
    mid = out[:, 0, 16, 16]
    assert mid[0] < 1.0 < mid[1]


def test_translation_moves_content_against_the_shift() -> None:
    # The reference's transform is the inverse map: output pixel p shows the input at p + t,
    # so a shift of +8 pixels moves the content 8 pixels to the left.
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 10:14, 10:14] = 1.0
    cfg = AugmentConfig(local_mean=0)
    out = augment_batch(x, cfg, params=_identity_params(1, shift_x=torch.tensor([0.25])))
    ys, xs = torch.nonzero(out[0, 0] > 1.0, as_tuple=True)
    assert xs.float().mean().item() == pytest.approx(11.5 - 8, abs=0.6)
    assert ys.float().mean().item() == pytest.approx(11.5, abs=0.6)


def _disc(size: int = 48, radius: float = 10.0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = (size - 1) / 2
    return (((yy - centre) ** 2 + (xx - centre) ** 2) <= radius**2).float().view(1, 1, size, size)


def test_scale_above_one_shows_a_larger_region_and_the_face_shrinks() -> None:
    x = _disc()
    cfg = AugmentConfig(local_mean=0)
    area_in = float((x > 0.5).sum())
    shrunk = augment_batch(x, cfg, params=_identity_params(1, scale=torch.tensor([1.4])))
    grown = augment_batch(x, cfg, params=_identity_params(1, scale=torch.tensor([0.7])))
    area_shrunk = float((shrunk > 1.0).sum())
    area_grown = float((grown > 1.0).sum())
    # Area scales by 1 / s**2 under the inverse map.
    assert area_shrunk == pytest.approx(area_in / 1.4**2, rel=0.08)
    assert area_grown == pytest.approx(area_in / 0.7**2, rel=0.08)
    # The disc stays centred.
    ys, xs = torch.nonzero(shrunk[0, 0] > 1.0, as_tuple=True)
    assert xs.float().mean().item() == pytest.approx(23.5, abs=0.3)
    assert ys.float().mean().item() == pytest.approx(23.5, abs=0.3)


def _reference_warp(image: np.ndarray, angle_deg: float, scale: float, tx: float, ty: float, flip: bool) -> np.ndarray:
    """The reference's DataAugmenter2 + Crop, written out with 3x3 matrices in (x, y) pixel coordinates
    and applied with scipy.ndimage (inverse map, bilinear, zeros outside)."""
    from scipy.ndimage import affine_transform

    h, w = image.shape
    if flip:
        image = image[:, ::-1]
    r = np.deg2rad(angle_deg)
    rotate = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    zoom = np.diag([scale, scale, 1.0])
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    # crop.rotate(angle); crop.scale(s); crop.centered(); crop.translate(tx, ty), each composed after the last.
    m = zoom @ rotate
    shift = centre - m[:2, :2] @ centre
    m[:2, 2] = shift + np.array([tx, ty])
    # scipy indexes (row, col) = (y, x): swap the axes of the map.
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    m_rc = swap @ m @ swap
    return affine_transform(image, m_rc[:2, :2], offset=m_rc[:2, 2], order=1, mode="grid-constant", cval=0.0)


@pytest.mark.parametrize(
    ("angle", "scale", "shift_x", "shift_y", "flip"),
    [
        (0.0, 1.3, 0.0, 0.0, False),
        (4.0, 0.8, 0.05, -0.03, False),
        (-5.0, 1.4, -0.1, 0.08, True),
        (30.0, 1.0, 0.0, 0.0, False),
    ],
)
def test_geometry_matches_the_reference_inverse_map(
    angle: float, scale: float, shift_x: float, shift_y: float, flip: bool
) -> None:
    rng = np.random.default_rng(0)
    size = 24
    image = rng.random((size, size))
    cfg = AugmentConfig(local_mean=0)
    params = _identity_params(
        1,
        angle_deg=torch.tensor([angle]),
        scale=torch.tensor([scale]),
        shift_x=torch.tensor([shift_x]),
        shift_y=torch.tensor([shift_y]),
        flip=torch.tensor([flip]),
    )
    ours = (
        augment_batch(torch.from_numpy(image).float().view(1, 1, size, size), cfg, params=params)[0, 0].double().numpy()
    )
    ref = _reference_warp(image, angle, scale, shift_x * size, shift_y * size, flip)
    ref = (ref - ref.min()) / (ref.max() - ref.min()) * 2.0
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_augmentation_zero_pads_its_local_mean() -> None:
    x = torch.rand(2, 1, 16, 16)
    out = augment_batch(x, params=_identity_params(2))
    replicate = augment_batch(x, AugmentConfig(local_mean_padding="replicate"), params=_identity_params(2))
    scaled = augment_batch(x, AugmentConfig(local_mean=0), params=_identity_params(2))
    torch.testing.assert_close(out, local_mean_subtract(scaled, 5, "zeros"))
    torch.testing.assert_close(replicate, local_mean_subtract(scaled, 5, "replicate"))
    assert (out - replicate).abs().max() > 1e-3


def test_sampled_ranges_follow_the_recipe() -> None:
    g = torch.Generator().manual_seed(0)
    p = sample_params(20_000, AugmentConfig(), g)
    assert p.angle_deg.abs().max() <= 5.0
    assert 0.7 <= p.scale.min() and p.scale.max() <= 1.4
    half = (1 - p.scale).abs() / 2
    assert (p.shift_x.abs() <= half + 1e-7).all() and (p.shift_y.abs() <= half + 1e-7).all()
    assert 0.25 <= p.gamma.min() and p.gamma.max() <= 4.0
    assert p.flip.float().mean().item() == pytest.approx(0.5, abs=0.02)


def test_seeded_and_finite_on_uint8() -> None:
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (8, 1, 96, 96), dtype=np.uint8))
    a = augment_batch(x, generator=torch.Generator().manual_seed(3))
    b = augment_batch(x, generator=torch.Generator().manual_seed(3))
    assert a.shape == (8, 1, 96, 96) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_constant_image_stays_finite() -> None:
    out = augment_batch(torch.full((2, 1, 16, 16), 0.5), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()


def test_bad_inputs() -> None:
    with pytest.raises(InputShapeError, match="batch"):
        augment_batch(torch.rand(16, 16))
    with pytest.raises(InputShapeError, match="parameter sets"):
        augment_batch(torch.rand(2, 1, 8, 8), params=_identity_params(3))
    with pytest.raises(ConfigError, match="scale_min"):
        AugmentConfig(scale_min=2.0, scale_max=1.0)
    with pytest.raises(ConfigError, match="padding_mode"):
        AugmentConfig(padding_mode="wrap")
    with pytest.raises(ConfigError, match="local_mean_padding"):
        AugmentConfig(local_mean_padding="reflect")
