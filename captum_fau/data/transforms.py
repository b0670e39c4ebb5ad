"""Batched pixel preprocessing shared by every dataset, training and analysis.

The reference pipeline scales pixels to ``[0, 2]`` (``x / 255 * 2``) and
then subtracts a local 5x5 box mean. (The paper says "patch-wise mean
subtraction and unit variance"; in the reference code the variance divisor
came out as 1 through an integer division, so only the mean is removed.)
:func:`local_contrast_normalize` offers the true normalisation as an option.

At the border the reference box mean zero-pads (a convolution with a
``1/25`` kernel and two pixels of zero padding), so a border pixel's mean
counts the missing neighbours as 0: ``padding="zeros"``, the default. Models
trained with replicate padding record ``"local_mean_padding": "replicate"``
in their config; their :class:`~captum_fau.inputs.spec.InputSpec`
(:meth:`~captum_fau.inputs.spec.InputSpec.from_zerobias_config`) carries
it, so that such a model's inputs are preprocessed as it was trained.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from captum_fau.errors import ConfigError, InputShapeError

#: Border handling of the local box mean: ``"zeros"`` (the reference) or ``"replicate"``.
LOCAL_MEAN_PADDINGS: tuple[str, ...] = ("zeros", "replicate")
#: The key of a model's config that records its local-mean padding.
LOCAL_MEAN_PADDING_KEY = "local_mean_padding"


def _check_4d(x: torch.Tensor, what: str) -> None:
    if x.dim() != 4:
        raise InputShapeError(f"{what} expects a batch [B, C, H, W], got shape {tuple(x.shape)}.")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 (0..255) -> float32 in [0, 1]; float input is returned as float32 unchanged."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def check_local_mean_padding(padding: str) -> str:
    """``padding`` if it is one of :data:`LOCAL_MEAN_PADDINGS`, else :class:`ConfigError`."""
    if padding not in LOCAL_MEAN_PADDINGS:
        raise ConfigError(
            f"local_mean_padding must be one of {LOCAL_MEAN_PADDINGS}, got {padding!r}; "
            "'zeros' is the reference preprocessing."
        )
    return padding


def box_mean(x: torch.Tensor, size: int, padding: str = "zeros") -> torch.Tensor:
    """Per-channel mean over a ``size`` x ``size`` window.

    Args:
        x (Tensor): ``[B, C, H, W]``.
        size (int): Window side.
        padding (str, optional): ``"zeros"`` counts pixels outside the image as 0
            (the reference; equal to ``scipy.ndimage.uniform_filter(mode="constant")``),
            ``"replicate"`` repeats the border pixels. Default: ``"zeros"``

    Returns:
        Tensor: ``x``'s shape.
    """
    _check_4d(x, "box_mean")
    check_local_mean_padding(padding)
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size // 2
    padded = F.pad(x, (lo, hi, lo, hi), mode="constant" if padding == "zeros" else "replicate")
    kernel = x.new_full((c, 1, size, size), 1.0 / (size * size))
    return F.conv2d(padded, kernel, groups=c)


def local_mean_subtract(x: torch.Tensor, size: int = 5, padding: str = "zeros") -> torch.Tensor:
    """Subtract the local ``size`` x ``size`` mean (the reference preprocessing). ``size=0`` is a no-op.

    ``padding`` is the border handling of :func:`box_mean`.
    """
    return x if size <= 0 else x - box_mean(x, size, padding)


def local_contrast_normalize(x: torch.Tensor, size: int = 5, eps: float = 1e-2, padding: str = "zeros") -> torch.Tensor:
    """True patch-wise normalisation: subtract the local mean and divide by the local std."""
    centred = local_mean_subtract(x, size, padding)
    std = box_mean(centred * centred, size, padding).clamp_min(0).sqrt()
    return centred / std.clamp_min(eps)


def scale_pixels(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> the reference scale [0, 2]."""
    return x01 * 2.0


def model_input(images: torch.Tensor, local_mean: int = 5, padding: str = "zeros") -> torch.Tensor:
    """uint8 (or [0, 1] float) images ``[B, C, H, W]`` -> the zero-bias CNN's input.

    Args:
        images (Tensor): ``[B, C, H, W]``, uint8 0..255 or float in [0, 1].
        local_mean (int, optional): Box size of the local mean subtraction; 0 disables it. Default: 5
        padding (str, optional): Border handling of the local mean (see :func:`box_mean`);
            the model's :class:`~captum_fau.inputs.spec.InputSpec` records it. Default: ``"zeros"``

    Returns:
        Tensor: float32 ``[B, C, H, W]``.

    Examples::

        >>> import torch
        >>> x = torch.full((1, 1, 8, 8), 255, dtype=torch.uint8)
        >>> y = model_input(x)  # zero padding: the border sees dark neighbours
        >>> float(model_input(x, local_mean=0).max()), abs(float(y[0, 0, 4, 4])) < 1e-6, round(float(y[0, 0, 0, 0]), 2)
        (2.0, True, 1.28)
    """
    _check_4d(images, "model_input")
    return local_mean_subtract(scale_pixels(to_unit(images)), local_mean, padding)


__all__ = [
    "LOCAL_MEAN_PADDINGS",
    "LOCAL_MEAN_PADDING_KEY",
    "box_mean",
    "check_local_mean_padding",
    "local_contrast_normalize",
    "local_mean_subtract",
    "model_input",
    "scale_pixels",
    "to_unit",
]
