"""False discovery rate over the (filter, AU) pairs: Benjamini-Hochberg on the testable family.

The adjustment itself is :func:`scipy.stats.false_discovery_control`; this module decides which
entries form the family. Untestable pairs (dead filters, AUs no image shows or every image shows)
are left out, so that they neither inflate ``m`` nor get a q-value, and are given ``q = 1``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control

from captum_fau.errors import StatisticsError


def benjamini_hochberg(p_values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Benjamini-Hochberg q-values (adjusted p-values) over all entries of ``p_values``.

    Args:
        p_values (np.ndarray): p-values of any shape. NaN entries (no test) are left out of the
            family and keep ``q = NaN``, as R's ``p.adjust`` does.
        mask (np.ndarray, optional): Bool, same shape: only these entries form the family;
            the others get ``q = 1``.

    Returns:
        np.ndarray: q-values, same shape; ``q <= alpha`` controls the FDR at ``alpha``
        (independent or positively dependent tests).

    Raises:
        StatisticsError: a p-value lies outside ``[0, 1]``, or ``mask`` has another shape.

    Examples::

        >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5])).round(4).tolist()
        [0.04, 0.0533, 0.0533, 0.5]
    """
    p = np.asarray(p_values, dtype=np.float64)
    family = np.ones(p.shape, bool) if mask is None else np.asarray(mask, bool)
    if family.shape != p.shape:
        raise StatisticsError(
            f"mask has shape {family.shape} but the p-values have {p.shape}; give one flag per p-value."
        )
    q = np.ones(p.shape, dtype=np.float64)
    untested = family & np.isnan(p)
    q[untested] = np.nan
    family &= ~untested
    values = p[family]
    if ((values < 0) | (values > 1)).any():
        raise StatisticsError("p-values must lie in [0, 1]; check how they were computed.")
    if values.size:
        q[family] = false_discovery_control(values)
    return q


__all__ = ["benjamini_hochberg"]
