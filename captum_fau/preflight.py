"""Checks :func:`captum_fau.analyze.analyze` runs before the first batch.

Everything a user can get wrong about the model, the data and their labels is found here,
in a second, and raised as a :mod:`captum_fau.errors` exception that names the fix, rather
than after a scan of minutes or as a traceback from inside torch:

* the model takes one image batch (:func:`~captum_fau.inputs.probe.check_single_input`) and one
  image goes through it up to the analysed layer (:func:`check_forward`);
* the items are dicts with a float ``"image"`` tensor ``[C, H, W]`` (:func:`check_items`);
* AU labels, when the data has them, cover enough images for FAU-KL's histograms
  (:func:`check_au_labels`).

Raw tensors are accepted as data: :func:`tensor_dataset` turns a float ``[N, C, H, W]`` tensor
into a dataset of unlabelled images (the run notes that FAU-KL and accuracy are skipped for want
of labels); a ``uint8`` tensor is refused, since its scale cannot be guessed safely.

Examples::

    >>> import torch
    >>> data, notes = tensor_dataset(torch.rand(4, 1, 96, 96))
    >>> len(data), data[0]["image"].shape
    (4, torch.Size([1, 96, 96]))
    >>> tensor_dataset(torch.zeros(4, 1, 96, 96, dtype=torch.uint8))
    Traceback (most recent call last):
    ...
    captum_fau.errors.InputShapeError: The images are a torch.uint8 tensor; ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from captum_fau.errors import DatasetError, InputShapeError, LabelError
from captum_fau.inputs.forward import ForwardCheck

#: FAU-KL's histogram bins in :func:`~captum_fau.analyze.analyze`.
ANALYSIS_BINS = 10


def _dtype_fix(dtype: torch.dtype) -> str:
    return (
        f"The images are a {dtype} tensor; the models read float images in [0, 1] (what every captum-fau "
        "dataset yields). Convert them first, e.g. images.float() / 255 for 8-bit pixels."
    )


class TensorImages(Dataset):
    """Items ``{"image": images[i]}`` of a float tensor ``[N, C, H, W]`` (no labels)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index]}

    def __repr__(self) -> str:
        return f"TensorImages({list(self.images.shape)}, {self.images.dtype})"


def tensor_dataset(images: torch.Tensor) -> tuple[TensorImages, list[str]]:
    """A dataset of the images of a float tensor ``[N, C, H, W]``, and the note saying what it lacks.

    Args:
        images (Tensor): Float images ``[N, C, H, W]`` in [0, 1], preprocessed as the model expects.

    Returns:
        tuple: The dataset and one note for the report.

    Raises:
        InputShapeError: not 4-D, empty, not floating point, or holding NaN / inf.
    """
    if images.dim() != 4:
        raise InputShapeError(
            f"A tensor passed as data must be [N, C, H, W], got shape {tuple(images.shape)}; add the channel "
            "dimension with images.unsqueeze(1) for gray images, or a batch dimension with images[None]."
        )
    if images.shape[0] == 0:
        raise DatasetError("The tensor passed as data holds no images; pass at least one image [1, C, H, W].")
    if not images.is_floating_point():
        raise InputShapeError(_dtype_fix(images.dtype))
    if not bool(torch.isfinite(images).all()):
        raise InputShapeError("The tensor passed as data holds NaN or inf values; replace them before the analysis.")
    note = (
        f"Data given as a tensor {list(images.shape)}: fed to the model as is (no preprocessing) and without labels, "
        "so FAU-KL and accuracy are skipped; pass a FaceSet or a data spec with AU / emotion labels for them."
    )
    return TensorImages(images.detach().cpu()), [note]


