"""What a command tells its user besides its results: notes and warnings, each once, without source lines.

Library code raises Python warnings (``warnings.warn``) and collects notes in its results; under the
command line both reach the user through :func:`note`, which prints ``note: TEXT`` on stderr the first
time a text appears in the run and never again. :func:`speaking` installs it for one command: Python's
``path/to/module.py:179: UserWarning:`` prefix and source line are replaced by the note, a warning
repeated by several steps (or several layers) is printed once, and messages name command-line flags
(:func:`captum_fau.errors.command_line`).
"""

from __future__ import annotations

import re
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence, TextIO

from captum_fau._utils.notes import routed
from captum_fau.errors import command_line

#: The notes printed by each command running (innermost last); outside a command nothing is remembered.
_SEEN: list[set[str]] = []
#: The command-line words of each command running (innermost last).
_ARGV: list[tuple[str, ...]] = []

#: ``AnalysisConfig`` fields -> the flag that sets them (a field without one keeps its Python name).
_CONFIG_FLAGS = {
    "layer": "--layer", "out": "--out", "n": "--n", "rule": "--rule", "relu_like": "--relu-like",
    "n_featured": "--featured", "permutations": "--permutations", "bootstrap": "--bootstrap",
    "statistics": "--permutations / --max-permutations / --bins / --intervals",
    "stratify": "--stratify", "batch_size": "--batch-size", "checkpoint_every_s": "--checkpoint-every-s",
    "sanity_check": "--sanity-check / --no-sanity-check", "sanity_filters": "--sanity-filters",
    "device": "--device", "seed": "--seed", "checkpoint": "--checkpoint", "class_names": "--class-names",
    "au_csv": "--au-csv", "face_crop": "--face-crop", "stream": "--stream", "workers": "--workers",
    "input_spec": "--input-size / --channels / --mean / --std / --pixel-range",
}  # fmt: skip
#: Python spellings in library messages and notes that are constants (so cannot ask
#: :func:`captum_fau.errors.option`), and what the command line calls them.
_CLI_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), words) for pattern, words in (
        (r"\bgive groups=subject ids\b", "give subject ids (a 'subject' column in the folder's labels.csv)"),
        (r"\brelu_like=True\b", "--relu-like"),
        (r"\brule='(\w+)'", r"--rule \1"),
        (r"\bn_featured=", "--featured "),
        (r"\bclass_names=", "--class-names "),
        (r"\bstratify=", "--stratify "),
        (r"\bsanity_check=False / --no-sanity-check\b", "--no-sanity-check"),
    )
)  # fmt: skip


def speak(text: str) -> str:
    """``text`` in the command line's words: flags for the Python arguments that library messages name.

    Examples::

        >>> speak("AnalysisConfig.layer must be a dotted module name; pass relu_like=True or use rule='gradient'.")
        '--layer must be a dotted module name; pass --relu-like or use --rule gradient.'
    """
    for pattern, words in _CLI_WORDS:
        text = pattern.sub(words, text)
    return re.sub(r"\bAnalysisConfig\.(\w+)", lambda m: _CONFIG_FLAGS.get(m.group(1), m.group(0)), text)


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
    if not first(text):
        return False
    print(f"{prefix}{speak(text)}", file=file if file is not None else sys.stderr, flush=True)
    return True


def first(text: str) -> bool:
    """True the first time a command meets ``text`` (then remembered), False after; always True outside one.

    For output that prints notes itself (a summary on stdout): print a note only where this returns True.
    """
    key = _key(text)
    if not key or (_SEEN and key in _SEEN[-1]):
        return False
    if _SEEN:
        _SEEN[-1].add(key)
    return True


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:  # fmt: skip
    label = "note: " if issubclass(category, UserWarning) else f"{category.__name__}: "
    note(str(message), file=file, prefix=label)


def given(flag: str) -> bool:
    """Whether the running command's line holds ``flag`` (``--flag`` or ``--flag=...``), not just its default."""
    return bool(_ARGV) and any(word == flag or word.startswith(flag + "=") for word in _ARGV[-1])


def unused(flag: str, reason: str) -> None:
    """Note once that ``flag``, given on the command line, does nothing here (``reason`` says why)."""
    if given(flag):
        note(f"{flag} does nothing {reason}.")


@contextmanager
def speaking(argv: Sequence[str] = ()) -> Iterator[None]:
    """One command's run: flags in messages, every warning printed once as a plain note.

    Args:
        argv (sequence of str, optional): The command's words, for :func:`given`. Default: none
    """
    _SEEN.append(set())
    _ARGV.append(tuple(argv))
    with command_line(), routed(note), warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)  # :func:`note` de-duplicates by text, not by source line
        warnings.showwarning = _show_warning
        try:
            yield
        finally:
            _SEEN.pop()
            _ARGV.pop()


__all__ = ["first", "given", "note", "speak", "speaking", "unused"]
