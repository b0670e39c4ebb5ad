"""The ``captum-fau`` command line.

One module per command, each exposing ``register(subparsers)``; shared options live in
``captum_fau.cli._options``. Building the parser imports no torch, timm, matplotlib or
scipy (the commands import them when they run), so ``--help`` is quick. Exit codes:
0 success, 2 bad input (any captum_fau.errors.CaptumFAUError), 1 unexpected failure,
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from typing import Callable, Sequence

from pathlib import Path

from captum_fau.cli._say import speak, speaking
from captum_fau.errors import CaptumFAUError

#: Modules that contribute commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "captum_fau.cli.analyze",
    "captum_fau.cli.zoo",
    "captum_fau.cli.data",
    "captum_fau.cli.faukl",
    "captum_fau.cli.train",
    "captum_fau.cli.topn",
    "captum_fau.cli.reproduce",
)

EPILOG = """\
example:
  captum-fau demo                  the whole analysis on built-in faces, report in captum-fau-demo/
  captum-fau analyze --model zerobias-synthfacs-8class --data synthfacs:500 --out report/

Run `captum-fau COMMAND --help` for a command's options and examples.
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (imports nothing heavy)."""
    from captum_fau import __version__

    parser = argparse.ArgumentParser(
        prog="captum-fau",
        description=(
            "Do deep networks learn facial action units? Zero-bias CNNs, top-N deconvolution\n"
            "and FAU-KL concept analysis (Khorrami, Paine & Huang, 2015)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"captum-fau {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``captum-fau`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    with speaking(sys.argv[1:] if argv is None else argv):
        return _run(handler, args)


def _run(handler: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """``handler(args)``, with the exit codes of the module docstring and errors printed as messages."""
    try:
        return int(handler(args) or 0)
    except CaptumFAUError as err:
        print(f"captum-fau {args.command}: error: {speak(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"captum-fau {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``captum-fau zoo info NAME | head``): stop quietly, and point
        # stdout at devnull so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 - only a full disk is ours to explain; the rest propagates
        from captum_fau._utils.io import disk_full_error, is_disk_full

        if not is_disk_full(err):
            raise
        where = Path(getattr(err, "filename", None) or getattr(args, "out", None) or ".")
        folder = where if where.is_dir() else where.parent
        print(f"captum-fau {args.command}: error: {disk_full_error(folder, None, None, err)}", file=sys.stderr)
        return 2


__all__ = ["COMMAND_MODULES", "build_parser", "main"]
