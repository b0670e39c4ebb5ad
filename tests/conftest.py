"""Test configuration and the fixtures several test files share.

* ``synthfacs(n, seed)``: a rendered SynthFACS set, cached for the session (each (n, seed) is drawn once);
* ``zerobias(num_classes=8, seed=0, **kwargs)``: a small seeded zero-bias CNN in eval mode, a fresh one per call.

The helpers package holds no tests and no doctests.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

collect_ignore = ["helpers"]


@pytest.fixture(scope="session")
def synthfacs() -> Callable[..., Any]:
    """``synthfacs(n, seed=0)`` -> the FaceSet ``load_synthfacs(n, seed=seed)``, rendered once per session."""
    from captum_fau.data.synthfacs import load_synthfacs

    cache: dict[tuple[int, int], Any] = {}

    def make(n: int, seed: int = 0) -> Any:
        if (n, seed) not in cache:
            cache[(n, seed)] = load_synthfacs(n, seed=seed)
        return cache[(n, seed)]

    return make


@pytest.fixture(scope="session")
def zerobias() -> Callable[..., Any]:
    """``zerobias(num_classes=8, seed=0, **kwargs)`` -> a new ``ZeroBiasCNN`` seeded with ``seed``, in eval mode."""
    import torch

    from captum_fau import ZeroBiasCNN

    def make(num_classes: int = 8, seed: int = 0, **kwargs: Any) -> Any:
        torch.manual_seed(seed)
        return ZeroBiasCNN(num_classes=num_classes, **kwargs).eval()

    return make
