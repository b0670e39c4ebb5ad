"""Batched pixel preprocessing shared by every dataset, training and analysis.

The reference pipeline scales pixels to ``[0, 2]`` (``x / 255 * 2``) and
then subtracts a local 5x5 box mean. (The paper says "patch-wise mean
subtraction and unit variance"; in the reference code the variance divisor
came out as 1 through an integer division, so only the mean is removed.)
:func:`local_contrast_normalize` offers the true normalisation as an option.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from captum_fau.errors import InputShapeError


def _check_4d(x: torch.Tensor, what: str) -> None:
    if x.dim() != 4:
        raise InputShapeError(f"{what} expects a batch [B, C, H, W], got shape {tuple(x.shape)}.")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 (0..255) -> float32 in [0, 1]; float input is returned as float32 unchanged."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Per-channel mean over a ``size`` x ``size`` window, with replicate padding at the border."""
    _check_4d(x, "box_mean")
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size // 2
    padded = F.pad(x, (lo, hi, lo, hi), mode="replicate")
    kernel = x.new_full((c, 1, size, size), 1.0 / (size * size))
    return F.conv2d(padded, kernel, groups=c)


def local_mean_subtract(x: torch.Tensor, size: int = 5) -> torch.Tensor:
    """Subtract the local ``size`` x ``size`` mean (the reference preprocessing). ``size=0`` is a no-op."""
    return x if size <= 0 else x - box_mean(x, size)


def local_contrast_normalize(x: torch.Tensor, size: int = 5, eps: float = 1e-2) -> torch.Tensor:
    """True patch-wise normalisation: subtract the local mean and divide by the local std."""
    centred = local_mean_subtract(x, size)
    std = box_mean(centred * centred, size).clamp_min(0).sqrt()
    return centred / std.clamp_min(eps)


def scale_pixels(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> the reference scale [0, 2]."""
    return x01 * 2.0


def model_input(images: torch.Tensor, local_mean: int = 5) -> torch.Tensor:
    """uint8 (or [0, 1] float) images ``[B, C, H, W]`` -> the zero-bias CNN's input.

    Args:
        images (Tensor): ``[B, C, H, W]``, uint8 0..255 or float in [0, 1].
        local_mean (int, optional): Box size of the local mean subtraction; 0 disables it. Default: 5

    Returns:
        Tensor: float32 ``[B, C, H, W]``.

    Examples::

        >>> import torch
        >>> x = torch.full((1, 1, 8, 8), 255, dtype=torch.uint8)
        >>> float(model_input(x, local_mean=0).max()), float(model_input(x).abs().max()) < 1e-6
        (2.0, True)
    """
    _check_4d(images, "model_input")
    return local_mean_subtract(scale_pixels(to_unit(images)), local_mean)


__all__ = ["box_mean", "local_contrast_normalize", "local_mean_subtract", "model_input", "scale_pixels", "to_unit"]
