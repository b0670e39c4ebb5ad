"""Finding, checking and running up to the layers of any ``nn.Module``.

The one home of layer lookup (:func:`layer_name`, :func:`resolve_layers`, with
one error message that lists the model's conv-like layers), of probing a
layer's output shape (:func:`probe_layers`), of eval mode for a block
(:func:`eval_mode`), of calling a model with Captum-style
``additional_forward_args`` (:func:`forward_with_args`), and of stopping a
forward pass once a layer has run (:class:`StopForward`, :func:`stop_at_layer`).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
from torch import nn

from captum_fau.errors import LayerError

LayerSpec = str | nn.Module

#: Module types whose output is a ``[B, C, H, W]`` map whenever their input is one.
CONV_LIKE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.ConvTranspose2d)
#: Shape-keeping leaves a block of convolutions may hold and still output a ``[B, C, H, W]`` map.
_SPATIAL_LEAVES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout2d, nn.Identity, nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.LeakyReLU,
    nn.ELU, nn.PReLU, nn.Hardswish, nn.Sigmoid, nn.Tanh,
)  # fmt: skip


def _spatial_leaf(module: nn.Module) -> bool:
    # timm's 2-D norms and pools (LayerNorm2d, BatchNormAct2d, SelectAdaptivePool2d...) end in "2d"
    return isinstance(module, CONV_LIKE_TYPES + _SPATIAL_LEAVES) or type(module).__name__.lower().endswith("2d")


def conv_like_layers(model: nn.Module) -> list[str]:
    """Dotted names of the modules of ``model`` whose output is a ``[B, C, H, W]`` map: convolutions, and blocks
    holding convolutions (a ResNet's ``layer3``); shallow names first.

    Activations, pools and norms on their own are left out (a ReLU may follow a Linear layer). Blocks are
    checked by one probe forward of a zero image (:func:`_four_d_outputs`), so a block that turns its map
    into tokens (a ViT's patch embedding) is left out; where no probe runs, blocks made only of convolutions
    and shape-keeping 2-D modules are listed.

    Examples::

        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2), nn.ReLU())
        >>> conv_like_layers(net)
        ['0']
    """
    probed = _four_d_outputs(model)
    names = []
    for name, module in model.named_modules():
        if not name:
            continue
        leaves = [m for m in module.modules() if not any(True for _ in m.children())]
        if not any(isinstance(m, CONV_LIKE_TYPES) for m in leaves):
            continue
        if probed is not None and probed:
            keep = name in probed and (isinstance(module, CONV_LIKE_TYPES) or any(True for _ in module.children()))
        else:
            keep = isinstance(module, CONV_LIKE_TYPES) or all(_spatial_leaf(m) for m in leaves)
        if keep:
            names.append(name)
    return sorted(names, key=lambda n: n.count("."))


def _four_d_outputs(model: nn.Module) -> set[str] | None:
    """Modules that output one ``[B, C, H, W]`` tensor on a zero image of the model's declared size (timm's
    ``pretrained_cfg``), else the first size of 224, 96, 48 the model runs on; None when no probe runs."""
    first = next((m for m in model.modules() if isinstance(m, CONV_LIKE_TYPES)), None)
    if first is None:
        return None
    declared = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    sizes = [tuple(declared[1:])] if declared and len(declared) == 3 else []
    sizes += [(s, s) for s in (224, 96, 48)]
    name_of = {module: name for name, module in model.named_modules() if name}
    partial: set[str] | None = None
    for size in sizes:
        calls: dict[str, list[Any]] = {}
        handles = [m.register_forward_hook(lambda m, _i, out: calls.setdefault(name_of[m], []).append(
            tuple(out.shape) if isinstance(out, torch.Tensor) else None)) for m in name_of]  # fmt: skip
        was_training = model.training
        ok = True
        try:
            with torch.no_grad():
                model.eval()
                device = next(iter(model.parameters()), torch.empty(0)).device
                model(torch.zeros(1, first.in_channels, *size, device=device))
        except Exception:  # noqa: BLE001 - a probe: another size may run
            ok = False
        finally:
            model.train(was_training)
            for handle in handles:
                handle.remove()
        found = {n for n, seen in calls.items() if len(seen) == 1 and seen[0] is not None and len(seen[0]) == 4}
        if ok:
            return found
        partial = partial or (found or None)
    return partial


def layer_list_hint(model: nn.Module, limit: int = 40) -> str:
    """One sentence listing the layers of ``model`` with a ``[B, C, H, W]`` output (:func:`conv_like_layers`),
    for error messages."""
    names = conv_like_layers(model)
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    if not names:
        return ("The model has no convolutional layer: captum-fau analyses layers whose output is a feature map "
                "[B, C, H, W].")  # fmt: skip
    return f"Layers with a [B, C, H, W] output (convolutions and blocks of them): {shown}{more}."


def layer_name(model: nn.Module, layer: LayerSpec) -> str:
    """The dotted name of ``layer`` in ``model`` (``layer`` given by name or as the module).

    This is the one layer check of the library: every entry point that takes a
    layer (the scan, ``TopNDeconv``, ``FAUKL``, ``analyze``) goes through it.

    Args:
        model (nn.Module): The model.
        layer (str or nn.Module): A dotted module name (``"layer2.1.conv1"``) or the module itself.

    Returns:
        str: The dotted name.

    Raises:
        LayerError: if ``layer`` is not a submodule of ``model``; the message
            lists the conv-like layers the model does have.
    """
    if isinstance(layer, str):
        try:
            model.get_submodule(layer)
        except AttributeError:
            raise LayerError(
                f"The model ({type(model).__name__}) has no layer named {layer!r}. {layer_list_hint(model)}"
            ) from None
        if layer == "":
            raise LayerError(f"The layer name is empty; name a submodule. {layer_list_hint(model)}")
        return layer
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer and name:
                return name
        raise LayerError(
            f"The given {type(layer).__name__} module is not a submodule of the model ({type(model).__name__}); "
            f"pass a module of this model (e.g. model.conv3) or its dotted name. {layer_list_hint(model)}"
        )
    raise LayerError(f"A layer is a dotted module name or an nn.Module, got {type(layer).__name__}.")


def resolve_layers(model: nn.Module, layers: LayerSpec | Sequence[LayerSpec]) -> list[str]:
    """Dotted names of ``layers`` (one or several, by name or module), duplicates removed.

    Raises:
        LayerError: a layer is not in the model (see :func:`layer_name`), or none was given.

    Examples::

        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
        >>> resolve_layers(net, [net[0], "1", "0"])
        ['0', '1']
    """
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    names: list[str] = []
    for layer in layers:
        name = layer_name(model, layer)
        if name not in names:
            names.append(name)
    if not names:
        raise LayerError(f"No layer was requested. {layer_list_hint(model)}")
    return names


@contextmanager
def eval_mode(model: nn.Module, what: str = "The scan") -> Iterator[None]:
    """Put ``model`` in eval mode for the block and restore every submodule's own mode after.

    Warns (once per call site) when the model was in training mode, because
    dropout and batch statistics would otherwise change the activations.
    """
    modes = [(module, module.training) for module in model.modules()]
    if model.training:
        warnings.warn(
            f"{what} switched the model from training to eval mode (dropout off, BatchNorm running "
            "statistics) and restores training mode afterwards; call model.eval() first to silence this note.",
            UserWarning,
            stacklevel=3,
        )
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


class StopForward(Exception):
    """Raised from a forward hook to end a forward pass early (once the layers needed have run)."""


def forward_with_args(model: nn.Module, inputs: torch.Tensor, additional_forward_args: Any = None) -> Any:
    """``model(inputs, *additional_forward_args)``, Captum's convention: None adds nothing and
    a single non-tuple value is passed as one extra argument."""
    if additional_forward_args is None:
        return model(inputs)
    if not isinstance(additional_forward_args, tuple):
        additional_forward_args = (additional_forward_args,)
    return model(inputs, *additional_forward_args)


def stop_at_layer(
    model: nn.Module,
    layer: nn.Module,
    additional_forward_args: Any = None,
    capture: Literal["output", "input"] = "output",
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function running ``model`` on inputs only up to ``layer`` and returning its output
    (``capture="output"``) or its first input (``capture="input"``); later layers never run.

    Examples::

        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1))
        >>> stop_at_layer(net, net[1])(torch.randn(4, 1, 4, 4)).shape
        torch.Size([4, 2, 2, 2])
    """

    def run(x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def on_output(_module: nn.Module, _args: Any, output: torch.Tensor) -> None:
            captured.append(output)
            raise StopForward

        def on_input(_module: nn.Module, args: tuple) -> None:
            captured.append(args[0])
            raise StopForward

        if capture == "output":
            handle = layer.register_forward_hook(on_output)
        else:
            handle = layer.register_forward_pre_hook(on_input)
        try:
            forward_with_args(model, x, additional_forward_args)
        except StopForward:
            pass
        finally:
            handle.remove()
        if not captured:
            raise LayerError(f"The layer {type(layer).__name__} was not reached by the model's forward pass.")
        return captured[0]

    return run


def probe_layers(
    model: nn.Module, layer_names: Sequence[str], sample: torch.Tensor, additional_forward_args: Any = None
) -> dict[str, tuple[int, ...]]:
    """Run one full forward on ``sample`` and return each requested layer's output shape.

    Raises:
        LayerError: if a layer is not called, is called more than once per
            forward (its output would be ambiguous), or does not output a
            ``[B, C, H, W]`` tensor; the message lists the layers that do.
    """
    name_of = {module: name for name, module in model.named_modules() if name}
    calls: dict[str, list[Any]] = {name: [] for name in name_of.values()}

    def record(module: nn.Module, _args: Any, output: Any) -> None:
        name = name_of.get(module)
        if name is not None:
            calls[name].append(tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__)

    handles = [module.register_forward_hook(record) for module in name_of]
    try:
        with torch.no_grad():
            forward_with_args(model, sample, additional_forward_args)
    except Exception:
        # A head that cannot run on these inputs (e.g. a fixed-size classifier on small
        # images) does not matter once every requested layer has produced its output.
        if not all(calls.get(name) for name in layer_names):
            raise
    finally:
        for handle in handles:
            handle.remove()
    four_d = [n for n, seen in calls.items() if len(seen) == 1 and isinstance(seen[0], tuple) and len(seen[0]) == 4]
    hint = f"Layers with a single [B, C, H, W] output here: {', '.join(four_d[:40]) or 'none'}."
    shapes: dict[str, tuple[int, ...]] = {}
    for name in layer_names:
        seen = calls.get(name, [])
        if not seen:
            raise LayerError(f"Layer {name!r} is not called by the model's forward pass. {hint}")
        if len(seen) > 1:
            raise LayerError(
                f"Layer {name!r} is called {len(seen)} times per forward pass (a module reused at several "
                f"places), so its output is ambiguous; give each use its own module or pick another layer. {hint}"
            )
        shape = seen[0]
        if not isinstance(shape, tuple) or len(shape) != 4:
            raise LayerError(
                f"Layer {name!r} outputs {'a ' + str(len(shape)) + '-D tensor ' + str(shape) if isinstance(shape, tuple) else shape}, "
                f"not a [B, C, H, W] map; filters and spatial maxima need a convolutional layer. {hint}"
            )
        shapes[name] = shape
    return shapes


__all__ = [
    "CONV_LIKE_TYPES",
    "LayerSpec",
    "StopForward",
    "conv_like_layers",
    "eval_mode",
    "forward_with_args",
    "layer_list_hint",
    "layer_name",
    "probe_layers",
    "resolve_layers",
    "stop_at_layer",
]
