#!/usr/bin/env python
"""Reproduce the paper's expression-recognition tables (Khorrami et al. 2015, Tables 1-3).

A checkout's name for ``captum-fau reproduce`` (the same options; see
:mod:`captum_fau.train.reproduce` and ``captum-fau reproduce --help``)::

    python scripts/reproduce_paper.py --ckplus PATH/TO/CK+ --tfd PATH/TO/TFD_96x96.mat --device cuda
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    """``captum-fau reproduce ARGV``: exit code 0, or 2 for bad input."""
    from captum_fau.cli import main as cli_main

    return cli_main(["reproduce", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
