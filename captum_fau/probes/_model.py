"""Running a model up to a layer for the probes: the input spec, precision and spatial maxima."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from captum_fau._utils.modules import layer_name, stop_at_layer
from captum_fau.errors import ConfigError, LayerError

#: Precisions of the probe's forward pass.
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")


def check_model(model: Any, what: str) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{what} takes a torch nn.Module as model, got {type(model).__name__}.")
    return model


def resolve_spec(model: nn.Module, input_spec: Any, data_shape: tuple[int, int, int] = (1, 96, 96)
                 ) -> tuple[Any, list[str]]:  # fmt: skip
    """The model's input spec and its notes: ``input_spec`` when given (an analysis passes the spec its run
    resolved, so the probes see exactly what the scan saw), else THE decision of
    :func:`captum_fau.inputs.resolve.resolve_input_spec` for gray faces of ``data_shape`` (what the model
    declares, a probe forward when it declares no size, and a forward check at the spec's size).

    Raises:
        ConfigError: ``input_spec`` is not an InputSpec, or no size runs on the model.
    """
    # The one import of the input contract in probes/ (it moves with the input contract's package).
    from captum_fau.inputs.resolve import resolve_input_spec
    from captum_fau.inputs.spec import InputSpec as spec_cls

    if input_spec is not None:
        if not isinstance(input_spec, spec_cls):
            raise ConfigError(f"input_spec must be an InputSpec, got {type(input_spec).__name__}.")
        return input_spec, []
    spec = resolve_input_spec(model, data_shape)
    rendered = (1, *spec.size) if spec.size is not None else data_shape  # the faces are rendered at the spec's size
    return spec, [f"Input: {spec.describe()}."] + [f"Input: {note}." for note in spec.notes(rendered)]


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    return precision


def layer_forward(
    model: nn.Module, layer: Any, precision: str = "float32"
) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """``(layer name, f)`` with ``f(x)`` = the per-filter spatial maximum ``[B, C]`` of the layer (float32).

    The forward stops at the layer. ``precision="bfloat16"`` runs it under CPU/GPU autocast in
    channels-last layout (about 3-4x faster on CPUs with AMX/AVX-512 BF16; maxima differ from
    float32 by ~0.5% of their range, stated in the result).
    """
    name = layer_name(model, layer)
    run = stop_at_layer(model, model.get_submodule(name))
    check_precision(precision)

    def spatial_max(x: torch.Tensor) -> torch.Tensor:
        if precision == "bfloat16":
            context: Any = torch.autocast(x.device.type, dtype=torch.bfloat16)
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            context = nullcontext()
        with torch.no_grad(), context:
            out = run(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise LayerError(f"Layer {name!r} outputs {shape}, not a [B, C, H, W] map; probe a convolutional layer.")
        return out.float().amax(dim=(2, 3))

    return name, spatial_max


def model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def batched_maxima(
    f: Callable[[torch.Tensor], torch.Tensor], spec: Any, images: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """``f`` over uint8 images ``[N, S, S]`` through ``spec.apply`` in batches: float32 ``[N, C]``.

    Every batch is padded to ``batch_size`` images: convolution libraries pick their algorithm by
    batch size, and the same image must give bit-identical maxima wherever it falls, so that an AU
    without effect yields a difference of exactly zero.
    """
    outs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, axis=0)])
        raw = torch.from_numpy(chunk)[:, None].to(device)
        outs.append(f(spec.apply(raw))[:n].cpu().numpy())
    return np.concatenate(outs).astype(np.float32)


__all__ = [
    "PRECISIONS",
    "batched_maxima",
    "check_model",
    "check_precision",
    "layer_forward",
    "model_device",
    "resolve_spec",
]
