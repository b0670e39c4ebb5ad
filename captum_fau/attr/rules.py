"""The backward rules a reconstruction can use, each ONE object in one registry.

A :class:`BackwardRule` holds everything about a rule: its ``name`` (``rule="guided"``, ``--rule guided``),
the ``display`` name reports and tables show, one line of ``description`` for ``--help``, what it
``supports``, and two hooks named by ``"module:function"`` (so that this module, the command line's
choices and its ``--help`` import no torch):

* ``mode``: ``(rule name, relu_like) -> context manager`` under which a forward pass records the rule's
  backward (a :class:`torch.overrides.TorchFunctionMode`);
* ``check``: ``(model, layer, sample, rule name, relu_like, layer name, additional_forward_args) ->
  report``, run once on one image before any reconstruction: it refuses, with a
  :mod:`captum_fau.errors` message, a model the rule does not support.

:func:`rule_mode` and :func:`check_model` dispatch to them; :data:`RULES` (the names, in the order the
command line lists them) and :func:`display_name` are derived from the registry. A new rule is one
``register_rule(BackwardRule(...))`` line here and the module that holds its hooks.

Examples::

    >>> RULES[:3]
    ('guided', 'deconv', 'gradient')
    >>> display_name("guided")
    'guided backpropagation'
    >>> check_rule("lrp-z")
    Traceback (most recent call last):
    ...
    captum_fau.errors.ConfigError: Unknown rule 'lrp-z'; use one of: 'guided' (guided backpropagation), ...
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from captum_fau.errors import ConfigError


@dataclass(frozen=True)
class BackwardRule:
    """One backward rule: its names, what it supports and its hooks.

    Args:
        name (str): The value of ``rule=`` and ``--rule``.
        display (str): The name reports, figures and tables show.
        description (str): One line for ``--help`` and error messages.
        supports (str): The models it applies to, in words.
        mode (str): ``"module:function"`` of the hook factory ``(rule name, relu_like) -> context manager``.
        check (str): ``"module:function"`` of the model check, see the module docstring.
    """

    name: str
    display: str
    description: str
    supports: str
    mode: str
    check: str

    def hook(self, which: str) -> Callable[..., Any]:
        """The ``mode`` or ``check`` function, imported on first use."""
        module, _, attr = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY: dict[str, BackwardRule] = {}


def register_rule(rule: BackwardRule) -> BackwardRule:
    """Add ``rule`` to the registry (its name must be new) and return it."""
    if rule.name in _REGISTRY:
        raise ConfigError(f"a backward rule named {rule.name!r} is registered already.")
    _REGISTRY[rule.name] = rule
    return rule


_RELU = "any model; non-ReLU activations before the layer are refused unless relu_like=True (--relu-like)"
register_rule(
    BackwardRule(
        "guided",
        "guided backpropagation",
        "Springenberg et al.: relu(grad) * (input > 0)",
        _RELU,
        "captum_fau.attr.relu_rules:ReluRuleMode",
        "captum_fau.attr.relu_rules:check_activations",
    )
)
register_rule(
    BackwardRule(
        "deconv",
        "deconvnet",
        "Zeiler-Fergus deconvnet: relu(grad)",
        _RELU,
        "captum_fau.attr.relu_rules:ReluRuleMode",
        "captum_fau.attr.relu_rules:check_activations",
    )
)
register_rule(BackwardRule("gradient", "gradient", "the plain gradient", "any model",
                           "captum_fau.attr.relu_rules:ReluRuleMode", "captum_fau.attr.relu_rules:check_activations"))  # fmt: skip
register_rule(BackwardRule("lrp", "LRP-ε", "layer-wise relevance propagation, epsilon rule on conv/linear",
                           "chains of Conv2d/Linear, BatchNorm2d after a convolution, ReLU and max pooling",
                           "captum_fau.attr.lrp:LrpEpsilonMode", "captum_fau.attr.lrp:check_lrp"))  # fmt: skip

#: The registered rule names, in registration order (the command line's ``--rule`` choices).
RULES: tuple[str, ...] = tuple(_REGISTRY)


def get_rule(name: str) -> BackwardRule:
    """The registered rule ``name`` (:class:`~captum_fau.errors.ConfigError` when there is none)."""
    return _REGISTRY[check_rule(name)]


def check_rule(rule: str) -> str:
    """Return ``rule`` if it is registered, else raise :class:`~captum_fau.errors.ConfigError` listing the rules."""
    if rule not in _REGISTRY:
        known = ", ".join(f"{r.name!r} ({r.display})" for r in _REGISTRY.values())
        raise ConfigError(f"Unknown rule {rule!r}; use one of: {known}.")
    return rule


def display_name(rule: str) -> str:
    """The name reports show for ``rule`` (the name itself when it is not registered)."""
    return _REGISTRY[rule].display if rule in _REGISTRY else rule


def takes_relu_like(rule: str) -> bool:
    """Whether ``relu_like=True`` (``--relu-like``) changes ``rule``: the ReLU rules that gate the backward signal
    (guided backpropagation, deconvnet), applied then to other activations as if they were ReLUs.

    Examples::

        >>> takes_relu_like("guided"), takes_relu_like("gradient"), takes_relu_like("lrp")
        (True, False, False)
    """
    return rule in _REGISTRY and _REGISTRY[rule].supports == _RELU


def relu_like_caveat(rule: str, activations: str | None = None) -> str:
    """What a ``relu_like`` reconstruction is, in a sentence for reports and notes.

    Args:
        rule (str): A rule for which :func:`takes_relu_like` holds.
        activations (str, optional): The non-ReLU activations the rule met (``ActivationReport.describe()``).

    Returns:
        str
    """
    name = display_name(rule)
    met = f" ({activations})" if activations else ""
    gate = ("passes only positive signal and ignores each activation's own slope, so saturation (tanh, sigmoid) and "
            "the negative branch of GELU/SiLU/hard-swish leave no trace" if rule == "deconv" else
            "gates the signal by each activation's local slope clipped at 0 instead of the ReLU's step, so saturated "
            "(tanh, sigmoid) and negative (GELU, SiLU, hard-swish) regions are darkened or cut")  # fmt: skip
    return (
        f"With relu_like=True the {name} rule was applied to the model's non-ReLU activations{met} "
        f"as if they were ReLUs. It {gate}. The pictures show what a ReLU network with these weights would "
        f"reconstruct, not {name} of this model in the paper's sense: read shapes and regions, not fine "
        "detail or contrast, and compare with rule='gradient' before naming a feature"
    )


def rule_mode(rule: str, relu_like: bool = False) -> Any:
    """The context manager under which a forward pass carries ``rule``'s backward (the rule's ``mode`` hook)."""
    return get_rule(rule).hook("mode")(rule, relu_like)


def check_model(model: Any, layer: Any, sample: Any, rule: str, relu_like: bool, layer_name: str = "the layer",
                additional_forward_args: Any = None) -> Any:  # fmt: skip
    """Refuse a model ``rule`` does not support (the rule's ``check`` hook); returns the hook's report."""
    return get_rule(rule).hook("check")(model, layer, sample, rule, relu_like, layer_name, additional_forward_args)


#: Names of the former ``attr/rules.py`` (the ReLU rules' hooks, now :mod:`captum_fau.attr.relu_rules`).
_MOVED = ("ActivationReport", "NON_RELU_FUNCTIONS", "find_non_relu_activations")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module("captum_fau.attr.relu_rules"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The names the attribution and the scan call: every rule goes through the registry's hooks.
ReluRuleMode = rule_mode
check_activations = check_model

__all__ = [
    "RULES",
    "BackwardRule",
    "ReluRuleMode",
    "check_activations",
    "check_model",
    "check_rule",
    "display_name",
    "get_rule",
    "register_rule",
    "relu_like_caveat",
    "rule_mode",
    "takes_relu_like",
    *_MOVED,
]
