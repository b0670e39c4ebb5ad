"""An exclusive lock on an output folder, so two runs never write into one folder at once.

The lock is an operating-system file lock (the ``filelock`` package, ``flock`` on
POSIX) on ``OUT/.captum-fau.lock``: the system releases it when its process
ends, however it ends. Beside it, ``OUT/.captum-fau.lock.json`` says who holds
it (process id, host, start time, command line), so a second run can name the
other process, and a run that finds the record of a killed run (whose lock the
system has released) says that it took over.

Examples::

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputLock(out) as lock:
    ...     OutputLock(out).acquire()
    Traceback (most recent call last):
    ...
    captum_fau.errors.OutputError: Another analysis is writing into ...
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from captum_fau._utils.io import atomic_write_text
from captum_fau.errors import OutputError

LOCK_NAME = ".captum-fau.lock"
INFO_NAME = ".captum-fau.lock.json"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (True when that cannot be told)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True
    return True


def _describe(info: dict[str, Any]) -> str:
    started = info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if isinstance(started, (int, float)) else "?"
    return (
        f"process {info.get('pid', '?')} on host {info.get('host', '?')}, started {when} ({info.get('command', '?')})"
    )


class OutputLock:
    """Hold the exclusive lock on the output folder ``out`` for a block (or between acquire / release).

    Args:
        out (str or Path): The output folder (must exist).

    Attributes:
        note (str or None): After :meth:`acquire`, what was found: the record of a run that ended
            without releasing its lock (killed), whose lock was taken over.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        from filelock import FileLock

        self.out = Path(out)
        self.lock_path = self.out / LOCK_NAME
        self.info_path = self.out / INFO_NAME
        self._lock = FileLock(str(self.lock_path))
        self.note: str | None = None

    def _read_info(self) -> dict[str, Any]:
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def acquire(self) -> "OutputLock":
        """Take the lock at once or raise.

        Raises:
            OutputError: another process holds it; the message names that process.
        """
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            other = self._read_info()
            who = _describe(other) if other else "another process (it has not yet written its record)"
            raise OutputError(
                f"Another analysis is writing into {self.out}: {who}. Wait for it to finish, stop it, or choose "
                "another --out (two runs into one folder would mix their results)."
            ) from None
        except OSError as err:
            raise OutputError(f"Cannot lock the output folder {self.out} ({err}); choose a writable --out.") from err
        old = self._read_info()
        if old:
            same_host = old.get("host") == socket.gethostname()
            state = (
                "no longer running"
                if same_host and not pid_alive(int(old.get("pid", -1)))
                else "it no longer holds the lock"
            )
            self.note = f"Took over the lock of {self.out} left by an earlier run ({_describe(old)}; {state})."
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "command": " ".join(sys.argv)[:300] or sys.executable}  # fmt: skip
        atomic_write_text(self.info_path, json.dumps(info, indent=2) + "\n")
        return self

    def release(self) -> None:
        """Remove the record and release the lock (nothing happens if it is not held)."""
        if not self._lock.is_locked:
            return
        self.info_path.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


__all__ = ["INFO_NAME", "LOCK_NAME", "OutputLock", "pid_alive"]