def check_items(dataset: Any) -> None:
    """Raise unless the first item is a dict with a float ``"image"`` tensor ``[C, H, W]``.

    Raises:
        DatasetError: the item is not a dict with an ``"image"`` entry.
        InputShapeError: the image is not a 3-D floating-point tensor.
    """
    item = dataset[0]
    if not isinstance(item, Mapping) or "image" not in item:
        raise DatasetError(
            f"The dataset's items are {type(item).__name__}, not dicts with an 'image' entry; return "
            "{'image': tensor [C, H, W], 'aus': ..., 'emotion': ...} from __getitem__, or pass a FaceSet or a data spec."
        )
    image = item["image"]
    if not isinstance(image, torch.Tensor):
        raise InputShapeError(
            f"item['image'] is a {type(image).__name__}, not a torch tensor; return torch.as_tensor(image).float() / 255 "
            "for 8-bit pixels."
        )
    if not image.is_floating_point():
        raise InputShapeError(_dtype_fix(image.dtype))
    if image.dim() != 3:
        raise InputShapeError(
            f"item['image'] must be [C, H, W], got shape {tuple(image.shape)}; use image.unsqueeze(0) for a gray image."
        )


def au_labelled_count(faces: Any) -> int | None:
    """Images with at least one coded AU (None when the dataset holds no AU array, e.g. lazy sets)."""
    aus = getattr(faces, "aus", None)
    if not tuple(getattr(faces, "au_ids", ()) or ()):
        return None
    if aus is None:  # a lazy set (SynthFACS) labels every item it renders
        return len(faces) if getattr(faces, "name", "") == "synthfacs" else None
    values = np.asarray(aus, dtype=np.float64)
    return int(np.isfinite(values).any(axis=1).sum()) if values.ndim == 2 else None


def check_au_labels(faces: Any, bins: int = ANALYSIS_BINS) -> None:
    """Raise when the data has AU labels on too few images for FAU-KL (two per histogram bin).

    Raises:
        LabelError: no image has an AU row (the AU table does not match the images), or too few do.
    """
    from captum_fau.concept.statistics import MIN_IMAGES_PER_BIN

    labelled = au_labelled_count(faces)
    if labelled is None:
        return
    need = MIN_IMAGES_PER_BIN * bins
    source = (getattr(faces, "meta", None) or {}).get("au_csv")
    where = f"the AU table {source}" if source else "the AU labels"
    if labelled == 0:
        raise LabelError(
            f"None of the {len(faces)} images has a row in {where}: its file column does not name the images. "
            "Make the file (or input) column hold the image paths relative to the data folder, or their file "
            "names, e.g. the image a.png needs a row 'a.png,...' (FaceSet.meta['skipped'] lists the unmatched rows)."
        )
    if labelled < need:
        have = f"The data has {labelled} images" if labelled == len(faces) else (
            f"Only {labelled} of {len(faces)} images have AU labels in {where}")
        raise LabelError(
            f"{have}; FAU-KL needs at least {need} "
            f"({MIN_IMAGES_PER_BIN} per histogram bin). Use more images (e.g. synthfacs:{max(need, 200)}), add AU rows for more of "
            "them (check that the AU table's file column names the images), or drop --au-csv to run without FAU-KL."
        )


def check_forward(model: nn.Module, dataset: Any, layer: str, device: torch.device) -> ForwardCheck:
    """Run the first item through ``model``: the one forward check before the first batch
    (:func:`captum_fau.inputs.forward.check_forward`), whose result later steps reuse.

    Returns:
        ForwardCheck: the output shape and the layer's ``[B, C, H, W]`` shape.

    Raises:
        ConfigError: the forward pass fails (its one-line reason and the fix are named).
        LayerError: the layer is not reached, or its output is not ``[B, C, H, W]``.
    """
    from captum_fau._utils.modules import layer_name
    from captum_fau.inputs.forward import check_forward as forward_check

    name = layer_name(model, layer)
    return forward_check(model, dataset[0]["image"][None].to(device), [name])


__all__ = ["ANALYSIS_BINS", "TensorImages", "au_labelled_count", "check_au_labels", "check_forward", "check_items",
           "tensor_dataset"]  # fmt: skip
