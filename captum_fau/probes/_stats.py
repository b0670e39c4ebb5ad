"""The statistics the probes share: paired sign-flip tests over units, t intervals, BH q values.

Every probe ends in the same question: across the independent units of an experiment (the faces
of a counterfactual probe, the subjects of an occlusion or ablation), is the mean of a paired
difference away from zero? The unit is what is resampled: a test that resampled images of the
same subject would treat correlated frames as independent and report too small p values.

* :func:`unit_means` collapses per-image differences to one mean per unit;
* :func:`sign_flip_test` is the exact (K <= 16 units: all 2^K sign patterns) or Monte-Carlo
  sign-flip permutation test of ``|mean| > 0`` for many columns at once;
* :func:`t_interval` is the Student-t interval of the mean over units;
* :func:`bh_q` wraps :func:`scipy.stats.false_discovery_control` (Benjamini-Hochberg) with NaN
  handling.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
from scipy import stats as sps

from captum_fau.errors import StatisticsError

#: Units up to which the sign-flip test enumerates every sign pattern (2^16 = 65,536 rows).
EXACT_UNITS: int = 16


def unit_codes(units: Any, n: int, what: str = "images") -> tuple[np.ndarray, str]:
    """Integer unit codes ``[n]`` and the kind of unit, from ids (subjects, sequences) or ``None``.

    ``None`` makes every image its own unit and warns: frames of one person are correlated, so p
    values and intervals computed that way are too optimistic.
    """
    if units is None:
        warnings.warn(
            f"No subject or sequence ids were given, so each of the {n} {what} is treated as an independent "
            "unit; frames of the same person are correlated, so p values and intervals are optimistic. Pass "
            "subject ids (units=...) to test over people.",
            UserWarning,
            stacklevel=3,
        )
        return np.arange(n, dtype=np.int64), "image"
    values = np.asarray(units)
    if values.shape != (n,):
        raise StatisticsError(f"units must give one id per image ({n}), got shape {values.shape}.")
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64), "unit"


def unit_means(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``[n, ...]`` within each unit: ``[n_units, ...]`` (NaN rows ignored per column)."""
    n_units = int(codes.max()) + 1 if codes.size else 0
    flat = values.reshape(len(values), -1).astype(np.float64)
    finite = np.isfinite(flat)
    sums = np.zeros((n_units, flat.shape[1]))
    counts = np.zeros((n_units, flat.shape[1]))
    np.add.at(sums, codes, np.where(finite, flat, 0.0))
    np.add.at(counts, codes, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means.reshape((n_units,) + values.shape[1:])


def _signs(k: int, n_permutations: int, seed: int) -> np.ndarray:
    if k <= EXACT_UNITS:
        return np.array(list(itertools.product((1.0, -1.0), repeat=k)), dtype=np.float64)
    rng = np.random.default_rng(seed)
    return rng.choice((-1.0, 1.0), size=(n_permutations, k))


def sign_flip_test(diffs: np.ndarray, n_permutations: int = 2000, seed: int = 0) -> np.ndarray:
    """Two-sided sign-flip permutation p values of ``mean(d) != 0`` for every column of ``diffs``.

    Args:
        diffs (np.ndarray): ``[K, ...]`` paired differences, one row per independent unit.
        n_permutations (int, optional): Random sign patterns when ``K > 16`` (exact enumeration
            otherwise). Default: 2000
        seed (int, optional): Seed of the sign patterns. Default: 0

    Returns:
        np.ndarray: p values shaped like ``diffs.shape[1:]``; ``(1 + #{|T*| >= |T|}) / (1 + B)``
        for Monte-Carlo patterns, the exact share for enumerated ones; 1 where every
        difference is zero; NaN for columns with a NaN.
    """
    d = np.asarray(diffs, dtype=np.float64)
    k = d.shape[0]
    if k < 2:
        raise StatisticsError(f"a test over units needs at least 2 units, got {k}.")
    flat = d.reshape(k, -1)
    signs = _signs(k, n_permutations, seed)
    observed = np.abs(flat.mean(0))
    scale = np.abs(flat).max(0)
    tol = 1e-9 * np.where(scale > 0, scale, 1.0)
    exceed = np.zeros(flat.shape[1])
    for start in range(0, len(signs), 4096):
        null = np.abs(signs[start : start + 4096] @ np.nan_to_num(flat) / k)
        exceed += (null >= observed - tol).sum(0)
    exact = k <= EXACT_UNITS
    p = exceed / len(signs) if exact else (1.0 + exceed) / (1.0 + len(signs))
    p = np.minimum(p, 1.0)
    p[np.isnan(flat).any(0)] = np.nan
    return p.reshape(d.shape[1:])


def t_interval(diffs: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of the mean over units (rows) for every column; ``(low, high)``."""
    d = np.asarray(diffs, dtype=np.float64)
    k = d.shape[0]
    mean = d.mean(0)
    se = d.std(0, ddof=1) / np.sqrt(k)
    half = sps.t.ppf(0.5 + level / 2, df=k - 1) * se
    return mean - half, mean + half


def bh_q(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q values (``scipy.stats.false_discovery_control``) over every finite p."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = sps.false_discovery_control(np.clip(p[finite], 0.0, 1.0), method="bh")
    return q


__all__ = ["EXACT_UNITS", "bh_q", "sign_flip_test", "t_interval", "unit_codes", "unit_means"]
