"""The reference training augmentation as batched tensor operations.

Every training image of the reference recipe was, independently:

* flipped horizontally with probability 0.5,
* resampled through an affine map with a rotation angle ``U(-5, 5)`` degrees,
  a scale ``s ~ U(0.7, 1.4)`` and a translation ``U(-d/2, d/2)`` pixels on
  each axis with ``d = 96 - 96 s`` (for a 96-pixel image; the range scales
  with the image size),
* passed through an intensity curve ``x ** a`` with ``a ~ U(0.25, 4)``, then
  stretched per image to ``[0, 1]`` (min-max) and multiplied by 2,

and finally given the local 5x5 mean subtraction of
:mod:`captum_fau.data.transforms`.

The reference applies the affine map with scikit-image's ``warp``, whose
transform is the *inverse* map: output pixel ``p`` shows the input at
``c + s R(angle) (p - c) + t`` (``c`` the image centre). So ``s > 1`` shows a
larger region of the input and the face *shrinks*; ``s < 1`` zooms in.
Pixels mapped from outside the image are 0, and the interpolation is
bilinear, as in the reference. (The reference rotates about pixel
``W // 2``, half a pixel off the centre; here the centre is ``(W - 1) / 2``
so that an identity draw returns the image unchanged.)

Here the geometric part is one
``affine_grid`` + ``grid_sample`` call for the whole batch and the rest are
elementwise tensor operations, so the same code runs on CPU and GPU without a
per-image Python loop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from captum_fau.data.transforms import check_local_mean_padding, local_mean_subtract, to_unit
from captum_fau.errors import ConfigError, InputShapeError


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation (defaults are the reference recipe's).

    Args:
        rotation_deg (float): Rotation angle is drawn from ``U(-rotation_deg, rotation_deg)``.
        scale_min (float): Lower bound of the scale factor.
        scale_max (float): Upper bound of the scale factor.
        flip_prob (float): Probability of a horizontal flip.
        gamma_min (float): Lower bound of the intensity exponent ``a``.
        gamma_max (float): Upper bound of the intensity exponent ``a``.
        padding_mode (str): What ``grid_sample`` shows outside the image
            (``"zeros"``, ``"border"`` or ``"reflection"``).
        local_mean (int): Box size of the final local mean subtraction (0 disables it).
        local_mean_padding (str): Border handling of that local mean: ``"zeros"`` (the
            reference) or ``"replicate"``. A model trained with it records it in its config.
    """

    rotation_deg: float = 5.0
    scale_min: float = 0.7
    scale_max: float = 1.4
    flip_prob: float = 0.5
    gamma_min: float = 0.25
    gamma_max: float = 4.0
    padding_mode: str = "zeros"
    local_mean: int = 5
    local_mean_padding: str = "zeros"

    def __post_init__(self) -> None:
        if self.rotation_deg < 0:
            raise ConfigError(f"rotation_deg must be >= 0, got {self.rotation_deg}.")
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError(
                f"Need 0 < scale_min <= scale_max, got scale_min={self.scale_min}, scale_max={self.scale_max}."
            )
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ConfigError(f"flip_prob must be in [0, 1], got {self.flip_prob}.")
        if not 0 < self.gamma_min <= self.gamma_max:
            raise ConfigError(
                f"Need 0 < gamma_min <= gamma_max, got gamma_min={self.gamma_min}, gamma_max={self.gamma_max}."
            )
        if self.padding_mode not in ("zeros", "border", "reflection"):
            raise ConfigError(f"padding_mode must be 'zeros', 'border' or 'reflection', got {self.padding_mode!r}.")
        if self.local_mean < 0:
            raise ConfigError(f"local_mean must be >= 0 (0 disables it), got {self.local_mean}.")
        check_local_mean_padding(self.local_mean_padding)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AugmentParams:
    """The random draws of one batch (all ``[B]`` tensors on the CPU).

    Attributes:
        angle_deg: Rotation angles in degrees.
        scale: Scale factors of the inverse map (``> 1`` shows a larger region: the face shrinks).
        shift_x: Horizontal translations of the sampled location, as fractions of the image width.
        shift_y: Vertical translations of the sampled location, as fractions of the image height.
        flip: Whether each image is mirrored left-right.
        gamma: Intensity exponents.
    """

    angle_deg: torch.Tensor
    scale: torch.Tensor
    shift_x: torch.Tensor
    shift_y: torch.Tensor
    flip: torch.Tensor
    gamma: torch.Tensor


