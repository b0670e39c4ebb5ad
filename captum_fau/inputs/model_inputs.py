"""A dataset as one model sees it: raw face crops through the model's :class:`InputSpec`.

Datasets hold raw face crops (uint8 0..255 or float ``[0, 1]``, gray or RGB).
:class:`ModelInputs` wraps one and yields the same items, labels untouched, with
``"image"`` replaced by :meth:`InputSpec.apply <captum_fau.inputs.spec.InputSpec.apply>`
of the raw crop. It is the one preprocessing path of ``analyze``, ``topn``, ``fau-kl`` and
``evaluate``: a :class:`~captum_fau.data.base.FaceSet` is read in batched form
(:meth:`ModelInputs.tensors`), a lazy :class:`~captum_fau.data.synthfacs.SynthFACS` or any
dataset of dict items one item at a time (``raw_item(i)`` where the dataset has it, else
``data[i]["image"]`` taken as the raw crop).

Examples::

    >>> import numpy as np
    >>> from captum_fau.data.base import FaceSet
    >>> from captum_fau.inputs.spec import InputSpec
    >>> faces = FaceSet(images=np.full((3, 96, 96), 255, np.uint8), class_names=("a",), emotions=np.zeros(3))
    >>> inputs = ModelInputs(faces, InputSpec(size=48, channels=3, mean=0.5, std=0.5))
    >>> inputs.tensors([0, 2]).shape, float(inputs[1]["image"].max()), inputs[1]["emotion"]
    (torch.Size([2, 3, 48, 48]), 1.0, 0)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from captum_fau.inputs.spec import InputSpec
from captum_fau.errors import DatasetError, InputShapeError


def raw_item(data: Any, index: int) -> dict[str, Any]:
    """Item ``index`` of ``data`` with its raw face crop in ``"image"`` (``[C, H, W]``).

    Raises:
        DatasetError: the item is not a dict with an ``"image"`` tensor (or array).
    """
    getter = getattr(data, "raw_item", None)
    item = getter(index) if callable(getter) else data[index]
    if not isinstance(item, dict) or "image" not in item:
        raise DatasetError(
            f"{type(data).__name__} items must be dicts with an 'image' entry (a raw face crop [C, H, W], uint8 or "
            f"float in [0, 1]); item {index} is a {type(item).__name__}."
        )
    image = item["image"]
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise DatasetError(f"item {index}'s 'image' must be a tensor [C, H, W], got {type(image).__name__}.")
    if image.dim() == 2:
        image = image[None]
    return {**item, "image": image}


def raw_shape(data: Any) -> tuple[int, int, int]:
    """``(C, H, W)`` of ``data``'s raw crops (its first item), checked for the contract.

    Raises:
        DatasetError: an empty dataset.
        InputShapeError: a crop that is not ``[C, H, W]`` with 1 or 3 channels, or not uint8 /
            float in ``[0, 1]`` (16-bit, RGBA and 0..255 float data are named with the fix).
    """
    if len(data) == 0:
        raise DatasetError("The dataset is empty.")
    image = raw_item(data, 0)["image"]
    if image.dim() != 3:
        raise InputShapeError(f"face crops must be [C, H, W], got shape {tuple(image.shape)}.")
    InputSpec()._checked(image[None])  # the contract's own checks: channels and pixel range
    if image.dtype not in (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise InputShapeError(
            f"face crops must be uint8 (0..255) or float in [0, 1], got {image.dtype}; convert 16-bit images with "
            "image.float() / 65535."
        )
    return int(image.shape[0]), int(image.shape[1]), int(image.shape[2])


def map_masks(spec: InputSpec, masks: np.ndarray) -> np.ndarray:
    """Region masks drawn on the raw face crops, carried into the model's input frame.

    The masks go through exactly the spatial part of :meth:`InputSpec.apply
    <captum_fau.inputs.spec.InputSpec.apply>` (resize with the spec's interpolation and
    antialiasing, then timm's centre crop), so that a pixel of a mask and a pixel of the model's
    input are the same place on the face for any input size, aspect or crop. A model pixel is in
    a region when at least half of it is (the resized mask's coverage >= 0.5).

    Args:
        masks (np.ndarray): bool ``[K, J, H, W]`` at the raw crops' size ``(H, W)``.

    Returns:
        np.ndarray: bool ``[K, J, h, w]`` with ``(h, w)`` the model's input size.

    Examples::

        >>> m = np.zeros((1, 1, 96, 96), bool); m[0, 0, 48:, :] = True   # the lower half
        >>> out = map_masks(InputSpec(size=48), m)
        >>> out.shape, int(out[0, 0, :24].sum()), int(out[0, 0, 24:].sum())
        ((1, 1, 48, 48), 0, 1152)
    """
    masks = np.asarray(masks)
    if masks.ndim != 4:
        raise InputShapeError(f"region masks must be [K, J, H, W], got shape {masks.shape}.")
    k, j, h, w = masks.shape
    target = spec.output_size((h, w))
    if (h, w) == target and spec.crop_pct == 1.0:
        return masks.astype(bool)
    out = np.empty((k, j, *target), dtype=bool)
    flat = masks.reshape(k * j, 1, h, w)
    step = max(1, 2**24 // max(1, target[0] * target[1]))  # bounded float memory at large inputs
    for start in range(0, k * j, step):
        part = torch.from_numpy(np.ascontiguousarray(flat[start : start + step], dtype=np.float32))
        out.reshape(k * j, *target)[start : start + step] = (spec._resize(part)[:, 0] >= 0.5).numpy()
    return out


class ModelInputs(Dataset):
    """``data``'s items, labels unchanged, with ``"image"`` turned into ``spec``'s model input.

    Attributes the wrapped dataset has (``class_names``, ``au_ids``, ``emotions``,
    ``subjects``, ``sequences``, ``names``, ``meta``, ``name``, ...) are read through.

    Args:
        data: A :class:`~captum_fau.data.base.FaceSet`, a lazy SynthFACS, or any map-style
            dataset of dict items with a raw ``"image"`` ``[C, H, W]``.
        spec (InputSpec): The model's input contract.

    Attributes:
        forward_check (ForwardCheck or None): What the one forward check before the first batch found
            (:func:`captum_fau.inputs.forward.check_forward`, run by
            :func:`captum_fau.inputs.resolve.model_inputs`), for the steps after it; None until checked.

    Raises:
        DatasetError: ``spec`` is not an :class:`InputSpec`.
    """

    def __init__(self, data: Any, spec: InputSpec) -> None:
        if not isinstance(spec, InputSpec):
            raise DatasetError(f"ModelInputs needs an InputSpec, got {type(spec).__name__}.")
        self.data = data
        self.spec = spec
        self.forward_check: Any = None

    @property
    def batched(self) -> bool:
        """Whether rows are read in one batched operation (:meth:`tensors` / :meth:`labels`)."""
        return callable(getattr(self.data, "raw_images", None)) and callable(getattr(self.data, "labels", None))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = raw_item(self.data, index)
        item["image"] = self.spec.apply(item["image"][None])[0]
        return item

    def tensors(self, indices: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """The model inputs of rows ``indices`` (all rows by default), ``[n, C, H, W]`` float32."""
        if self.batched:
            return self.spec.apply(self.data.raw_images(indices))
        rows = range(len(self)) if indices is None else [int(i) for i in np.asarray(indices).reshape(-1)]
        return self.spec.apply(torch.stack([raw_item(self.data, i)["image"] for i in rows]))

    def labels(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The wrapped dataset's labels of rows ``indices`` (see :meth:`FaceSet.labels`)."""
        return self.data.labels(indices)

    def __getattr__(self, name: str) -> Any:
        if name in ("data", "spec", "forward_check") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.data, name)

    def __repr__(self) -> str:
        return f"ModelInputs({self.data!r}, {self.spec.describe()!r})"


__all__ = ["ModelInputs", "map_masks", "raw_item", "raw_shape"]
