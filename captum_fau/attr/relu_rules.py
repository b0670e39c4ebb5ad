"""The hooks of the ReLU backward rules (registered in :mod:`captum_fau.attr.rules`): deconvnet, guided
backpropagation, plain gradient.

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

Only the ReLU carries these rules. Other activations (GELU, SiLU, LeakyReLU,
ReLU6, ELU, Hardtanh, Mish, Hardswish, PReLU, sigmoid, tanh, a clamp ...)
would keep their plain gradient, as in Captum, and a "deconvnet" of such a
model would silently be mostly its gradient. :func:`check_activations` finds
them, modules and functional calls alike, with one probe forward up to the
analysed layer under a :class:`~torch.overrides.TorchFunctionMode`, and
refuses ``"deconv"`` / ``"guided"`` on such a model unless the caller opts in
with ``relu_like=True``. The rule is then applied to each of those
activations ``f`` as to a ReLU, generalised through its local derivative:

* ``"deconv"``: the backward signal is ``relu(grad_output)``; ``f'`` is ignored,
  as the deconvnet ignores the ReLU's input;
* ``"guided"``: ``relu(grad_output) * max(f'(x), 0)``, which for a ReLU is
  exactly guided backpropagation, for ``clamp(x, 0, 6)`` gates like ReLU6 and
  for GELU/SiLU uses their smooth gate.

Activations written as arithmetic (``x * (x > 0)``, ``torch.where``,
``torch.maximum``) are not seen by the probe; ``"gradient"`` needs no check.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import Function
from torch.overrides import TorchFunctionMode

from captum_fau.errors import AttributionError, ConfigError

#: The rules these hooks carry (registered in :mod:`captum_fau.attr.rules`).
RELU_RULES: tuple[str, ...] = ("guided", "deconv", "gradient")


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
            grad = grad.mul_(out > 0)  # in place on the fresh clamp; no float copy of the mask
        return grad, None, None


_OUT_OF_PLACE: set[Callable[..., Any]] = {F.relu, torch.relu, torch.Tensor.relu}
_IN_PLACE: set[Callable[..., Any]] = {F.relu_, torch.relu_, torch.Tensor.relu_}

#: Names (without a trailing ``_`` for in-place variants) of the elementwise torch functions
#: that act as non-ReLU activations; the activation modules of ``torch.nn`` call these.
NON_RELU_FUNCTIONS: frozenset[str] = frozenset(
    {
        "gelu", "silu", "leaky_relu", "relu6", "elu", "selu", "celu", "hardtanh", "mish", "hardswish",
        "hardsigmoid", "prelu", "rrelu", "sigmoid", "tanh", "softplus", "threshold", "logsigmoid",
        "softsign", "tanhshrink", "hardshrink", "softshrink", "clamp", "clip", "clamp_min", "clamp_max",
    }
)  # fmt: skip


def _activation_name(func: Callable[..., Any]) -> str | None:
    """The :data:`NON_RELU_FUNCTIONS` name of a torch function, or None."""
    name = getattr(func, "__name__", "")
    name = name[1:] if name.startswith("_") else name
    name = name[:-1] if name.endswith("_") else name
    return name if name in NON_RELU_FUNCTIONS else None


class _RuleActivation(Function):
    """A non-ReLU elementwise activation whose backward applies the rule as to a ReLU (see the module doc)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], guided: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.fn, ctx.guided = fn, guided
        # The input before an in-place activation overwrites it, for the derivative.
        ctx.x_in = x.detach().clone() if guided else None
        out = fn(x)
        if out is x:
            ctx.mark_dirty(x)
        return out

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:  # type: ignore[override]
        grad = grad_output.clamp(min=0)
        if ctx.guided:
            with torch.enable_grad():
                x = ctx.x_in.requires_grad_(True)
                y = ctx.fn(x.clone())
                (slope,) = torch.autograd.grad(y, x, torch.ones_like(y))
            grad = grad * slope.clamp(min=0)
        return grad, None, None


