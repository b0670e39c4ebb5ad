"""Devices: the names users pass (``--device``, ``device=``) and where a model's inputs go.

Two questions, one function each:

* :func:`resolve_device` -- is this device name valid and usable here? (CLI
  options, training, loading a model onto a device.)
* :func:`input_device` -- where do the inputs of this *model* go, given an
  optional requested device? (The scan: the model is not moved behind the
  caller's back, so a request must match the model's own device.)
"""

from __future__ import annotations

import torch
from torch import nn

from captum_fau.errors import DeviceError

_KNOWN = "use 'cpu', 'cuda', 'cuda:N' or 'mps'"


def _parse(device: str | torch.device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"Unknown device {device!r}; {_KNOWN}.") from err


def resolve_device(device: str | torch.device) -> torch.device:
    """Validate a device name and check it is usable.

    Args:
        device (str or torch.device): ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...

    Returns:
        torch.device: The parsed device.

    Raises:
        DeviceError: the name is not a torch device, or that device is not available here.

    Examples::

        >>> resolve_device("cpu")
        device(type='cpu')
    """
    dev = _parse(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"Device {device!r} was requested but CUDA is not available here; use --device cpu.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"Device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) are visible."
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceError(f"Device {device!r} was requested but MPS is not available here; use --device cpu.")
    elif dev.type != "cpu":
        raise DeviceError(f"Unsupported device {device!r}; {_KNOWN}.")
    return dev


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a stateless model).

    Examples::

        >>> model_device(torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def input_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """The device the inputs of ``model`` go to: the model's own; ``device``, if given, must be it.

    Args:
        model (nn.Module): The model the inputs are fed to.
        device (str, torch.device or None): A requested device, or None for the model's.

    Returns:
        torch.device: The model's device.

    Raises:
        DeviceError: ``device`` is not a device name, or the model lives elsewhere.
    """
    own = model_device(model)
    if device is None:
        return own
    wanted = _parse(device)
    if wanted.type != own.type or (wanted.index is not None and own.index is not None and wanted.index != own.index):
        raise DeviceError(
            f"The model lives on {own} but device={str(wanted)!r} was requested; move it first with "
            f"model.to({str(wanted)!r}) (or pass device=None to use the model's device)."
        )
    return own


__all__ = ["input_device", "model_device", "resolve_device"]