def sample_params(batch_size: int, config: AugmentConfig, generator: torch.Generator | None = None) -> AugmentParams:
    """Draw the augmentation parameters of ``batch_size`` images.

    Draws happen on the CPU from ``generator`` so that a run is reproducible
    whatever device the images live on.

    Args:
        batch_size (int): Number of images.
        config (AugmentConfig): Ranges to draw from.
        generator (torch.Generator, optional): CPU random generator. Default: torch's global one.

    Returns:
        AugmentParams: One value per image for each transformation.
    """

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(batch_size, generator=generator, dtype=torch.float64).mul_(hi - lo).add_(lo).float()

    scale = uniform(config.scale_min, config.scale_max)
    # d = 96 - 96 s pixels for a 96-pixel image, i.e. (1 - s) of the image
    # side; the shift is U(-d/2, d/2), kept here as a fraction of the side.
    half_range = (1.0 - scale).abs() / 2.0
    shift_x = (torch.rand(batch_size, generator=generator) * 2.0 - 1.0) * half_range
    shift_y = (torch.rand(batch_size, generator=generator) * 2.0 - 1.0) * half_range
    angle = uniform(-config.rotation_deg, config.rotation_deg)
    flip = torch.rand(batch_size, generator=generator) < config.flip_prob
    gamma = uniform(config.gamma_min, config.gamma_max)
    return AugmentParams(angle_deg=angle, scale=scale, shift_x=shift_x, shift_y=shift_y, flip=flip, gamma=gamma)


def affine_matrices(params: AugmentParams, height: int, width: int) -> torch.Tensor:
    """``[B, 2, 3]`` matrices for :func:`torch.nn.functional.affine_grid`.

    In pixel coordinates ``(x, y)`` with centre ``c``, output pixel ``p``
    samples the input at ``c + F (s R (p - c) + t)``: the reference's inverse
    map (``R`` is ``skimage.transform.AffineTransform(rotation=angle)``'s
    matrix, ``t`` the translation in pixels), after a left-right flip ``F``
    of the input when drawn. ``affine_grid`` works in normalised coordinates
    ``x_n = (x - c) / (W / 2)``, where the centre cancels and the matrix is
    ``D^-1 F (s R D | t)`` with ``D = diag(W / 2, H / 2)``.

    Args:
        params (AugmentParams): The draws of the batch.
        height (int): Image height in pixels.
        width (int): Image width in pixels.

    Returns:
        Tensor: float32 ``[B, 2, 3]``.
    """
    theta = params.angle_deg.double() * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    s = params.scale.double()
    flip_sign = torch.where(params.flip, -1.0, 1.0).double()
    half_w, half_h = width / 2.0, height / 2.0
    tx = params.shift_x.double() * width
    ty = params.shift_y.double() * height
    row_x = torch.stack([flip_sign * s * cos, flip_sign * s * -sin * half_h / half_w, flip_sign * tx / half_w], dim=1)
    row_y = torch.stack([s * sin * half_w / half_h, s * cos, ty / half_h], dim=1)
    return torch.stack([row_x, row_y], dim=1).float()


def augment_batch(
    images: torch.Tensor,
    config: AugmentConfig | None = None,
    generator: torch.Generator | None = None,
    params: AugmentParams | None = None,
) -> torch.Tensor:
    """Augment a batch and return the zero-bias CNN's input.

    Args:
        images (Tensor): ``[B, C, H, W]`` images, uint8 or float in ``[0, 1]``, on any device.
        config (AugmentConfig, optional): Ranges; default the reference recipe's.
        generator (torch.Generator, optional): CPU generator for the random draws.
        params (AugmentParams, optional): Use these draws instead of sampling (for tests and replays).

    Returns:
        Tensor: float32 ``[B, C, H, W]`` on the images' device: augmented, min-max
        stretched to ``[0, 2]`` and local-mean subtracted.

    Examples::

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(4, 1, 96, 96)
        >>> augment_batch(x, generator=g).shape
        torch.Size([4, 1, 96, 96])
    """
    config = config or AugmentConfig()
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputShapeError(f"augment_batch expects a batch [B, C, H, W], got {shape}; add a batch dimension.")
    x = to_unit(images)
    b = x.shape[0]
    if params is None:
        params = sample_params(b, config, generator)
    elif params.scale.shape[0] != b:
        raise InputShapeError(f"augment_batch got {params.scale.shape[0]} parameter sets for {b} images.")
    device = x.device
    matrices = affine_matrices(params, x.shape[-2], x.shape[-1]).to(device=device, dtype=x.dtype)
    grid = F.affine_grid(matrices, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode=config.padding_mode, align_corners=False)
    # Intensity curve; clamp first because bilinear sampling can undershoot 0
    # by rounding and a fractional power of a negative number is NaN.
    gamma = params.gamma.to(device=device, dtype=x.dtype).view(b, 1, 1, 1)
    x = x.clamp_(0.0, 1.0).pow(gamma)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    # A constant image (zero range) stays at 0 instead of becoming NaN.
    x = (x - lo) / (hi - lo).clamp_min(1e-8)
    return local_mean_subtract(x * 2.0, config.local_mean, config.local_mean_padding)


__all__ = ["AugmentConfig", "AugmentParams", "affine_matrices", "augment_batch", "sample_params"]
