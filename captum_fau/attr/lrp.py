r"""The hooks of LRP-ε (``rule="lrp"``): layer-wise relevance propagation with the epsilon rule.

Relevance flows back from the analysed unit as in Bach et al. (2015) with the epsilon rule on every
convolution and linear layer,

.. math::

    R_i = x_i \sum_j w_{ji} \frac{R_j}{z_j + \epsilon\,\mathrm{sign}(z_j)}, \qquad z_j = \sum_i w_{ji} x_i + b_j,

(``sign(0) = 1``, :math:`\epsilon = 10^{-6}`), the plain gradient through ReLU and max pooling, and a
``BatchNorm2d`` that directly follows a convolution merged into it first (in eval mode it is affine, so
the pair is one convolution), as zennit's ``SequentialMergeBatchNorm`` canonizer does. The value at
the input is the relevance of each pixel. Like the ReLU rules, the rule is carried by a
:class:`torch.overrides.TorchFunctionMode`, so functional calls (``F.conv2d``, ``F.batch_norm``) are
covered as well as modules.

Other operations on the way to the analysed layer (average pooling, other activations, additions of
residual branches, a batch norm that does not follow a convolution) would need rules of their own:
:func:`check_lrp` refuses such a model with an :class:`~captum_fau.errors.AttributionError` rather
than let the relevance quietly become part gradient.

Examples::

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2)).eval()
    >>> x = torch.rand(1, 1, 8, 8, requires_grad=True)
    >>> with LrpEpsilonMode():
    ...     y = net(x)
    >>> (relevance,) = torch.autograd.grad(y, x, y)
    >>> round(float(relevance.sum() / y.detach().sum()), 4)  # no bias: the relevance is conserved
    1.0
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import Function
from torch.overrides import TorchFunctionMode

from captum_fau.errors import AttributionError

#: The epsilon of the rule (zennit's default).
EPSILON = 1e-6
#: Leaf modules LRP-ε passes (rules of their own or the plain gradient) on the way to the analysed layer.
SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Identity, nn.Dropout, nn.Flatten,
)  # fmt: skip
_CONV = {F.conv2d, torch.conv2d}
_LINEAR = {F.linear}
_BATCH_NORM = {F.batch_norm, torch.batch_norm}


def _stabilised(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    return z + ((z == 0).to(z) + z.sign()) * epsilon


class _EpsilonLayer(Function):
    """``z = layer(x; w, b)`` whose backward is the epsilon rule: ``x * (d z / d x)^T (R / stab(z))``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                layer: Callable[..., torch.Tensor], epsilon: float) -> torch.Tensor:  # type: ignore[override]  # fmt: skip
        z = layer(x, weight, bias)
        ctx.save_for_backward(x, weight, z)
        ctx.layer, ctx.epsilon = layer, epsilon
        return z

    @staticmethod
    def backward(ctx: Any, relevance: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:  # type: ignore[override]
        x, weight, z = ctx.saved_tensors
        with torch.enable_grad():
            x_ = x.detach().requires_grad_(True)
            (back,) = torch.autograd.grad(
                ctx.layer(x_, weight.detach(), None), x_, relevance / _stabilised(z, ctx.epsilon)
            )
        return x * back, None, None, None, None


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


class LrpEpsilonMode(TorchFunctionMode):
    """Carry the LRP-ε backward for every convolution, linear layer and merged batch norm called.

    Args:
        rule (str, optional): ``"lrp"`` (the registry passes the rule's name). Default: ``"lrp"``
        relu_like (bool, optional): Has no meaning for LRP-ε (:func:`check_lrp` warns). Default: False
        epsilon (float, optional): The stabiliser. Default: :data:`EPSILON`
    """

    def __init__(self, rule: str = "lrp", relu_like: bool = False, epsilon: float = EPSILON) -> None:
        super().__init__()
        self.epsilon = float(epsilon)
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, Callable] | None = None

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in _CONV or func in _LINEAR:
            x, weight, bias = args[0], args[1], _arg(args, kwargs, 2, "bias")
            if func in _CONV:
                stride, padding, dilation, groups = (_arg(args, kwargs, i, n, d) for i, n, d in
                                                     ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1), (6, "groups", 1)))  # fmt: skip

                def layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
                    return F.conv2d(x, w, b, stride, padding, dilation, groups)
            else:
                layer = F.linear  # type: ignore[assignment]
            out = _EpsilonLayer.apply(x, weight, bias, layer, self.epsilon)
            self._last = (out, x, weight, bias, layer)
            return out
        if func in _BATCH_NORM:
            return self._merged(args, kwargs)
        return func(*args, **kwargs)

    def _merged(self, args: tuple, kwargs: dict) -> torch.Tensor:
        """A batch norm after a convolution: the convolution with the batch norm merged into it."""
        x = args[0]
        mean, var = _arg(args, kwargs, 1, "running_mean"), _arg(args, kwargs, 2, "running_var")
        gamma, beta = _arg(args, kwargs, 3, "weight"), _arg(args, kwargs, 4, "bias")
        training, eps = _arg(args, kwargs, 5, "training", False), _arg(args, kwargs, 7, "eps", 1e-5)
        if self._last is None or self._last[0] is not x or training or mean is None:
            raise AttributionError(
                "rule='lrp' merges a batch norm into the convolution right before it (eval mode, running "
                "statistics); this one follows no convolution or is in training mode. Use rule='gradient', or "
                "put the model in eval mode."
            )
        _, conv_in, weight, bias, layer = self._last
        scale = (gamma if gamma is not None else torch.ones_like(var)) / torch.sqrt(var + eps)
        shift = beta if beta is not None else torch.zeros_like(mean)
        merged_w = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
        merged_b = ((bias if bias is not None else torch.zeros_like(mean)) - mean) * scale + shift
        out = _EpsilonLayer.apply(conv_in, merged_w, merged_b, layer, self.epsilon)
        self._last = None
        return out


