"""Statistics of the FAU-KL association between filter activations and action units.

For filter ``c`` and AU ``j`` the paper (Khorrami et al. 2015, §4.4) compares the histogram
``Q_cj`` of the filter's per-image maximum activation over the images that show AU ``j`` with the
histogram ``R_cj`` over the images that do not, and scores the pair with ``D_KL(Q_cj || R_cj)``.
The plug-in estimate is biased upwards (more so the fewer images show the AU) and carries no
notion of noise, so this module reports, next to it:

* ``kl`` -- the smoothed estimate ``sum_k q_k log(q_k / r_k)`` with
  ``q_k = (Q_k + a) / (n_Q + K a)`` and ``r_k = (R_k + a) / (n_R + K a)`` (additive smoothing
  ``a``, ``K`` bins shared by both histograms of a filter). The direction is
  ``D_KL(Q || R)``: "present" measured against "absent", as in the paper.
* ``kl_plain`` -- the paper's estimate: no smoothing, bins with ``q_k = 0`` add nothing, a bin
  with ``q_k > 0`` and ``r_k = 0`` makes it ``inf`` (what ``scipy.stats.entropy(q, r)`` returns).
* ``kl_null_mean`` / ``kl_corrected`` -- the mean of ``kl`` over label permutations and the
  null-corrected score ``kl - kl_null_mean``, which removes the small-sample bias.
* ``p`` -- permutation p-values ``(1 + #{null >= observed}) / (1 + P)`` of the chosen test
  statistic (``"auroc"``: two-sided ``|AUROC - 1/2|``, the default because a rank statistic has
  more power against shifts than a binned one; ``"kl"``: the smoothed KL, one-sided). Both
  p-values are kept (``p_auroc``, ``p_kl``). Labels are permuted at the group level when group
  ids (sequences or subjects) are given: images of one group keep their label pattern and move
  together, and groups are only exchanged with groups of the same size, so that within-group
  correlation (frames of one CK+ sequence) does not make the test anti-conservative.
* ``q`` -- Benjamini-Hochberg q-values over all testable (filter, AU) pairs.
* ``ci`` -- percentile bootstrap intervals of ``kl``, resampling groups (or images) with
  replacement, bin edges held fixed.
* ``auroc`` -- the probability that an image with the AU has a larger maximum activation than one
  without (ties count 1/2): a bin-free association score (0.5 = none).

Everything is vectorised over filters x AUs x permutations: bin codes are computed once, a
histogram of "present" images for any relabelling is a matrix product of the one-hot bin codes
with the (permuted or bootstrap-weighted) presence matrix, and AUROCs are rank sums, a matrix
product of the activation ranks with the same presence matrix. This module is the orchestrator;
the pieces live in :mod:`~captum_fau.concept.kernels` (histograms, KL, AUROC),
:mod:`~captum_fau.concept.resampling` (permutations, bootstrap, groups) and
:mod:`~captum_fau.concept.fdr` (Benjamini-Hochberg).

Untestable AUs (no image with, or none without it) and dead filters (constant activations) are
flagged and get neutral, NaN-free values: ``kl = 0``, ``p = q = 1``, ``auroc = 0.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
from scipy.stats import rankdata

from captum_fau._utils.validate import int_at_least, non_negative_int
from captum_fau.concept.fdr import benjamini_hochberg
from captum_fau.concept.kernels import (
    BinnedActivations,
    Binning,
    as_activations,
    as_presence,
    auroc,
    auroc_from_rank_sums,
    bin_codes,
    histogram_edges,
    kl_from_counts,
)
from captum_fau.concept.resampling import (
    bootstrap_kl_interval,
    bootstrap_weights,
    group_codes,
    permutation_notes,
    permutation_null,
    permutation_sources,
)
from captum_fau.errors import ConfigError, StatisticsError

TestStatistic = Literal["auroc", "kl"]

#: Fewest images per bin (on average) accepted before the histograms are called meaningless.
MIN_IMAGES_PER_BIN = 2

#: The value of each statistic on an untestable pair (dead filter or untestable AU).
_NEUTRAL = {"kl": 0.0, "kl_plain": 0.0, "kl_null_mean": 0.0, "kl_corrected": 0.0, "p": 1.0, "p_kl": 1.0,
            "p_auroc": 1.0, "ci": 0.0, "auroc": 0.5}  # fmt: skip


@dataclass
class AssociationStatistics:
    """FAU-KL statistics of ``C`` filters against ``J`` AUs (all arrays ``[C, J]`` unless noted).

    Attributes:
        kl: Smoothed ``D_KL(Q || R)``.
        kl_plain: The paper's unsmoothed estimate (may be ``inf``; 0 where untestable).
        kl_null_mean: Mean smoothed KL under label permutations (0 without permutations).
        kl_corrected: ``kl - kl_null_mean``.
        p: Permutation p-values of the chosen ``test_statistic`` (1 without permutations).
        p_kl: Permutation p-values of the KL statistic.
        p_auroc: Permutation p-values of the two-sided AUROC statistic.
        q: Benjamini-Hochberg q-values of ``p`` over all testable pairs.
        ci: ``[C, J, 2]`` bootstrap percentile interval of ``kl`` (``[kl, kl]`` without bootstrap).
        auroc: AUROC of the max activation, AU present vs absent.
        n_present: ``[J]`` images with each AU.
        testable_aus: ``[J]`` bool, False where an AU has no positive or no negative image.
        dead_filters: ``[C]`` bool, True where a filter's activation is constant.
        bin_edges: ``[C, K + 1]`` shared per-filter bin edges.
        notes: Human-readable remarks (untestable AUs, dead filters, permutation scheme).
        config: The settings that produced the statistics.
    """

    kl: np.ndarray
    kl_plain: np.ndarray
    kl_null_mean: np.ndarray
    kl_corrected: np.ndarray
    p: np.ndarray
    p_kl: np.ndarray
    p_auroc: np.ndarray
    q: np.ndarray
    ci: np.ndarray
    auroc: np.ndarray
    n_present: np.ndarray
    testable_aus: np.ndarray
    dead_filters: np.ndarray
    bin_edges: np.ndarray
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    ARRAY_FIELDS = (
        "kl", "kl_plain", "kl_null_mean", "kl_corrected", "p", "p_kl", "p_auroc", "q", "ci",
        "auroc", "n_present", "testable_aus", "dead_filters", "bin_edges",
    )  # fmt: skip

    @property
    def testable(self) -> np.ndarray:
        """``[C, J]`` bool: the pair has a live filter and a testable AU."""
        return (~self.dead_filters)[:, None] & self.testable_aus[None, :]


def _explicit_edges(bin_edges: Any, n_filters: int) -> np.ndarray:
    edges = np.asarray(bin_edges, dtype=np.float64)
    if edges.ndim != 2 or edges.shape[0] != n_filters or edges.shape[1] < 2:
        raise ConfigError(f"bin_edges must be [n_filters={n_filters}, K + 1 >= 2], got {edges.shape}.")
    return edges


def check_options(bins: int, smoothing: float, n_permutations: int, n_bootstrap: int, ci_level: float,
                  test: str) -> None:  # fmt: skip
    """Raise a :class:`ConfigError` naming the first invalid option (what FAUKL checks on construction)."""
    int_at_least(bins, "bins", 2, hint="a histogram needs at least two bins (the default is 10).")
    _check_options(MIN_IMAGES_PER_BIN * bins, bins, smoothing, n_permutations, n_bootstrap, ci_level, test)


def _check_options(
    n_images: int, bins: int, smoothing: float, n_permutations: int, n_bootstrap: int, ci_level: float, test: str
) -> None:
    int_at_least(bins, "bins", 2, hint="a histogram needs at least two bins (the default is 10).")
    if smoothing < 0 or not math.isfinite(smoothing):
        raise ConfigError(f"smoothing must be a finite number >= 0, got {smoothing!r}.")
    non_negative_int(n_permutations, "n_permutations", hint="0 skips the permutation test.")
    non_negative_int(n_bootstrap, "n_bootstrap", hint="0 skips the bootstrap intervals.")
    if not 0 < ci_level < 1:
        raise ConfigError(f"ci_level must lie in (0, 1), got {ci_level!r}.")
    if test not in ("auroc", "kl"):
        raise ConfigError(f"test_statistic={test!r} is not known; use 'auroc' or 'kl'.")
    if n_images < MIN_IMAGES_PER_BIN * bins:
        raise StatisticsError(
            f"{n_images} images are too few for {bins}-bin histograms (need at least "
            f"{MIN_IMAGES_PER_BIN * bins}); use fewer bins (e.g. bins={max(2, n_images // MIN_IMAGES_PER_BIN // 2)}) "
            "or more images."
        )


def _coverage_notes(n_present: np.ndarray, testable_aus: np.ndarray, dead: np.ndarray) -> list[str]:
    """Remarks on untestable AUs and dead filters, whose scores are set to neutral values."""
    notes = []
    for j in np.flatnonzero(~testable_aus):
        side = "no image with it" if n_present[j] == 0 else "no image without it"
        notes.append(f"AU column {j} is untestable ({side}); its scores are set to kl=0, p=q=1, auroc=0.5.")
    if dead.any():
        notes.append(
            f"{int(dead.sum())} filter(s) have constant activations (dead units: {np.flatnonzero(dead)[:10].tolist()}"
            f"{' ...' if dead.sum() > 10 else ''}); they carry no information about any AU and get kl=0, p=q=1."
        )
    return notes


def fau_kl_statistics(
    activations: np.ndarray,
    presence: np.ndarray,
    *,
    groups: np.ndarray | Sequence[Any] | None = None,
    bootstrap_groups: np.ndarray | Sequence[Any] | None = None,
    bins: int = 10,
    binning: Binning = "uniform",
    bin_edges: np.ndarray | None = None,
    smoothing: float = 0.5,
    n_permutations: int = 1000,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    test_statistic: TestStatistic = "auroc",
    seed: int = 0,
    chunk_size: int | None = None,
    progress: bool = False,
) -> AssociationStatistics:
    """FAU-KL scores, permutation p-values, BH q-values, bootstrap CIs and AUROCs for every pair.

    Args:
        activations (np.ndarray): ``[M, C]`` per-image maximum activation of each filter.
        presence (np.ndarray): ``[M, J]`` AU labels, bool or intensities (``> 0`` = present).
        groups (array-like, optional): ``[M]`` sequence or subject ids. Permutations (and, unless
            ``bootstrap_groups`` is given, the bootstrap) then act on whole groups.
            Default: None (images independent)
        bootstrap_groups (array-like, optional): ``[M]`` ids of the units the bootstrap resamples
            (subjects, so that intervals reflect subject-to-subject variation). Default: ``groups``
        bins (int): Bins per filter histogram. Default: 10
        binning (str): ``"uniform"`` or ``"quantile"`` edges (see :func:`histogram_edges`).
            Default: ``"uniform"``
        bin_edges (np.ndarray, optional): Explicit ``[C, K + 1]`` edges; overrides ``bins`` and
            ``binning``.
        smoothing (float): Additive pseudo-count per bin for ``kl`` (``kl_plain`` never smooths).
            Default: 0.5
        n_permutations (int): Label permutations for p-values and the null-corrected KL
            (0 skips them: ``p = 1``). Default: 1000
        n_bootstrap (int): Bootstrap resamples for ``ci`` (0 skips them). Default: 200
        ci_level (float): Confidence level of ``ci``. Default: 0.95
        test_statistic (str): Statistic whose permutation p-value is ``p`` and feeds ``q``:
            ``"auroc"`` (two-sided ``|AUROC - 0.5|``) or ``"kl"``. Default: ``"auroc"``
        seed (int): Seed of the permutations and the bootstrap. Default: 0
        chunk_size (int, optional): Permutations per matrix product (memory vs speed); chosen
            automatically to keep each product near 32 MB.
        progress (bool): Show a tqdm bar over the permutation chunks. Default: False

    Returns:
        AssociationStatistics: All statistics, ``[C, J]`` arrays.

    Raises:
        StatisticsError: activations are not ``[M, C]`` finite numbers, or there are fewer than
            ``2 * bins`` images.
        LabelError: labels or groups are not aligned with the images.
        ConfigError: an option is out of range.

    Examples::

        >>> rng = np.random.default_rng(0)
        >>> aus = rng.random((200, 3)) < 0.3
        >>> acts = rng.normal(size=(200, 4)); acts[:, 0] += 1.5 * aus[:, 2]
        >>> st = fau_kl_statistics(acts, aus, n_permutations=200, n_bootstrap=0)
        >>> int(st.kl[0].argmax()), bool(st.p[0, 2] < 0.01)
        (2, True)
    """
    acts = as_activations(activations)
    labels = as_presence(presence, len(acts))
    n_images, n_filters = acts.shape
    edges = None if bin_edges is None else _explicit_edges(bin_edges, n_filters)
    bins = bins if edges is None else edges.shape[1] - 1
    _check_options(n_images, bins, smoothing, n_permutations, n_bootstrap, ci_level, test_statistic)
    codes_groups = group_codes(groups, n_images)
    codes_boot = codes_groups if bootstrap_groups is None else group_codes(bootstrap_groups, n_images)
    if edges is None:
        edges = histogram_edges(acts, bins, binning)

    n_present = labels.sum(axis=0).astype(np.int64)
    testable_aus = (n_present > 0) & (n_present < n_images)
    span = acts.max(axis=0) - acts.min(axis=0)
    dead = span <= 1e-12 * np.maximum(1.0, np.abs(acts).max(axis=0))
    notes = _coverage_notes(n_present, testable_aus, dead)

    binned = BinnedActivations(bin_codes(acts, edges), bins)
    label_f = labels.astype(np.float32)
    q_obs = binned.counts(label_f).astype(np.float64)  # [C, K, J]
    r_obs = binned.totals - q_obs
    kl = kl_from_counts(q_obs, r_obs, smoothing, axis=1)
    kl_plain = kl_from_counts(q_obs, r_obs, 0.0, axis=1)
    ranks = rankdata(acts, axis=0).astype(np.float32)
    n_pos = n_present.astype(np.float64)
    auc = auroc_from_rank_sums(ranks.astype(np.float64).T @ label_f.astype(np.float64), n_pos, n_images - n_pos)

    if n_permutations > 0:
        sources = permutation_sources(codes_groups, n_images, n_permutations, seed)
        null = permutation_null(binned, ranks, label_f, kl, auc, sources, smoothing, chunk_size, progress)
        kl_null_mean, p_kl, p_auc = null.kl_mean, null.p_kl, null.p_auroc
        if groups is not None:
            notes.extend(permutation_notes(codes_groups))
    else:
        kl_null_mean, p_kl, p_auc = np.zeros(kl.shape), np.ones(kl.shape), np.ones(kl.shape)
    if n_bootstrap > 0:
        weights = bootstrap_weights(codes_boot, n_images, n_bootstrap, seed + 1)  # [B, M]
        ci = bootstrap_kl_interval(binned, label_f, kl, weights, smoothing, ci_level)
    else:
        ci = np.stack([kl, kl], axis=-1)

    pair_ok = (~dead)[:, None] & testable_aus[None, :]
    p = p_auc if test_statistic == "auroc" else p_kl
    raw = {"kl": kl, "kl_plain": kl_plain, "kl_null_mean": kl_null_mean, "kl_corrected": kl - kl_null_mean, "p": p,
           "p_kl": p_kl, "p_auroc": p_auc, "ci": ci, "auroc": auc}  # fmt: skip
    return AssociationStatistics(
        # untestable pairs get neutral values: no association, p = 1
        **{k: np.where(pair_ok if v.ndim == 2 else pair_ok[..., None], v, _NEUTRAL[k]) for k, v in raw.items()},
        q=benjamini_hochberg(p, mask=pair_ok),
        n_present=n_present,
        testable_aus=testable_aus,
        dead_filters=dead,
        bin_edges=edges,
        notes=notes,
        config={
            "bins": int(bins),
            "binning": binning if bin_edges is None else "explicit",
            "smoothing": float(smoothing),
            "n_permutations": int(n_permutations),
            "n_bootstrap": int(n_bootstrap),
            "ci_level": float(ci_level),
            "test_statistic": test_statistic,
            "seed": int(seed),
            "grouped": groups is not None,
            "bootstrap_grouped": bootstrap_groups is not None or groups is not None,
            "kl_direction": "D_KL(Q || R), Q = images with the AU, R = images without",
        },
    )


__all__ = [
    "AssociationStatistics",
    "Binning",
    "MIN_IMAGES_PER_BIN",
    "TestStatistic",
    "auroc",
    "benjamini_hochberg",
    "bin_codes",
    "bootstrap_weights",
    "fau_kl_statistics",
    "histogram_edges",
    "kl_from_counts",
    "permutation_sources",
]
