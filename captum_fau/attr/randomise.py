"""Randomising a model's weights for the sanity check: which layers, how, and one copy randomised in place.

Randomising replaces each parameter tensor of a layer with a weight of two or more dimensions
(convolutions, linear maps) by draws from a normal distribution with the trained tensor's mean and
standard deviation. Normalisation layers (BatchNorm, GroupNorm, LayerNorm: one-dimensional
weights) keep their trained parameters and running statistics: :func:`normalisation_layers`
names them, and the check states it.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from captum_fau._utils.modules import stop_at_layer


def weighted_layers(
    model: nn.Module, layer: nn.Module, sample: torch.Tensor, additional_forward_args: Any = None
) -> list[str]:
    """Dotted names of the modules with a weight of 2 or more dimensions (convolutions, linear maps)
    that run before ``layer``'s output is ready, ``layer`` included, in execution order."""
    names = {module: name for name, module in model.named_modules() if name}
    order: list[str] = []

    def record(module: nn.Module, _args: Any, _out: Any) -> None:
        weight = getattr(module, "weight", None)
        name = names.get(module)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and name is not None and name not in order:
            order.append(name)

    handles = [m.register_forward_hook(record) for m in names]
    try:
        with torch.no_grad():
            stop_at_layer(model, layer, additional_forward_args)(sample)
    finally:
        for handle in handles:
            handle.remove()
    return order


def layers_above(model: nn.Module, below: Sequence[str]) -> list[str]:
    """The weighted modules (weight of 2 or more dimensions) of ``model`` not in ``below``: those that do not
    run before the analysed layer, so their weights cannot change the reconstruction of its units."""
    return [name for name, module in model.named_modules() if name and name not in below
            and isinstance(getattr(module, "weight", None), torch.Tensor) and module.weight.dim() >= 2]  # fmt: skip


def _randomise_(module: nn.Module, seed: int, index: int) -> None:
    """Replace ``module``'s own parameters, in place, by normal draws with each trained tensor's mean and sd,
    from seed ``(seed, index)``."""
    gen = torch.Generator().manual_seed(int(seed) * 1009 + int(index))
    with torch.no_grad():
        for param in module.parameters(recurse=False):
            trained = param.detach().double()
            sd = float(trained.std()) if trained.numel() > 1 else 0.0
            draw = torch.randn(param.shape, generator=gen, dtype=torch.float64) * sd + float(trained.mean())
            param.copy_(draw.to(param.dtype))


def randomised_copy(model: nn.Module, layers: Sequence[str], seed: int, all_layers: Sequence[str]) -> nn.Module:
    """A deep copy of ``model`` whose ``layers`` have random parameters (see the module docstring).

    Layer ``all_layers[i]`` is always drawn from seed ``(seed, i)``, so a layer gets the same random
    weights in every step that randomises it (and in :func:`sanity_check`, which randomises one copy
    in place step by step).

    Examples::

        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))
        >>> clone = randomised_copy(net, ["2"], seed=0, all_layers=["0", "2"])
        >>> torch.equal(clone[0].weight, net[0].weight), torch.equal(clone[2].weight, net[2].weight)
        (True, False)
    """
    clone = copy.deepcopy(model)
    for name in layers:
        _randomise_(clone.get_submodule(name), seed, list(all_layers).index(name))
    return clone


class _RandomisedModel:
    """One deep copy of the model whose layers are randomised or restored in place, step by step; a layer's
    random weights are those of :func:`randomised_copy` (same seed, same layer index)."""

    def __init__(self, model: nn.Module, layers: Sequence[str], seed: int) -> None:
        self.model = copy.deepcopy(model)
        self.layers, self.seed = list(layers), int(seed)
        self._trained = {name: [p.detach().clone() for p in self.model.get_submodule(name).parameters(recurse=False)]
                         for name in self.layers}  # fmt: skip
        self._random: set[str] = set()

    def set(self, randomised: Sequence[str]) -> None:
        """Give exactly the layers ``randomised`` random weights, the others their trained ones."""
        for index, name in enumerate(self.layers):
            want = name in randomised
            if want == (name in self._random):
                continue  # unchanged: the same seed would draw the same weights
            module = self.model.get_submodule(name)
            if want:
                _randomise_(module, self.seed, index)
            else:
                with torch.no_grad():
                    for param, trained in zip(module.parameters(recurse=False), self._trained[name]):
                        param.copy_(trained)
        self._random = set(randomised)


def normalisation_layers(model: nn.Module) -> list[str]:
    """Dotted names of the modules with trained parameters that randomisation leaves alone (one-dimensional
    weights or running statistics: BatchNorm, GroupNorm, LayerNorm, ...)."""
    out = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        has_stats = getattr(module, "running_mean", None) is not None
        if name and (has_stats or (isinstance(weight, torch.Tensor) and weight.dim() == 1)):
            out.append(name)
    return out


__all__ = ["layers_above", "normalisation_layers", "randomised_copy", "weighted_layers"]
