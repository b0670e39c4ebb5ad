"""What a command tells its user besides its results: notes and warnings, each once, without source lines.

Library code raises Python warnings (``warnings.warn``) and collects notes in its results; under the
command line both reach the user through :func:`note`, which prints ``note: TEXT`` on stderr the first
time a text appears in the run and never again. :func:`speaking` installs it for one command: Python's
``path/to/module.py:179: UserWarning:`` prefix and source line are replaced by the note, a warning
repeated by several steps (or several layers) is printed once, and messages name command-line flags
(:func:`captum_fau.errors.command_line`).
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from typing import Iterator, TextIO

from captum_fau.errors import command_line

_SEEN: list[set[str]] = [set()]


def _key(text: str) -> str:
    """Notes differ only in a prefix (``FAU-KL: ``, ``WARNING: ``) or spacing count as the same note."""
    words = " ".join(text.split())
    for prefix in ("FAU-KL: ", "WARNING: ", "Note: ", "note: "):
        words = words.removeprefix(prefix)
    return words


def note(text: str, file: TextIO | None = None, prefix: str = "note: ") -> bool:
    """Print ``prefix + text`` (on stderr by default) unless this run printed the same note before.

    Args:
        text (str): The note.
        file (TextIO, optional): Where to print. Default: ``sys.stderr``
        prefix (str, optional): Printed before the text. Default: ``"note: "``

    Returns:
        bool: Whether it was printed.
    """
    key = _key(text)
    if not key or key in _SEEN[-1]:
        return False
    _SEEN[-1].add(key)
    print(f"{prefix}{text}", file=file if file is not None else sys.stderr, flush=True)
    return True


def seen(text: str) -> bool:
    """Whether :func:`note` already printed ``text`` in this run."""
    return _key(text) in _SEEN[-1]


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:  # fmt: skip
    label = "note: " if issubclass(category, UserWarning) else f"{category.__name__}: "
    note(str(message), file=file, prefix=label)


@contextmanager
def speaking() -> Iterator[None]:
    """One command's run: flags in messages, every warning printed once as a plain note."""
    _SEEN.append(set())
    with command_line(), warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)  # :func:`note` de-duplicates by text, not by source line
        warnings.showwarning = _show_warning
        try:
            yield
        finally:
            _SEEN.pop()


__all__ = ["note", "seen", "speaking"]
