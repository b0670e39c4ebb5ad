"""``captum-fau data ...``: render, convert and describe datasets."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("data", help="render SynthFACS sets and describe datasets", description=__doc__)
    p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
