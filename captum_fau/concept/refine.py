"""Adaptive permutations: more permutations only for the pairs whose p sits near the floor.

With ``P`` permutations the smallest p is ``1 / (P + 1)``, and Benjamini-Hochberg over ``m`` pairs
reaches ``q < alpha`` only when about ``m / ((P + 1) alpha)`` pairs sit at that floor: 103 pairs for
256 filters x 20 AUs at ``P = 1000``. A network with a handful of AU-selective filters never
clears it. So every pair gets ``P`` permutations, and the pairs with fewer than
:data:`STOP_EXCEEDANCES` exceedances go on, in rounds that double their permutation count, until
they reach that many exceedances or ``max_permutations`` (the sequential Monte-Carlo test of
Besag & Clifford, 1991), or until Benjamini-Hochberg over the family already calls them significant at
``alpha / 2`` with the p they have (more permutations could not change that decision materially, and
``(1 + exceedances) / (1 + permutations)`` is a valid p at any count): a model with many strong
associations needs no refinement, one with a handful gets it where it decides the outcome. The
p-value stays ``(1 + exceedances) / (1 + permutations)`` of the same two-sided AUROC statistic, so
the test is the one the first ``P`` permutations started.
Only the AUROC (a rank sum: one matrix product per AU) is refined; the KL test keeps ``P``.

Examples::

    >>> default_max_permutations(n_pairs=5120, alpha=0.05, n_permutations=1000)
    256000
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from captum_fau.concept.fdr import benjamini_hochberg
from captum_fau.concept.kernels import auroc_from_rank_sums

#: A pair stops refining once its null has this many exceedances (its p is then known to ~30%).
STOP_EXCEEDANCES = 10

#: Permutations per refinement chunk (bounds the ``[chunk, M]`` label matrix).
_CHUNK = 4096


def default_max_permutations(n_pairs: int, alpha: float, n_permutations: int) -> int:
    """``2 m / alpha`` rounded up to a doubling of ``n_permutations``: one pair at the floor reaches
    ``q < alpha / 2``."""
    target = 2.0 * max(1, n_pairs) / alpha
    total = max(1, n_permutations)
    while total + 1 < target:
        total *= 2
    return int(total)


@dataclass(frozen=True)
class RefineLimits:
    """How far the refinement goes: at most ``max_permutations`` per pair; pairs that Benjamini-Hochberg
    over the family calls significant at ``alpha / 2`` stop; ``seed`` seeds the extra permutations."""

    max_permutations: int
    alpha: float
    seed: int


def refine_auroc(
    scheme: Any,
    ranks: np.ndarray,
    labels: np.ndarray,
    auc: np.ndarray,
    null: Any,
    active: np.ndarray,
    limits: RefineLimits,
) -> tuple[np.ndarray, np.ndarray]:
    """Continue the AUROC permutation test of the ``active`` pairs near the floor.

    A permutation only reorders whole units inside each exchange class, so a pair's permuted rank
    sum is ``sum_r G[donor(r), r]`` with ``G = patterns @ slot_rank_sums.T`` per class: one gather
    of ``units`` numbers per permutation instead of a product over all images.

    Args:
        scheme (PermutationScheme): The permutation scheme of the first permutations.
        ranks (np.ndarray): ``[M, C]`` float64 average ranks of the activations.
        labels (np.ndarray): ``[M, J]`` float presence.
        auc (np.ndarray): ``[C, J]`` observed AUROC.
        null (PermutationNull): The first permutations (``exceed_auroc``, ``n_permutations``).
        active (np.ndarray): ``[C, J]`` bool, the tested pairs (the BH family; others are left alone).
        limits (RefineLimits): The most permutations any pair gets, the level whose decisions stop a
            pair, and the seed (refinement streams differ from the first permutations').

    Returns:
        tuple: ``(p [C, J], permutations per pair [C, J])``.
    """
    exceed = null.exceed_auroc.astype(np.float64).copy()
    done = np.full(auc.shape, float(null.n_permutations))
    running = active & (exceed < STOP_EXCEEDANCES)
    floor = np.abs(auc - 0.5) - 1e-6
    n_images = len(labels)
    slots = [_slot_sums(c, ranks) for c in scheme.classes]
    rng = np.random.default_rng(limits.seed + 1_000_003)
    max_permutations = limits.max_permutations
    running &= ~_decided(exceed, done, active, limits.alpha)
    while running.any() and done[running].max() < max_permutations:
        width = int(min(done[running].max(), max_permutations - done[running].max()))
        for start in range(0, width, _CHUNK):
            size = min(_CHUNK, width - start)
            orders = scheme.shuffles(size, rng)
            for j in np.flatnonzero(running.any(axis=0)):
                for filters in _filter_groups(np.flatnonzero(running[:, j]), scheme):
                    sums, n_pos = _permuted_sums(scheme, orders, slots, labels[:, j], filters)
                    auc_perm = auroc_from_rank_sums(sums, n_pos, n_images - n_pos)
                    exceed[filters, j] += (~(np.abs(auc_perm - 0.5) < floor[filters, j][None, :])).sum(axis=0)
        done[running] += width
        running &= (exceed < STOP_EXCEEDANCES) & ~_decided(exceed, done, active, limits.alpha)
    return (1.0 + exceed) / (1.0 + done), done


def _decided(exceed: np.ndarray, done: np.ndarray, family: np.ndarray, alpha: float) -> np.ndarray:
    """Pairs that Benjamini-Hochberg over ``family`` already calls significant at ``alpha / 2``."""
    q = benjamini_hochberg((1.0 + exceed) / (1.0 + done), family)
    return family & (q < alpha / 2)


def _filter_groups(filters: np.ndarray, scheme: Any) -> list[np.ndarray]:
    """Filters in groups small enough that each class's ``[units, units, filters]`` table stays near 160 MB."""
    largest = max((len(c.donors) for c in scheme.classes), default=1)
    per_group = max(1, int(2e7 // max(1, largest**2)))
    return [filters[i : i + per_group] for i in range(0, len(filters), per_group)]


def _permuted_sums(scheme: Any, orders: list[np.ndarray], slots: list[tuple[np.ndarray, np.ndarray]],
                   label: np.ndarray, filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``[P, F]`` permuted rank sums of the images with the AU and ``[P, 1]`` their counts."""
    sums = np.zeros((len(orders[0]), len(filters)))
    n_pos = np.zeros((len(orders[0]), 1))
    for c, order, (rank_sums, sizes) in zip(scheme.classes, orders, slots):
        pattern = label[c.donors]  # [units, slots]
        g = np.einsum("ds,rsf->drf", pattern, rank_sums[:, :, filters])  # [donor, receiver, F]
        h = pattern @ sizes.T  # [donor, receiver]
        receivers = np.arange(len(c.donors))[None, :]
        sums += g[order, receivers].sum(axis=1)
        n_pos += h[order, receivers].sum(axis=1, keepdims=True)
    return sums, n_pos


def _slot_sums(c: Any, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[units, slots, C]`` rank sums and ``[units, slots]`` image counts of each receiving slot."""
    n_units, n_slots = c.donors.shape
    rank_sums = np.zeros((n_units, n_slots, ranks.shape[1]))
    np.add.at(rank_sums, (c.receiver, c.slot), ranks[c.images])
    sizes = np.zeros((n_units, n_slots))
    np.add.at(sizes, (c.receiver, c.slot), 1.0)
    return rank_sums, sizes


__all__ = ["STOP_EXCEEDANCES", "RefineLimits", "default_max_permutations", "refine_auroc"]
