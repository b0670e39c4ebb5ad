"""Notes for the person running a step (what the model will see, what was skipped), printed as they happen.

Library code calls :func:`note`; by default it prints ``note: TEXT`` on stderr. The command line routes
notes through its own printer (:func:`routed`), which prints each note once per command and in the
command's words, so a note printed here is not repeated by the command's summary.

Examples::

    >>> import sys
    >>> with routed(lambda text: print("seen:", text, file=sys.stdout)):
    ...     note("pixels scaled to [0, 2]")
    seen: pixels scaled to [0, 2]
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

_SINKS: list[Callable[[str], object]] = []


def note(text: str) -> None:
    """Tell the person running about ``text``: ``note: TEXT`` on stderr, or through the printer of :func:`routed`."""
    if _SINKS:
        _SINKS[-1](text)
    else:
        print(f"note: {text}", file=sys.stderr, flush=True)


def is_routed() -> bool:
    """Whether a printer of :func:`routed` is installed (a command line is running)."""
    return bool(_SINKS)


@contextmanager
def routed(sink: Callable[[str], object]) -> Iterator[None]:
    """Within this block :func:`note` calls ``sink(text)`` instead of printing."""
    _SINKS.append(sink)
    try:
        yield
    finally:
        _SINKS.pop()


__all__ = ["is_routed", "note", "routed"]
