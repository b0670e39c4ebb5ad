"""Device names users pass (``--device``, ``device=``), validated once for the whole library."""

from __future__ import annotations

import torch

from captum_fau.errors import DeviceError


def resolve_device(device: str | torch.device) -> torch.device:
    """Validate a device name and check it is usable.

    Raises:
        DeviceError: the name is not a torch device, or that device is not available here.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(
            f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from err
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
        raise DeviceError(f"Unsupported device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return dev


__all__ = ["resolve_device"]
