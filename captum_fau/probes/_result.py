"""Saving and loading probe results: one ``.npz`` archive (arrays + a JSON ``meta`` entry), written atomically.

No pickles: every array is numeric or unicode, and the archive is read with ``allow_pickle=False``.
Caches of partial work (one archive per step, named by a key that hashes everything the step
depends on) use the same format, so a killed run resumes at the first missing step.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from captum_fau._utils.io import atomic_npz
from captum_fau.errors import OutputError, ResumeError

#: Format tag stored in every archive; a load of another kind is refused.
FORMAT = "captum-fau-probe/1"


def save_arrays(
    path: str | os.PathLike[str], kind: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> Path:
    """Write ``arrays`` and ``meta`` (JSON-serialisable) to ``path`` atomically; returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise OutputError(f"probe results are saved as .npz archives; pass a path ending in .npz, got {path}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "kind": kind, **meta}, sort_keys=True)
    return atomic_npz(path, meta=np.array(text), **{k: np.asarray(v) for k, v in arrays.items()})


def load_arrays(path: str | os.PathLike[str], kind: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an archive written by :func:`save_arrays`; refuses another kind or format."""
    path = Path(path)
    if not path.is_file():
        raise ResumeError(f"{path} does not exist; save a result there first (result.save(path)).")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "meta"}
        meta = json.loads(str(archive["meta"])) if "meta" in archive.files else {}
    if meta.get("format") != FORMAT or meta.get("kind") != kind:
        raise ResumeError(f"{path} holds {meta.get('kind', 'something else')!r}, not a {kind!r} result.")
    return arrays, meta


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of the model's parameters and buffers: keys caches to the weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_key(**parts: Any) -> str:
    """A short stable key of JSON-serialisable ``parts`` (the step's inputs)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def torch_to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


__all__ = ["FORMAT", "cache_key", "load_arrays", "model_fingerprint", "save_arrays"]