class ReluRuleMode(TorchFunctionMode):
    r"""Apply a backward rule to every ReLU called while the mode is active.

    Args:
        rule (str): ``"guided"``, ``"deconv"`` or ``"gradient"`` (no change).
        relu_like (bool, optional): Also apply the rule to the non-ReLU activations of
            :data:`NON_RELU_FUNCTIONS`, as described in the module docstring. Default: False

    Examples::

        >>> import torch
        >>> x = torch.tensor([-1.0, 2.0], requires_grad=True)
        >>> with ReluRuleMode("deconv"):
        ...     y = torch.relu(x)
        >>> (g,) = torch.autograd.grad(y, x, torch.tensor([3.0, -1.0]))
        >>> g.tolist()  # deconvnet: relu of the incoming signal, not gated by the input
        [3.0, 0.0]
    """

    def __init__(self, rule: str, relu_like: bool = False) -> None:
        super().__init__()
        self.rule = check_rule(rule)
        self.relu_like = bool(relu_like)
        #: Number of ReLU calls the rule was applied to (for diagnostics and tests).
        self.relu_calls = 0
        #: Number of other activation calls the rule was applied to (``relu_like=True``).
        self.relu_like_calls = 0

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
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
        if self.relu_like and self.rule != "gradient" and args and _activation_name(func) is not None:
            x = args[0]
            if isinstance(x, torch.Tensor) and x.is_floating_point() and (x.requires_grad or torch.is_grad_enabled()):
                self.relu_like_calls += 1
                rest = args[1:]
                return _RuleActivation.apply(x, lambda t: func(t, *rest, **kwargs), self.rule == "guided")
        return func(*args, **kwargs)


@dataclass
class ActivationReport:
    """Non-ReLU activations met by a forward pass up to a layer.

    Attributes:
        modules: ``"path (Class)"`` of activation modules that ran (functional calls inside
            a module attribute to it).
        functions: ``"name() in path (Class)"`` of activation functions called directly in a
            module's ``forward`` (``path`` is ``"<model>"`` for the model's own forward).
    """

    modules: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.modules or self.functions)

    def describe(self) -> str:
        parts = []
        if self.modules:
            parts.append("modules " + ", ".join(self.modules))
        if self.functions:
            parts.append("functional calls " + ", ".join(self.functions))
        return "; ".join(parts)


class _StopProbe(Exception):
    pass


class _ActivationProbe(TorchFunctionMode):
    """Records the non-ReLU activation functions called, with the innermost running module."""

    def __init__(self, stack: list[tuple[str, nn.Module]], report: ActivationReport) -> None:
        super().__init__()
        self.stack, self.report = stack, report

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        name = _activation_name(func)
        if name is not None:
            path, module = self.stack[-1] if self.stack else ("<model>", None)
            label = f"{path} ({type(module).__name__})" if module is not None else path
            # Inside a module of torch.nn's activations (or a leaf module) the call is that module.
            leaf = module is not None and not any(True for _ in module.children())
            if leaf and type(module).__module__.startswith("torch.nn"):
                entry, target = label, self.report.modules
            else:
                entry, target = f"{name}() in {label}", self.report.functions
            if entry not in target:
                target.append(entry)
        return func(*args, **(kwargs or {}))


