"""Argument checks with one wording for the whole library.

Each check names the argument, says what it must be and what was given, and
appends a hint on how to fix it; the error class is the caller's (a
:class:`~captum_fau.errors.ConfigError` unless the argument belongs to a
dataset, a statistic, ...).

Examples::

    >>> positive_int(3, "batch_size")
    3
    >>> positive_int(0, "batch_size", hint="pass e.g. batch_size=64.")
    Traceback (most recent call last):
        ...
    captum_fau.errors.ConfigError: batch_size must be >= 1 (a positive integer), got 0; pass e.g. batch_size=64.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

import numpy as np

from captum_fau.errors import ConfigError

T = TypeVar("T")
O = TypeVar("O")


def _with_hint(message: str, hint: str) -> str:
    return f"{message}; {hint}" if hint else f"{message}."


def int_at_least(value: Any, name: str, minimum: int, *, error: type[Exception] = ConfigError, hint: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) ``>= minimum``.

    Args:
        value: The argument to check (Python or NumPy integer).
        name (str): How the message names it (``"batch_size"``, ``"SynthFACS n"``).
        minimum (int): The smallest value allowed.
        error (type, optional): Exception class raised. Default: ConfigError
        hint (str, optional): How to fix it, appended to the message. Default: ``""``

    Returns:
        int: ``value``.

    Raises:
        error: ``value`` is not an integer, or is below ``minimum``.
    """
    kind = {0: " (a non-negative integer)", 1: " (a positive integer)"}.get(minimum, "")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise error(_with_hint(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})", hint))
    if int(value) < minimum:
        raise error(_with_hint(f"{name} must be >= {minimum}{kind}, got {value!r}", hint))
    return int(value)


def positive_int(value: Any, name: str, *, error: type[Exception] = ConfigError, hint: str = "") -> int:
    """``value`` as an ``int`` if it is an integer ``>= 1``; see :func:`int_at_least`."""
    return int_at_least(value, name, 1, error=error, hint=hint)


def non_negative_int(value: Any, name: str, *, error: type[Exception] = ConfigError, hint: str = "") -> int:
    """``value`` as an ``int`` if it is an integer ``>= 0``; see :func:`int_at_least`."""
    return int_at_least(value, name, 0, error=error, hint=hint)


def optional_positive_int(value: Any, name: str, *, error: type[Exception] = ConfigError, hint: str = "") -> int | None:
    """``None``, or ``value`` as an ``int`` if it is an integer ``>= 1``."""
    return (
        None
        if value is None
        else positive_int(value, name, error=error, hint=hint or "pass a positive integer, or None.")
    )


def one_of(value: T, name: str, choices: Sequence[T], *, error: type[Exception] = ConfigError, hint: str = "") -> T:
    """``value`` if it is one of ``choices``.

    Examples::

        >>> one_of("all", "gather", ("all", "rank0"))
        'all'
    """
    if value not in choices:
        listed = " or ".join(repr(c) for c in choices) if len(choices) <= 2 else ", ".join(repr(c) for c in choices)
        raise error(_with_hint(f"{name} must be {'one of ' if len(choices) > 2 else ''}{listed}, got {value!r}", hint))
    return value


def with_settings(cls: type[O], options: O | None, settings: dict[str, Any], name: str = "options") -> O:
    """``options`` (default ``cls()``) with ``settings`` (field name -> value) applied: the keyword form of an
    options dataclass, so that a function takes ``options`` plus the keywords of earlier releases.

    Raises:
        ConfigError: ``options`` is not a ``cls``, or a setting is not one of its fields.

    Examples::

        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Opts:
        ...     n: int = 1
        ...     seed: int = 0
        >>> with_settings(Opts, Opts(n=2), {"seed": 5})
        Opts(n=2, seed=5)
    """
    import dataclasses

    if options is not None and not isinstance(options, cls):
        raise ConfigError(f"{name} must be a {cls.__name__}, got {type(options).__name__}.")
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(f"{unknown} are not {cls.__name__} fields; they are {known}.")
    base = options if options is not None else cls()
    return dataclasses.replace(base, **settings) if settings else base  # type: ignore[type-var]


__all__ = ["int_at_least", "non_negative_int", "one_of", "optional_positive_int", "positive_int", "with_settings"]
