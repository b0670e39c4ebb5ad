"""Named pause points, so fault tests can stop a run at an exact place and kill it there.

A long-running step calls :func:`pause_point` with its name at a place where an
interruption must be survivable (after a scan checkpoint, while the
statistics run, halfway through writing the report). Normally this does
nothing. With ``CAPTUM_FAU_PAUSE_AT=NAME`` and ``CAPTUM_FAU_PAUSE_FILE=PATH``
in the environment, the process creates ``PATH`` when it reaches ``NAME``
and then waits until ``PATH`` is deleted (or it is killed), so a test can wait
for the file and send ``SIGKILL`` at that very point instead of guessing with
sleeps.

Examples::

    >>> pause_point("scan")  # no environment variables: returns at once
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT = "CAPTUM_FAU_PAUSE_AT"
PAUSE_FILE = "CAPTUM_FAU_PAUSE_FILE"

#: The pause points of an analysis, in the order a run reaches them.
POINTS = ("scan", "faukl", "report")


def pause_point(name: str) -> None:
    """Wait here if the environment asks to pause at ``name`` (see the module docstring)."""
    if os.environ.get(PAUSE_AT) != name or not os.environ.get(PAUSE_FILE):
        return
    flag = Path(os.environ[PAUSE_FILE])
    flag.write_text(f"{os.getpid()}\n")
    os.environ.pop(PAUSE_AT)  # pause once per process
    while flag.exists():
        time.sleep(0.05)


__all__ = ["PAUSE_AT", "PAUSE_FILE", "POINTS", "pause_point"]
