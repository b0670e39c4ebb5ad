"""Content fingerprints: short hashes of what a result depends on.

A finished step of an analysis is reused only when its *key* matches: a hash
of the model's weights, the data's contents, the labels and the step's own
parameters (see :mod:`captum_fau.analyze`). This module holds the generic
hashing; datasets say how to fingerprint themselves with a ``fingerprint()``
method (:meth:`captum_fau.data.base.FaceSet.fingerprint`), and any other
dataset is fingerprinted from its length and a sample of its items, which
the fingerprint states (``"method": "sampled items"``).

Examples::

    >>> import numpy as np, torch
    >>> key({"a": 1, "b": [2, 3]}) == key({"b": [2, 3], "a": 1})
    True
    >>> hash_arrays(np.zeros(3)) == hash_arrays(np.zeros(3)), hash_arrays(np.zeros(3)) == hash_arrays(np.ones(3))
    (True, False)
    >>> state_dict_hash(torch.nn.Linear(2, 2)) == state_dict_hash(torch.nn.Linear(2, 2))  # other random weights
    False
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

#: Hex digits kept of a sha256 digest (64 bits: collisions are not a practical concern).
DIGITS = 16

#: Items hashed, evenly spaced, for a dataset that cannot fingerprint itself.
SAMPLED_ITEMS = 32


def key(value: Any) -> str:
    """A short hash of a JSON-serialisable value (dict keys in sorted order).

    Args:
        value: Any value :func:`json.dumps` writes (others are written with ``str``).

    Returns:
        str: 16 hex digits.
    """
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:DIGITS]


class StreamHash:
    """An incremental sha256 over arrays, tensors and JSON values, in the order they are fed.

    Every value is prefixed with its kind, dtype and shape, so ``[1, 2]`` and ``[[1], [2]]``
    differ.

    Examples::

        >>> h = StreamHash()
        >>> h.update(np.arange(4)).update("labels").hexdigest() == StreamHash().update(np.arange(4)).update("labels").hexdigest()
        True
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def update(self, value: Any) -> "StreamHash":
        """Feed one value: a tensor, an array (or what ``np.asarray`` makes one of), or a JSON value."""
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            self._digest.update(f"tensor:{value.dtype}:{tuple(value.shape)}:".encode())
            self._digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                self.update(value.astype(str))
                return self
            self._digest.update(f"array:{value.dtype.str}:{value.shape}:".encode())
            self._digest.update(np.ascontiguousarray(value).tobytes())
        else:
            self._digest.update(b"json:" + json.dumps(value, sort_keys=True, default=str).encode())
        return self

    def hexdigest(self) -> str:
        return self._digest.hexdigest()[:DIGITS]


def hash_arrays(*values: Any) -> str:
    """:class:`StreamHash` of ``values`` (None entries count as ``null``)."""
    h = StreamHash()
    for value in values:
        h.update(value)
    return h.hexdigest()


def state_dict_hash(model: nn.Module) -> str:
    """A hash of every entry of ``model.state_dict()``: names, dtypes, shapes and exact values.

    Streams one tensor at a time, so memory does not grow with the model; any changed weight,
    buffer, or their order changes the hash.
    """
    h = StreamHash()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            h.update(name)
            h.update(tensor)
    return h.hexdigest()


def sampled_items_fingerprint(data: Any, count: int = SAMPLED_ITEMS) -> dict[str, Any]:
    """The fingerprint of a map-style dataset that cannot fingerprint itself: its length, its type and
    ``count`` evenly spaced items (first and last included), hashed in full.

    An item that differs outside the sample is not seen; the ``method`` entry says so.
    """
    n = len(data)
    picks = sorted({int(i) for i in np.linspace(0, n - 1, min(count, n)).round()}) if n else []
    h = StreamHash()
    for index in picks:
        _update_item(h, data[index])
    return {"method": f"sampled items ({len(picks)} of {n}, evenly spaced)", "type": _type_name(data), "n": n,
            "hash": h.hexdigest()}  # fmt: skip


def _update_item(h: StreamHash, item: Any) -> None:
    if isinstance(item, dict):
        for name in sorted(item):
            h.update(str(name))
            _update_item(h, item[name])
    elif isinstance(item, (list, tuple)):
        h.update(f"seq{len(item)}")
        for part in item:
            _update_item(h, part)
    elif isinstance(item, (torch.Tensor, np.ndarray)):
        h.update(item)
    else:
        h.update(item.item() if isinstance(item, np.generic) else item)


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def dataset_fingerprint(data: Any) -> dict[str, Any]:
    """What identifies the contents of ``data``: its own ``fingerprint()`` when it has one, else
    :func:`sampled_items_fingerprint`. Wrappers that carry their source as ``.base`` (with ``.expected``
    for an input adaptation) are fingerprinted through it.

    Returns:
        dict: JSON-serialisable; ``"method"`` says how it was made, ``"hash"`` identifies the contents.
    """
    own = getattr(data, "fingerprint", None)
    if callable(own):
        return dict(own())
    base = getattr(data, "base", None)
    if base is not None and base is not data and hasattr(base, "__getitem__"):
        return {"method": "wrapped", "type": _type_name(data), "expected": getattr(data, "expected", None),
                "base": dataset_fingerprint(base)}  # fmt: skip
    if isinstance(data, torch.Tensor):
        return {"method": "tensor contents", "hash": hash_arrays(data), "n": int(data.shape[0]) if data.dim() else 1}
    return sampled_items_fingerprint(data)


def combine(parts: Iterable[tuple[str, Any]]) -> str:
    """:func:`key` of named parts, e.g. a step's parameters and the keys of the steps it reads."""
    return key(dict(parts))


__all__ = [
    "DIGITS", "SAMPLED_ITEMS", "StreamHash", "combine", "dataset_fingerprint", "hash_arrays", "key",
    "sampled_items_fingerprint", "state_dict_hash",
]  # fmt: skip
