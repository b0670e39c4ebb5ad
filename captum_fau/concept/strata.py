"""Tests within strata: association beyond what a stratum label (e.g. the posed emotion) explains.

Permutations stay inside each stratum: a (unit, stratum) cell only trades labels with a cell of
the same stratum and the same within-cell structure
(:class:`~captum_fau.concept.resampling.PermutationScheme`), so every association of the labels
with the strata is kept and the test asks for association beyond it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from captum_fau.concept.fdr import benjamini_hochberg
from captum_fau.concept.refine import default_max_permutations, refine_auroc
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
    null = permutation_null(prep.binned, prep.ranks.astype(np.float32), labels, (kl, auc), sources,
                            prep.opts.smoothing, prep.opts.chunk_size, progress)  # fmt: skip
    p_auroc = null.p_auroc
    max_perm = prep.opts.max_permutations
    if max_perm is None:
        max_perm = default_max_permutations(int(testable.sum()), prep.opts.alpha, prep.opts.n_permutations)
    if max_perm > prep.opts.n_permutations:  # the adaptive refinement of the plain test, inside the strata
        p_auroc, _ = refine_auroc(scheme, prep.ranks, prep.labels.astype(np.float64), auc, null, testable, max_perm,
                                  prep.opts.seed + 7)  # fmt: skip
    prep.notes.append(
        f"Within-strata tests (p_kl_within, p_auroc_within): permutations inside {n_strata} strata; they measure "
        "association beyond what the stratum label explains."
    )
    return {
        "p_kl_within": np.where(testable, null.p_kl, 1.0),
        "p_auroc_within": np.where(testable, p_auroc, 1.0),
        "q_kl_within": benjamini_hochberg(null.p_kl, mask=testable),
        "q_auroc_within": benjamini_hochberg(p_auroc, mask=testable),
    }


__all__ = ["within_strata"]
