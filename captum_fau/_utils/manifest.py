"""A manifest of resumable steps: the key of every finished step, rewritten atomically after each step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class StepManifest:
    """``OUT/analysis.json``: the key of every finished step and what went into the keys, rewritten atomically
    after each step.

    A step's key hashes everything its result depends on (the caller's :meth:`key` parts): the model's weights and
    preprocessing, the data's contents, the labels it reads, its own parameters and the keys of the steps
    it builds on. A step is reused only when its key and its files are unchanged.
    """

    FORMAT = 2

    def __init__(self, out: Path, fingerprint: dict[str, Any], params: dict[str, Any], resume: bool = True) -> None:
        self.path = out / "analysis.json"
        self.fingerprint = fingerprint
        self.params = params
        self.keys: dict[str, str] = {}
        self.done: dict[str, dict[str, Any]] = {}
        self._old: dict[str, Any] = {}
        if resume and self.path.is_file():
            try:
                old = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                old = {}
            if isinstance(old, dict) and old.get("format") == self.FORMAT and isinstance(old.get("steps"), dict):
                self._old = old["steps"]

    def key(self, step: str, **parts: Any) -> str:
        """Record and return the key of ``step`` from the named ``parts`` it depends on."""
        from captum_fau._utils.fingerprint import key

        self.keys[step] = key(parts)
        return self.keys[step]

    def finished(self, step: str, *files: Path) -> bool:
        """Whether an earlier run finished ``step`` with the key recorded by :meth:`key` and left ``files``."""
        old = self._old.get(step)
        return (
            isinstance(old, dict)
            and step in self.keys
            and old.get("key") == self.keys[step]
            and all(f.exists() for f in files)
        )

    def info(self, step: str) -> Any:
        """What the earlier run recorded for a finished ``step``."""
        return self._old[step].get("info")

    def mark(self, step: str, info: Any = True) -> None:
        from captum_fau._utils.io import atomic_write_text

        self.done[step] = {"key": self.keys.get(step), "info": info}
        self._old[step] = self.done[step]
        payload = {"format": self.FORMAT, "params": self.params, "fingerprint": self.fingerprint,
                   "steps": self._old}  # fmt: skip
        atomic_write_text(self.path, json.dumps(payload, indent=2, default=str) + "\n")


__all__ = ["StepManifest"]