def check_lrp(model: nn.Module, layer: nn.Module, sample: torch.Tensor, rule: str, relu_like: bool,
              layer_name: str = "the layer", additional_forward_args: Any = None) -> list[str]:  # fmt: skip
    """Refuse a model whose path to ``layer`` holds operations LRP-ε has no rule for.

    One forward of ``sample`` runs until ``layer`` has produced its output; every leaf module that ran
    must be one of :data:`SUPPORTED_MODULES`, and a module's own ``forward`` may call nothing but its
    children (no functional additions, activations or poolings between them).

    Returns:
        list of str: The modules that ran (empty when none).

    Raises:
        AttributionError: an unsupported module or functional operation before the layer.
    """
    if relu_like:
        warnings.warn("relu_like=True has no effect with rule='lrp'.", UserWarning, stacklevel=3)
    names = {module: name for name, module in model.named_modules()}
    seen: list[str] = []
    refused: list[str] = []
    stack: list[nn.Module] = []
    previous: list[nn.Module] = []

    def enter(module: nn.Module, _args: Any) -> None:
        stack.append(module)
        if any(True for _ in module.children()):
            return
        label = f"{names.get(module) or '<model>'} ({type(module).__name__})"
        seen.append(label)
        if isinstance(module, nn.BatchNorm2d) and not (previous and isinstance(previous[-1], nn.Conv2d)):
            label = f"{label[:-1]} not after a convolution)"
        elif isinstance(module, SUPPORTED_MODULES):
            label = ""
        if label and label not in refused:
            refused.append(label)
        previous.append(module)

    def leave(module: nn.Module, _args: Any, _output: Any) -> None:
        stack.pop()
        if module is layer:
            raise _Reached

    handles = [m.register_forward_pre_hook(enter) for m in names] + [m.register_forward_hook(leave) for m in names]
    extra = () if additional_forward_args is None else (
        additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,))  # fmt: skip
    try:
        with torch.no_grad(), _Glue(stack, refused, names):
            model(sample, *extra)
    except _Reached:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if refused:
        raise AttributionError(
            f"rule='lrp' (LRP-ε) has rules for Conv2d, Linear, BatchNorm2d after a convolution, ReLU and max "
            f"pooling only, but the model applies {', '.join(refused[:8])} before {layer_name!r}; through them "
            "the relevance would not be LRP. Use rule='gradient', 'guided' or 'deconv' for this model, or analyse "
            "an earlier layer."
        )
    return seen


class _Reached(Exception):
    pass


#: Functions a container's own forward may call between its children (shape bookkeeping, no arithmetic).
_GLUE_OK = {"dim", "size", "flatten", "view", "reshape", "contiguous", "__get__", "__getitem__", "numel", "relu",
            "relu_"}  # fmt: skip


class _Glue(TorchFunctionMode):
    """Records operations a non-leaf module computes itself, outside any leaf module."""

    def __init__(self, stack: list[nn.Module], refused: list[str], names: dict[nn.Module, str]) -> None:
        super().__init__()
        self.stack, self.refused, self.names = stack, refused, names

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        inside_leaf = bool(self.stack) and not any(True for _ in self.stack[-1].children())
        name = getattr(func, "__name__", str(func))
        if not inside_leaf and name not in _GLUE_OK and func not in _CONV | _LINEAR | _BATCH_NORM:
            owner = self.names.get(self.stack[-1]) or "<model>" if self.stack else "<model>"
            label = f"{name}() in {owner}"
            if label not in self.refused:
                self.refused.append(label)
        return func(*args, **(kwargs or {}))


__all__ = ["EPSILON", "SUPPORTED_MODULES", "LrpEpsilonMode", "check_lrp"]
