"""Which filters a report features: the most informative first (:func:`featured_filters`).

It reads a :class:`~captum_fau.concept.FAUKLResult` (significant associations first, then null-corrected KL) or,
without one, a :class:`~captum_fau.attr.TopNResult` (strongest response), through their public attributes only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from captum_fau.errors import ConfigError


def featured_filters(topn: Any = None, faukl: Any = None, layer: str | None = None, count: int = 10) -> list[int]:
    """The ``count`` most informative filters: strongest significant AU association, else strongest response.

    Args:
        topn (TopNResult, optional): Ranks its filters by their largest activation when
            ``faukl`` is None.
        faukl (FAUKLResult, optional): Ranks filters with a significant association (q < 0.05)
            first, then by null-corrected KL.
        layer (str, optional): The FAU-KL layer. Default: the result's own.
        count (int, optional): How many filters. Default: 10

    Returns:
        list of int: Filter indices, most informative first.
    """
    if faukl is not None:
        st = faukl.stats(layer)
        strength = np.where(st.testable, st.kl_corrected, -np.inf).max(axis=1)
        best_q = np.where(st.testable, st.q, np.inf).min(axis=1)
        order = np.lexsort((-strength, best_q >= 0.05))  # significant first, then by corrected KL
        return [int(f) for f in order[:count]]
    if topn is None:
        raise ConfigError("featured_filters needs a TopNResult or a FAUKLResult.")
    top = topn.top_values()  # reconstructed and pending filters
    filters, top_values = np.array(list(top), dtype=np.int64), np.array(list(top.values()))
    return [int(filters[i]) for i in np.argsort(-top_values, kind="stable")[:count]]


__all__ = ["featured_filters"]
