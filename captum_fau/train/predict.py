"""A model's predictions and accuracy on a FaceSet, through the model's input contract
(:func:`~captum_fau.inputs.resolve.resolve_input_spec`), and the check that a set has the labels a step needs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from captum_fau._utils.device import resolve_device
from captum_fau.data.base import FaceSet
from captum_fau.errors import DatasetError, LabelError


def check_labelled(data: FaceSet, what: str, num_classes: int | None = None) -> np.ndarray:
    """Indices of ``data``'s labelled images; raise if it has none or no labels at all."""
    if not isinstance(data, FaceSet):
        raise DatasetError(f"The {what} set must be a captum_fau.data.FaceSet, got {type(data).__name__}.")
    if data.emotions is None:
        raise LabelError(f"The {what} set {data.name!r} has no emotion labels; training needs them.")
    labelled = np.flatnonzero(data.emotions >= 0)
    if len(labelled) == 0:
        raise DatasetError(f"The {what} set {data.name!r} has no labelled images (all emotions are -1).")
    if num_classes is not None and len(data.class_names) != num_classes:
        raise LabelError(
            f"The {what} set has {len(data.class_names)} classes {data.class_names} but training uses "
            f"{num_classes}; use sets built with the same class list."
        )
    return labelled


@torch.no_grad()
def predict(
    model: nn.Module,
    data: FaceSet,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    input_spec: Any = None,
) -> np.ndarray:
    """Predicted class of every image of ``data`` (eval mode), fed through the model's input spec.

    The raw face crops become the model's input by ``input_spec``, resolved against what the
    model declares (:func:`captum_fau.inputs.resolve.resolve_input_spec`): the zero-bias CNN's
    reference preprocessing with the local-mean padding its config records, timm's
    ``pretrained_cfg``, or a probe, so RGB and timm models are scored on what they were trained on.

    Args:
        model (nn.Module): A classifier.
        data (FaceSet): The images.
        device (str, optional): Where to run. Default: ``"cpu"``
        batch_size (int, optional): Images per forward pass. Default: 256
        input_spec (InputSpec or dict, optional): Explicit spec fields (they win). Default: None

    Returns:
        np.ndarray: ``[N]`` int64 predicted classes.
    """
    from captum_fau.inputs.model_inputs import ModelInputs
    from captum_fau.inputs.resolve import resolve_input_spec
    from captum_fau.inputs.spec import InputSpec

    dev = resolve_device(device)
    if len(data) == 0:
        return np.zeros(0, np.int64)
    spec = input_spec if isinstance(input_spec, InputSpec) and input_spec.size is not None else None
    if spec is None:
        spec = resolve_input_spec(model, (1, *data.image_size), input_spec)
    inputs = ModelInputs(data, spec)
    was_training = model.training
    model.eval()
    preds = []
    try:
        for start in range(0, len(data), batch_size):
            x = inputs.tensors(np.arange(start, min(start + batch_size, len(data))))
            preds.append(model(x.to(dev)).argmax(1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(preds).numpy().astype(np.int64)


def accuracy(model: nn.Module, data: FaceSet, device: str | torch.device = "cpu", batch_size: int = 256) -> float:
    """Fraction of ``data``'s labelled images that ``model`` classifies correctly."""
    labelled = check_labelled(data, "evaluation")
    preds = predict(model, data.subset(labelled), device, batch_size)
    return float((preds == data.emotions[labelled]).mean())


__all__ = ["accuracy", "check_labelled", "predict"]
