"""Tests within strata: association beyond what a stratum label (e.g. the posed emotion) explains.

Permutations stay inside each stratum: a (unit, stratum) cell only trades labels with a cell of
the same stratum and the same within-cell structure
(:class:`~captum_fau.concept.resampling.PermutationScheme`), so every association of the labels
with the strata is kept and the test asks for association beyond it.

The AUROC statistic of these tests is the stratified one: activations are ranked within their
stratum (centred on the stratum's mean rank), so that ``AUROC_within - 1/2`` sums the within-stratum
rank-sum deviations (van Elteren's idea). The pooled AUROC would not do: where every filter responds
to the stratum and the AUs follow it, the pooled AUROC is far from 1/2 under the within-strata null
too, and ``|AUROC - 1/2|`` then measures the confound instead of the association beyond it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import rankdata

from captum_fau.concept.fdr import benjamini_hochberg
from captum_fau.concept.kernels import auroc_from_rank_sums
from captum_fau.concept.refine import RefineLimits, default_max_permutations, refine_auroc
from captum_fau.concept.resampling import PermutationScheme, group_codes, permutation_null


def within_strata(prep: Any, kl: np.ndarray, auc: np.ndarray, family: np.ndarray,
                  progress: bool) -> dict[str, np.ndarray]:  # fmt: skip
    """The KL and AUROC tests with permutations inside each stratum (the ``*_within`` fields).

    Args:
        prep: The prepared data of :func:`~captum_fau.concept.statistics.fau_kl_statistics`.
        kl (np.ndarray): ``[C, J]`` observed smoothed KL.
        auc (np.ndarray): ``[C, J]`` observed AUROC.
        family (np.ndarray): ``[C, J]`` the pairs the plain tests tested.
        progress (bool): tqdm bar over the permutation chunks.

    Returns:
        dict: ``p_kl_within``, ``p_auroc_within``, ``q_kl_within``, ``q_auroc_within``.
    """
    labels = prep.labels.astype(np.float32)
    strata = group_codes(prep.design.strata, len(labels))
    # an AU that never varies inside any stratum carries no information beyond the strata
    n_strata = int(strata.max()) + 1
    member = np.zeros((len(strata), n_strata), np.float32)
    member[np.arange(len(strata)), strata] = 1.0
    per_stratum = member.T @ labels  # [S, J]
    sizes = member.sum(axis=0)[:, None]
    varies = ((per_stratum > 0) & (per_stratum < sizes)).any(axis=0)
    testable = family & varies[None, :]
    if not varies.all():
        bad = np.flatnonzero(~varies).tolist()
        message = (
            f"stratify: AU column(s) {bad} never vary inside any stratum (each stratum has the AU in all or "
            "none of its images), so they are untestable beyond the strata: p_within = q_within = 1."
        )
        prep.notes.append(message)
        warnings.warn(message, UserWarning, stacklevel=4)
    scheme = PermutationScheme(prep.design.groups, len(labels), prep.design.sequences, strata, prep.labels)
    sources = scheme.sources(prep.opts.n_permutations, prep.opts.seed + 7)
    ranks = within_stratum_ranks(prep.acts, strata)
    n_pos = prep.labels.sum(axis=0).astype(np.float64)
    auc = auroc_from_rank_sums(ranks.T @ prep.labels.astype(np.float64), n_pos, len(labels) - n_pos)
    null = permutation_null(prep.binned, ranks.astype(np.float32), labels, (kl, auc), sources,
                            prep.opts.smoothing, prep.opts.chunk_size, progress)  # fmt: skip
    p_auroc = null.p_auroc
    max_perm = prep.opts.max_permutations
    if max_perm is None:
        max_perm = default_max_permutations(int(testable.sum()), prep.opts.alpha, prep.opts.n_permutations)
    if max_perm > prep.opts.n_permutations:  # the adaptive refinement of the plain test, inside the strata
        p_auroc, _ = refine_auroc(scheme, ranks, prep.labels.astype(np.float64), auc, null, testable,
                                  RefineLimits(max_perm, prep.opts.alpha, prep.opts.seed + 7))  # fmt: skip
    prep.notes.append(
        f"Within-strata tests (p_kl_within, p_auroc_within): permutations inside {n_strata} strata, the AUROC from "
        "ranks within each stratum; they measure association beyond what the stratum label explains, and they are "
        "the main test (p, q, the top AU and the significance flag)."
    )
    return {
        "p_kl_within": np.where(testable, null.p_kl, 1.0),
        "p_auroc_within": np.where(testable, p_auroc, 1.0),
        "q_kl_within": benjamini_hochberg(null.p_kl, mask=testable),
        "q_auroc_within": benjamini_hochberg(p_auroc, mask=testable),
    }


def within_stratum_ranks(acts: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``[M, C]`` ranks within each stratum, centred on the stratum's mean rank and shifted to the pooled mean rank.

    With these in place of the pooled ranks, ``AUROC - 1/2`` from a rank sum is the sum over strata of
    each stratum's rank-sum deviation from its expectation, over ``n_with * n_without``.

    Examples::

        >>> within_stratum_ranks(np.array([[1.0], [2.0], [10.0], [20.0]]), np.array([0, 0, 1, 1]))[:, 0].tolist()
        [2.0, 3.0, 2.0, 3.0]
    """
    out = np.empty(acts.shape, np.float64)
    for level in np.unique(strata):
        rows = np.flatnonzero(strata == level)
        out[rows] = rankdata(acts[rows], axis=0) - (len(rows) + 1) / 2.0
    return out + (len(acts) + 1) / 2.0


__all__ = ["within_stratum_ranks", "within_strata"]
