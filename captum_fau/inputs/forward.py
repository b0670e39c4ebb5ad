"""THE forward check run before the first batch: one forward of one input, every requested layer recorded.

The analysis, the CLI and :func:`captum_fau.inputs.resolve.resolve_input_spec` run a model once on a
sample before any long work. :func:`check_forward` is that one run: it fails with a message naming the
fix when the model does not take the input, when a requested layer is not reached or does not output a
feature map ``[B, C, H, W]``; its :class:`ForwardCheck` (the output shape and each layer's shape) is
passed on to the steps that need those shapes, so they do not run the model again.

Examples::

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 46 * 46, 7))
    >>> check = check_forward(net, torch.zeros(1, 1, 48, 48), layers=["0"])
    >>> check.output_shape, check.layer_shapes["0"]
    ((1, 7), (1, 4, 46, 46))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from captum_fau.errors import ConfigError, LayerError
from captum_fau.inputs.probe import _first_tensor, check_single_input


@dataclass(frozen=True)
class ForwardCheck:
    """What the one forward before the first batch found.

    Args:
        input_shape (tuple of int): The sample's shape.
        output_shape (tuple of int): The model's output (its first tensor), e.g. ``(1, 7)``.
        layer_shapes (dict, optional): Layer name -> its output shape ``(B, C, H, W)``.
    """

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layer_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _failure(model: nn.Module, shape: Sequence[int], err: BaseException, size_source: str | None) -> str:
    text = str(err).strip().splitlines()
    reason = f"{type(err).__name__}: {text[0] if text else ''}"
    if size_source is None:
        return (f"The model fails on one image {list(shape)} ({reason}). captum-fau calls model(images) with a float "
                "batch [B, C, H, W]; give data of the size and channels the model takes, or wrap the model in a "
                "module whose forward(x) takes that batch.")  # fmt: skip
    return (f"{type(model).__name__} does not run on {shape[1]}-channel {shape[2]}x{shape[3]} input (size from "
            f"{size_source}): {reason}. Pass the size and channels the model was trained with: --input-size H[xW] "
            "--channels C (Python: input_spec={'size': ..., 'channels': ...}).")  # fmt: skip


def check_forward(
    model: nn.Module, sample: torch.Tensor, layers: Sequence[str] = (), *, size_source: str | None = None
) -> ForwardCheck:
    """Run ``model`` once on ``sample`` (eval mode, no gradients) and record ``layers``' outputs.

    Args:
        model (nn.Module): The model; ``forward`` must take one image batch.
        sample (Tensor): A batch ``[B, C, H, W]`` as the model will get it.
        layers (sequence of str, optional): Layer names (``model.named_modules()``) to record.
        size_source (str, optional): Where the input size came from (an :class:`InputSpec` source);
            given, a failing model is reported as a wrong input size with the ``--input-size`` fix.

    Returns:
        ForwardCheck: the output shape and each layer's shape.

    Raises:
        ConfigError: ``forward`` needs several inputs, or the model fails on the sample.
        LayerError: a layer is not called, is called several times, or outputs no ``[B, C, H, W]``.
    """
    check_single_input(model)
    modules = dict(model.named_modules())
    seen: dict[str, list[Any]] = {name: [] for name in layers}
    handles = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: seen[name].append(out))
               for name in layers if name in modules]  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = _first_tensor(model(sample))
    except Exception as err:  # noqa: BLE001 - turned into a message naming the fix
        raise ConfigError(_failure(model, tuple(sample.shape), err, size_source)) from None
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return ForwardCheck(tuple(sample.shape), tuple(out.shape), {name: _layer_shape(name, seen.get(name, []))
                                                                for name in layers})  # fmt: skip


def _layer_shape(name: str, outputs: list[Any]) -> tuple[int, ...]:
    if not outputs:
        raise LayerError(f"Layer {name!r} is not called in the model's forward pass; choose a layer forward() uses.")
    if len(outputs) > 1:
        raise LayerError(
            f"Layer {name!r} is called {len(outputs)} times per forward pass (a module reused at several places), "
            "so its output is ambiguous; give each use its own module or pick another layer."
        )
    out = outputs[0]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise LayerError(
            f"Layer {name!r} outputs {shape}, not a feature map [B, C, H, W]; choose a convolutional layer."
        )
    return tuple(out.shape)


__all__ = ["ForwardCheck", "check_forward"]
