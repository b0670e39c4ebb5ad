"""Backward rules for ReLUs: deconvnet, guided backpropagation, plain gradient.

Captum applies its ReLU rules through hooks on ``nn.ReLU`` modules, so a ReLU
written as ``F.relu(x)``, ``torch.relu(x)`` or ``x.relu()`` silently keeps the
plain gradient. Here every ReLU call made during the forward pass, module or
functional, in-place or not, is routed through an autograd function that
carries the rule, using a :class:`torch.overrides.TorchFunctionMode`. The
rules match Captum's:

* ``"deconv"`` (Zeiler & Fergus): the backward signal through a ReLU is
  ``relu(grad_output)``; the forward activation does not gate it.
* ``"guided"`` (Springenberg et al.): ``relu(grad_output) * (input > 0)``.
* ``"gradient"``: the ordinary derivative (no override).

Only the ReLU itself is overridden; ``ReLU6``, ``SiLU`` and other activations
keep their gradient, as in Captum.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.autograd import Function
from torch.overrides import TorchFunctionMode

from captum_fau.errors import ConfigError

#: Rules accepted by :class:`ReluRuleMode` and :class:`captum_fau.attr.TopNDeconv`.
RULES: tuple[str, ...] = ("guided", "deconv", "gradient")


class _RuleReLU(Function):
    """ReLU whose backward applies the guided or deconvnet rule."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, guided: bool, inplace: bool) -> torch.Tensor:  # type: ignore[override]
        if inplace:
            out = x.clamp_(min=0)
            ctx.mark_dirty(x)
        else:
            out = x.clamp(min=0)
        ctx.guided = guided
        if guided:
            ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        grad = grad_output.clamp(min=0)
        if ctx.guided:
            (out,) = ctx.saved_tensors
            grad = grad * (out > 0).to(grad.dtype)
        return grad, None, None


_OUT_OF_PLACE: set[Callable[..., Any]] = {F.relu, torch.relu, torch.Tensor.relu}
_IN_PLACE: set[Callable[..., Any]] = {F.relu_, torch.relu_, torch.Tensor.relu_}


class ReluRuleMode(TorchFunctionMode):
    r"""Apply a backward rule to every ReLU called while the mode is active.

    Args:
        rule (str): ``"guided"``, ``"deconv"`` or ``"gradient"`` (no change).

    Examples::

        >>> import torch
        >>> x = torch.tensor([-1.0, 2.0], requires_grad=True)
        >>> with ReluRuleMode("deconv"):
        ...     y = torch.relu(x)
        >>> (g,) = torch.autograd.grad(y, x, torch.tensor([3.0, -1.0]))
        >>> g.tolist()  # deconvnet: relu of the incoming signal, not gated by the input
        [3.0, 0.0]
    """

    def __init__(self, rule: str) -> None:
        super().__init__()
        self.rule = check_rule(rule)
        #: Number of ReLU calls the rule was applied to (for diagnostics and tests).
        self.relu_calls = 0

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self.rule != "gradient" and (func in _OUT_OF_PLACE or func in _IN_PLACE):
            x = args[0]
            inplace = func in _IN_PLACE
            if func is F.relu:
                inplace = bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            if isinstance(x, torch.Tensor) and (x.requires_grad or torch.is_grad_enabled()):
                self.relu_calls += 1
                # An in-place rule on a leaf that needs grad is impossible; fall back to out-of-place.
                inplace = inplace and not (x.is_leaf and x.requires_grad)
                return _RuleReLU.apply(x, self.rule == "guided", inplace)
        return func(*args, **kwargs)


def check_rule(rule: str) -> str:
    """Return ``rule`` if it is one of :data:`RULES`, else raise :class:`~captum_fau.errors.ConfigError`."""
    if rule not in RULES:
        raise ConfigError(
            f"Unknown rule {rule!r}; use 'guided' (guided backpropagation), 'deconv' (Zeiler-Fergus "
            "deconvnet) or 'gradient' (plain gradient)."
        )
    return rule


__all__ = ["RULES", "ReluRuleMode", "check_rule"]
