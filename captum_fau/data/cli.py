"""``captum-fau data ...``: render, convert and describe datasets."""

from __future__ import annotations

import argparse
from importlib import import_module

#: Modules that contribute ``data`` subcommands via ``register(subparsers, common)``.
DATA_COMMAND_MODULES: tuple[str, ...] = ("captum_fau.data.describe_cli", "captum_fau.data.synthfacs_cli")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("data", help="render SynthFACS sets and describe datasets", description=__doc__)
    sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    for module_name in DATA_COMMAND_MODULES:
        import_module(module_name).register(sub, common)
