"""The ``captum-fau`` command line.

Each command lives next to the code it drives and exposes
``register(subparsers, common)``; this module only assembles them and maps
outcomes to exit codes: 0 success, 2 bad input (any
:class:`~captum_fau.errors.CaptumFAUError`), 1 unexpected failure,
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Callable, Sequence

from captum_fau.errors import CaptumFAUError

#: Modules that contribute commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "captum_fau.analyze_cli",
    "captum_fau.zoo_cli",
    "captum_fau.data.cli",
    "captum_fau.concept.cli",
    "captum_fau.train.cli",
    "captum_fau.attr.cli",
)


def common_parser() -> argparse.ArgumentParser:
    """Options every command accepts: ``--quiet``, ``--device``, ``--seed``."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars, only results and errors")
    group.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default: cpu)")
    group.add_argument("--seed", type=int, default=0, help="random seed; runs are reproducible (default: 0)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captum-fau",
        description=(
            "Do deep networks learn facial action units? Zero-bias CNNs, top-N deconvolution "
            "and FAU-KL concept analysis (Khorrami, Paine & Huang, 2015)."
        ),
        epilog="Run `captum-fau COMMAND --help` for a command's options. Start with `captum-fau demo`.",
    )
    from captum_fau import __version__

    parser.add_argument("--version", action="version", version=f"captum-fau {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_parser()
    for module_name in COMMAND_MODULES:
        import_module(module_name).register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``captum-fau`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except CaptumFAUError as err:
        print(f"captum-fau {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"captum-fau {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
