"""Splitting a model at a layer: the head that turns the layer's output into logits, checked exactly.

Ablating a filter only changes what comes after the layer, so the part before it runs once per
image and the head runs once per (filter, image) from the cached activations. The head is found
by recording one forward pass: the leaf modules called after the layer must form a chain (each
one's input is the previous one's output, possibly reshaped, e.g. a ``flatten``), and running that
chain on the layer's output must reproduce the model's output exactly; otherwise the split is
refused (pass ``head=`` yourself).

The chain's leading modules that act on each channel separately (ReLU-like activations, 2-D
pools, eval-mode dropout and batch norm) form the *prefix*: a channel's prefix output depends on
that channel alone, so the prefix runs once on the cached maps, and an ablated channel's prefix
output is the prefix of its replacement map. This is what makes the ablation of every filter cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from captum_fau._utils.modules import forward_with_args, layer_name
from captum_fau.errors import LayerError

#: Module types that act on each channel of a ``[B, C, H, W]`` map separately (in eval mode).
CHANNELWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity,
    nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout2d,
    nn.BatchNorm2d,
)  # fmt: skip


@dataclass
class _Step:
    module: nn.Module
    in_shape: tuple[int, ...]


class SplitModel:
    """``before(x)`` -> layer output; ``prefix(a)`` per-channel part; ``rest(r)`` -> logits.

    Build with :meth:`build`; ``head(a) == rest(prefix(a))``.
    """

    def __init__(self, before: Callable[[torch.Tensor], torch.Tensor], prefix: list[_Step], rest: list[_Step]) -> None:
        self.before = before
        self._prefix = prefix
        self._rest = rest

    @staticmethod
    def _run(steps: list[_Step], x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            if tuple(x.shape[1:]) != step.in_shape:
                x = x.reshape((x.shape[0],) + step.in_shape)
            x = step.module(x)
        return x

    def prefix(self, a: torch.Tensor) -> torch.Tensor:
        return self._run(self._prefix, a)

    def rest(self, r: torch.Tensor) -> torch.Tensor:
        return self._run(self._rest, r)

    def head(self, a: torch.Tensor) -> torch.Tensor:
        return self.rest(self.prefix(a))

    @classmethod
    def build(cls, model: nn.Module, layer: Any, sample: torch.Tensor) -> tuple[str, "SplitModel"]:
        """Record a forward on ``sample`` (model inputs, a few images) and split after ``layer``.

        Raises:
            LayerError: the layer's output is not ``[B, C, H, W]``, nothing runs after it, or
                the modules after it are not a plain chain that reproduces the model's output.
        """
        from captum_fau._utils.modules import stop_at_layer

        name = layer_name(model, layer)
        target = model.get_submodule(name)
        layer_out, steps, output, chained = _record(model, target, sample)
        if layer_out.dim() != 4:
            raise LayerError(
                f"Layer {name!r} outputs shape {tuple(layer_out.shape)}, not [B, C, H, W]; ablating one of its "
                "'filters' would change what the next layer receives. Pick a convolutional layer (e.g. conv3)."
            )
        if not steps:
            raise LayerError(f"Nothing runs after layer {name!r}; pick a layer before the classifier output.")
        if not chained:
            raise LayerError(
                f"The modules after layer {name!r} are not a plain chain (a skip connection, a functional op or a "
                "second input uses something else than the previous module's output); ablation from cached "
                "activations would be wrong. Pick another layer, or pass head= a function from the layer's output "
                "to the logits."
            )
        split = cls(stop_at_layer(model, target), [], [])
        n_prefix = 0
        for step in steps:
            same_channels = len(step.in_shape) == 3 and step.in_shape[0] == layer_out.shape[1]
            if isinstance(step.module, CHANNELWISE) and same_channels:
                n_prefix += 1
            else:
                break
        split._prefix, split._rest = steps[:n_prefix], steps[n_prefix:]
        with torch.no_grad():
            again = split.head(layer_out.clone())
        if again.shape != output.shape or not torch.allclose(again, output, rtol=1e-5, atol=1e-5):
            raise LayerError(
                f"The modules after layer {name!r} do not form a plain chain that reproduces the model's output "
                "(a skip connection, a functional op or a second input); ablation from cached activations would be "
                "wrong. Pick another layer, or pass head= a function from the layer's output to the logits."
            )
        return name, split


def _record(
    model: nn.Module, target: nn.Module, sample: torch.Tensor
) -> tuple[torch.Tensor, list[_Step], torch.Tensor, bool]:
    """The layer's output, the leaf modules called after it (input shapes), the model output, and
    whether each module took the previous one's output."""
    leaves = [m for m in model.modules() if not list(m.children())]
    state: dict[str, Any] = {"after": False, "layer_out": None, "steps": [], "last": None, "broken": False}

    def hook(module: nn.Module, args: tuple, out: Any) -> None:
        if module is target:
            state["after"], state["last"] = True, out
            state["layer_out"] = out.clone() if isinstance(out, torch.Tensor) else out
            return
        if not state["after"] or not isinstance(out, torch.Tensor) or not args:
            return
        x = args[0]
        last = state["last"]
        chained = isinstance(x, torch.Tensor) and last is not None and (
            x is last or (x.data_ptr() == last.data_ptr() and x.numel() == last.numel()))  # fmt: skip
        if not chained:
            state["broken"] = True
        state["steps"].append(_Step(module, tuple(x.shape[1:])))
        state["last"] = out

    handles = [m.register_forward_hook(hook) for m in set(leaves) | {target}]
    try:
        with torch.no_grad():
            output = forward_with_args(model, sample)
    finally:
        for handle in handles:
            handle.remove()
    if state["layer_out"] is None:
        raise LayerError("The layer was not reached by the model's forward pass.")
    if not isinstance(state["layer_out"], torch.Tensor) or not isinstance(output, torch.Tensor):
        raise LayerError("Ablation needs a layer and a model that each return one tensor.")
    return state["layer_out"], state["steps"], output, not state["broken"]


__all__ = ["CHANNELWISE", "SplitModel"]
