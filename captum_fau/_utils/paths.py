"""Where the library keeps this user's files, read from the environment at call time."""

from __future__ import annotations

import os
from pathlib import Path


def user_zoo_dir() -> Path:
    """Where trained models of this user live: ``CAPTUM_FAU_ZOO``, else ``$XDG_DATA_HOME/captum-fau/zoo``.

    ``XDG_DATA_HOME`` defaults to ``~/.local/share``. Read at call time.
    """
    if os.environ.get("CAPTUM_FAU_ZOO"):
        return Path(os.path.expandvars(os.environ["CAPTUM_FAU_ZOO"])).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "captum-fau" / "zoo"


__all__ = ["user_zoo_dir"]
