"""Shell commands that captum-fau prints for a person to paste: every one is built here, quoted.

A file name is data, never shell code: ``w$(touch X).pth`` pasted unquoted runs ``touch``. Every
command a message, note or report prints goes through :func:`command` (``shlex.join``), and code
run by ``python -c`` takes file names from ``sys.argv`` instead of having them spliced into its
source, so no name can break out of a string either. ``tests/test_shell_commands.py`` pastes each
builder's output into ``bash`` with hostile names, and checks that no other module of the package
spells a command out by hand.

Examples::

    >>> command("captum-fau", "topn", "--filters", "3,17", "--out", "my run/")
    "captum-fau topn --filters 3,17 --out 'my run/'"
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Callable, Sequence

#: ``python -c`` source of :func:`convert_weights`: ``sys.argv[1]`` pickled checkpoint -> ``sys.argv[2]``.
#: ``weights_only=True`` makes ``torch.load`` refuse anything but tensors and plain containers, so a
#: file of unknown origin runs no code. The usual wrappers (``state_dict``, ``model_state_dict``,
#: ``model``, ``network``, ``net``; nested) are unwrapped and DataParallel's ``module.`` prefix removed.
_CONVERT_SOURCE = (
    "import sys, torch, safetensors.torch as st; "
    'sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True); '
    'keys = ("state_dict", "model_state_dict", "model", "network", "net"); '
    "unwrap = lambda d: next((unwrap(d[k]) for k in keys if isinstance(d.get(k), dict)), d); "
    'sd = unwrap(sd) if isinstance(sd, dict) else sys.exit("not a dict of tensors: " + type(sd).__name__); '
    'sd = {k.removeprefix("module."): v.contiguous().clone() for k, v in sd.items() if torch.is_tensor(v)}; '
    'sd or sys.exit("no tensors at the top level nor under " + ", ".join(keys)); '
    'st.save_file(sd, sys.argv[2]); print(len(sd), "tensors written to", sys.argv[2])'
)


def command(*argv: str | os.PathLike[str]) -> str:
    """One shell command line: each argument quoted with ``shlex.quote`` where it needs it.

    Args:
        *argv (str or Path): The program and its arguments, unquoted.

    Returns:
        str: A line that a POSIX shell runs as exactly ``argv``.
    """
    return shlex.join(os.fspath(arg) for arg in argv)


def captum_fau(*args: str | os.PathLike[str]) -> str:
    """A ``captum-fau`` command line, e.g. ``captum_fau("topn", "--filters", "3,17")``."""
    return command("captum-fau", *args)


def convert_weights(source: str | os.PathLike[str], target: str | os.PathLike[str] | None = None) -> str:
    """The command that converts a pickled PyTorch checkpoint to safetensors (default: ``model.safetensors`` beside it).

    Args:
        source (str or Path): The ``.pth`` / ``.bin`` / ``.ckpt`` file.
        target (str or Path, optional): The ``.safetensors`` file to write.

    Returns:
        str: ``python -c '...' SOURCE TARGET``, quoted.
    """
    source = Path(source)
    target = source.with_name("model.safetensors") if target is None else Path(target)
    return command("python", "-c", _CONVERT_SOURCE, source, target)


def mogrify(options: Sequence[str], files: Sequence[str | os.PathLike[str]]) -> str:
    """An ImageMagick ``mogrify`` line (converts ``files`` in place) with ``options`` first."""
    return command("mogrify", *options, *files)


#: Every command builder above, for the test that pastes each one into a shell:
#: name -> (program the line runs, builder given one hostile file name).
BUILDERS: dict[str, tuple[str, Callable[[str], str]]] = {
    "command": ("my-program", lambda name: command("my-program", name)),
    "captum_fau": ("captum-fau", lambda name: captum_fau("topn", "--filters", "0-3", "--out", name)),
    "convert_weights": ("python", lambda name: convert_weights(name)),
    "mogrify": ("mogrify", lambda name: mogrify(["-depth", "8"], [name, name + ".png"])),
}

__all__ = ["BUILDERS", "captum_fau", "command", "convert_weights", "mogrify"]
