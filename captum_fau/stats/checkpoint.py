"""Checkpoints of a running scan, so a killed scan restarts where it stopped.

A checkpoint folder holds, per rank, one small safetensors file (the top-N
trackers, the number of batches and rows done, the scan's settings) and the
rank's per-image rows as append-only column files (:class:`~captum_fau.stats.rows.RowStore`).
The state file is replaced atomically after the rows are flushed, so on
restart the files are cut back to the row count it records and the scan
continues with the next batch: the result equals that of an uninterrupted run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from captum_fau._utils import shell
from captum_fau._utils.fingerprint import state_dict_hash
from captum_fau._utils.io import atomic_safetensors
from captum_fau.errors import ResumeError
from captum_fau.stats.options import ScanOptions
from captum_fau.stats.rows import RowStore
from captum_fau.stats.topn import RunningTopN

_FORMAT = 1
_STATE_RE = re.compile(r"^scan\.rank(\d+)-of-(\d+)\.safetensors$")


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the model's state dict: every parameter's and buffer's name, shape, dtype and exact values
    (:func:`captum_fau._utils.fingerprint.state_dict_hash`)."""
    return state_dict_hash(model)


def scan_settings(
    model: nn.Module, layers: list[str], options: ScanOptions, num_images: int, additional_forward_args: Any = None
) -> dict[str, Any]:
    """What must match for a scan to resume from a checkpoint.

    ``options.fingerprint`` adds what identifies the data and the model beyond this (e.g. the data's content hash
    from :func:`captum_fau._utils.fingerprint.dataset_fingerprint`); a checkpoint written with another one is
    discarded. Of ``additional_forward_args`` only whether any were given counts.
    """
    settings = {
        "layers": layers, "top_n": options.top_n, "distinct_images": options.distinct_images,
        "batch_size": options.batch_size, "num_images": num_images, "keep_outputs": options.keep_outputs,
        "model": model_fingerprint(model), "additional_forward_args": additional_forward_args is not None,
    }  # fmt: skip
    if options.fingerprint:
        settings["fingerprint"] = options.fingerprint
    return settings


class ScanCheckpoint:
    r"""The checkpoint files of one rank of a scan in ``directory``.

    Args:
        directory (str or Path): Checkpoint folder (created if needed).
        settings (dict): What must match for a resume (layers, top-N, batch size,
            dataset length, model fingerprint, ...); JSON-serialisable.
        rank (int, optional): This process's rank. Default: 0
        world_size (int, optional): Number of processes. Default: 1

    Raises:
        ResumeError: the folder holds checkpoints of a run with another number of processes.
    """

    def __init__(self, directory: str | Path, settings: dict[str, Any], rank: int = 0, world_size: int = 1) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.settings = json.loads(json.dumps(settings, default=str))
        self.rank, self.world_size = rank, world_size
        self.state_path = self.directory / f"scan.rank{rank}-of-{world_size}.safetensors"
        self.rows_prefix = f"rows.rank{rank}-of-{world_size}"
        self.discarded: str | None = None
        others = sorted({int(m.group(2)) for p in self.directory.iterdir() if (m := _STATE_RE.match(p.name))})
        foreign = [w for w in others if w != world_size]
        if foreign:
            raise ResumeError(
                f"The checkpoint folder {self.directory} was written by a scan with {foreign[0]} process(es) but this "
                f"run has {world_size}; resume with the same number of processes (e.g. "
                f"{shell.command('torchrun', '--nproc_per_node', str(foreign[0]))} ...) or delete the folder to start over."
            )

    def load(self) -> dict[str, Any] | None:
        """The saved state (``batches_done``, ``rows``, ``complete``, ``trackers``), or None if there is none.

        A checkpoint that cannot be read, or that was written with other settings (another model, other
        data, another layer, ...), is deleted and None returned: the scan starts clean. :attr:`discarded`
        then says why.
        """
        self.discarded: str | None = None
        if not self.state_path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(self.state_path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("captum_fau_scan", "{}"))
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except Exception as err:  # safetensors raises several types for damaged files
            return self._discard(f"it cannot be read ({err})")
        if meta.get("format") != _FORMAT:
            return self._discard(f"it is not a scan checkpoint of this version (format {meta.get('format')!r})")
        saved = meta.get("settings", {})
        if saved != self.settings:
            changed = sorted(k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k))
            details = ", ".join(f"{k}: {_short(saved.get(k))} -> {_short(self.settings.get(k))}" for k in changed[:6])
            return self._discard(f"it was written with other settings ({details})")
        trackers: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            _, layer, field = key.split("/", 2)
            trackers.setdefault(layer, {})[field] = tensor
        return {
            "batches_done": int(meta["batches_done"]),
            "rows": int(meta["rows"]),
            "complete": bool(meta.get("complete", False)),
            "trackers": trackers,
        }

    def _discard(self, why: str) -> None:
        """Delete this rank's checkpoint files and record why."""
        self.discarded = f"The scan checkpoint in {self.directory} was discarded and the scan started clean: {why}."
        self.state_path.unlink(missing_ok=True)
        for path in self.directory.glob(f"{self.rows_prefix}.*"):
            path.unlink(missing_ok=True)
        return None

    def rows(self, count: int, spill_bytes: int | None = None) -> RowStore:
        """This rank's row store, cut back to ``count`` rows (0: a fresh store)."""
        if count == 0:
            for path in self.directory.glob(f"{self.rows_prefix}.*"):
                path.unlink()
        return RowStore.reopen(self.directory, self.rows_prefix, count, spill_bytes)

    def save(
        self, batches_done: int, store: RowStore, trackers: dict[str, RunningTopN], complete: bool = False
    ) -> None:
        """Flush the rows, then atomically replace the state file."""
        store.flush()
        tensors = {
            f"topn/{layer}/{key}": value
            for layer, tracker in trackers.items()
            for key, value in tracker.state_dict().items()
        }
        meta = {"format": _FORMAT, "batches_done": batches_done, "rows": len(store), "complete": complete,
                "rank": self.rank, "world_size": self.world_size, "settings": self.settings}  # fmt: skip
        atomic_safetensors(self.state_path, tensors, metadata={"captum_fau_scan": json.dumps(meta)})

    def clear(self) -> None:
        """Delete this rank's checkpoint files (after the scan's results are safely written)."""
        self.state_path.unlink(missing_ok=True)
        for path in self.directory.glob(f"{self.rows_prefix}.*"):
            path.unlink(missing_ok=True)
        try:
            self.directory.rmdir()
        except OSError:
            pass  # other ranks' files, or the user's, are still there


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["ScanCheckpoint", "model_fingerprint", "scan_settings"]