def find_non_relu_activations(
    model: nn.Module, layer: nn.Module, sample: torch.Tensor, additional_forward_args: Any = None
) -> ActivationReport:
    """Non-ReLU activations the model applies on the way to ``layer``'s output.

    One forward of ``sample`` runs, without gradients, until ``layer`` has
    produced its output, under a :class:`~torch.overrides.TorchFunctionMode`
    that records every call of :data:`NON_RELU_FUNCTIONS` and the module
    running it, so functional calls (``F.gelu(x)``, ``x.clamp(0, 6)``,
    ``torch.sigmoid(x)``) are found as well as modules.

    Args:
        model (nn.Module): The model.
        layer (nn.Module): The analysed layer (a submodule of ``model``).
        sample (Tensor): A small input batch, e.g. one image.
        additional_forward_args (Any, optional): Extra model arguments after the input.

    Returns:
        ActivationReport: Empty (falsy) when the model only uses ReLUs up to the layer.

    Examples::

        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU(), nn.Conv2d(2, 2, 3))
        >>> find_non_relu_activations(net, net[2], torch.zeros(1, 1, 8, 8)).describe()
        'modules 1 (GELU)'
    """
    names = {module: name for name, module in model.named_modules()}
    stack: list[tuple[str, nn.Module]] = []
    report = ActivationReport()

    def enter(module: nn.Module, _args: Any) -> None:
        stack.append((names.get(module, "") or "<model>", module))

    def leave(module: nn.Module, _args: Any, _output: Any) -> None:
        if stack:
            stack.pop()
        if module is layer:
            raise _StopProbe

    handles = [m.register_forward_pre_hook(enter) for m in names]
    handles += [m.register_forward_hook(leave) for m in names]
    extra = (
        ()
        if additional_forward_args is None
        else (additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,))
    )
    try:
        with torch.no_grad(), _ActivationProbe(stack, report):
            model(sample, *extra)
    except _StopProbe:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return report


def check_activations(
    model: nn.Module,
    layer: nn.Module,
    sample: torch.Tensor,
    rule: str,
    relu_like: bool,
    layer_name: str = "the layer",
    additional_forward_args: Any = None,
) -> ActivationReport:
    """Refuse a ReLU rule on a model whose other activations it would silently not change.

    Args:
        model (nn.Module): The model.
        layer (nn.Module): The analysed layer.
        sample (Tensor): A small input batch for the probe forward.
        rule (str): ``"guided"``, ``"deconv"`` or ``"gradient"`` (never refused, not probed).
        relu_like (bool): The caller opts in to the rule on non-ReLU activations.
        layer_name (str, optional): The layer's name, for messages.
        additional_forward_args (Any, optional): Extra model arguments after the input.

    Returns:
        ActivationReport: What the probe found (empty for ``"gradient"``).

    Raises:
        AttributionError: ``rule`` is ``"deconv"``/``"guided"``, the model has non-ReLU
            activations up to the layer, and ``relu_like`` is False.

    Warns:
        UserWarning: ``relu_like=True`` on a model without non-ReLU activations up to the
            layer, or with ``rule="gradient"`` (it then changes nothing).
    """
    if check_rule(rule) == "gradient":
        if relu_like:
            warnings.warn("relu_like=True has no effect with rule='gradient'.", UserWarning, stacklevel=3)
        return ActivationReport()
    report = find_non_relu_activations(model, layer, sample, additional_forward_args)
    if report and not relu_like:
        raise AttributionError(
            f"rule={rule!r} changes the backward pass of ReLUs only, but the model applies other activations "
            f"before {layer_name!r} ({report.describe()}); through them the signal would stay the plain gradient, "
            f"so the result would not be a {'deconvnet' if rule == 'deconv' else 'guided backpropagation'} of this "
            "model. Pass relu_like=True to apply the rule to them as to ReLUs (deconv: relu(grad); guided: "
            "relu(grad) * max(f'(x), 0)), or use rule='gradient'."
        )
    if relu_like and not report:
        warnings.warn(
            f"relu_like=True, but the model applies no non-ReLU activation before {layer_name!r}; "
            "the option changes nothing here.",
            UserWarning,
            stacklevel=3,
        )
    return report


def check_rule(rule: str) -> str:
    """Return ``rule`` if it is one of :data:`RELU_RULES`, else raise :class:`~captum_fau.errors.ConfigError`."""
    if rule not in RELU_RULES:
        raise ConfigError(
            f"Unknown ReLU rule {rule!r}; use 'guided' (guided backpropagation), 'deconv' (Zeiler-Fergus "
            "deconvnet) or 'gradient' (plain gradient)."
        )
    return rule


__all__ = [
    "NON_RELU_FUNCTIONS",
    "RELU_RULES",
    "ActivationReport",
    "ReluRuleMode",
    "check_activations",
    "check_rule",
    "find_non_relu_activations",
]
