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
product of the activation ranks with the same presence matrix.

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
from captum_fau.errors import ConfigError, LabelError, StatisticsError

Binning = Literal["uniform", "quantile"]
TestStatistic = Literal["auroc", "kl"]

#: Fewest images per bin (on average) accepted before the histograms are called meaningless.
MIN_IMAGES_PER_BIN = 2


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


# --------------------------------------------------------------------------- input checks
def _as_activations(activations: Any) -> np.ndarray:
    acts = np.asarray(activations, dtype=np.float64)
    if acts.ndim == 1:
        acts = acts[:, None]
    if acts.ndim != 2:
        raise StatisticsError(
            f"activations must be [n_images, n_filters] (per-image maxima), got shape {acts.shape}; "
            "reduce feature maps to their spatial maximum first."
        )
    if not np.isfinite(acts).all():
        raise StatisticsError("activations contain NaN or inf; check the model output or drop those images.")
    return acts


def _as_presence(presence: Any, n_images: int) -> np.ndarray:
    labels = np.asarray(presence)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2:
        raise LabelError(f"AU labels must be [n_images, n_aus], got shape {labels.shape}.")
    if len(labels) != n_images:
        raise LabelError(
            f"AU labels have {len(labels)} rows but there are {n_images} images; "
            "labels must be aligned with the images (one row per image, dataset order)."
        )
    if labels.dtype != bool:
        labels = labels.astype(np.float64)
        if np.isnan(labels).any():
            raise LabelError("AU labels contain NaN; mark unknown AUs as 0 (absent) or drop those images.")
        labels = labels > 0
    return labels


def _group_codes(groups: Any, n_images: int) -> np.ndarray:
    """Integer codes ``0..G-1`` for group ids (``None``: every image is its own group)."""
    if groups is None:
        return np.arange(n_images)
    ids = np.asarray(groups)
    if ids.ndim != 1 or len(ids) != n_images:
        raise LabelError(
            f"group ids (subjects/sequences) have shape {ids.shape} but there are {n_images} images; "
            "give one id per image in dataset order."
        )
    _, codes = np.unique(ids.astype(str) if ids.dtype == object else ids, return_inverse=True)
    return codes.ravel()


# --------------------------------------------------------------------------- binning
def histogram_edges(activations: np.ndarray, bins: int = 10, binning: Binning = "uniform") -> np.ndarray:
    """Shared per-filter bin edges ``[C, bins + 1]`` over all images.

    Args:
        activations (np.ndarray): ``[M, C]`` per-image max activations.
        bins (int): Number of bins ``K``. Default: 10
        binning (str): ``"uniform"`` (equal width between the filter's min and max, the paper's
            choice) or ``"quantile"`` (equal counts over all images). Default: ``"uniform"``

    Returns:
        np.ndarray: ``[C, bins + 1]`` float64 edges; the first and last are the min and max.
    """
    acts = _as_activations(activations)
    if binning == "uniform":
        lo, hi = acts.min(axis=0), acts.max(axis=0)
        return lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, bins + 1)[None, :]
    if binning == "quantile":
        return np.quantile(acts, np.linspace(0.0, 1.0, bins + 1), axis=0).T
    raise ConfigError(f"binning={binning!r} is not known; use 'uniform' or 'quantile'.")


def bin_codes(activations: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index ``0..K-1`` of each image for each filter, ``[M, C]`` int64.

    Bins are half-open ``[e_k, e_{k+1})`` except the last, which includes the maximum; values
    outside the edges go to the first or last bin.
    """
    acts = _as_activations(activations)
    n_bins = edges.shape[1] - 1
    codes = np.empty(acts.shape, dtype=np.int64)
    for c in range(acts.shape[1]):  # C searchsorted calls over M values: cheap, done once
        codes[:, c] = np.searchsorted(edges[c, 1:-1], acts[:, c], side="right")
    return np.clip(codes, 0, n_bins - 1)


def _one_hot(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """``[M, C * K]`` float32 one-hot of the bin codes (column ``c * K + k``)."""
    n_images, n_filters = codes.shape
    onehot = np.zeros((n_images, n_filters * n_bins), dtype=np.float32)
    cols = codes + (np.arange(n_filters) * n_bins)[None, :]
    onehot[np.arange(n_images)[:, None], cols] = 1.0
    return onehot


# --------------------------------------------------------------------------- KL
def kl_from_counts(present: np.ndarray, absent: np.ndarray, smoothing: float = 0.5, axis: int = -1) -> np.ndarray:
    """``D_KL(Q || R)`` of two histograms given as counts along ``axis``.

    Args:
        present (np.ndarray): Counts ``Q`` (images with the AU) per bin.
        absent (np.ndarray): Counts ``R`` (images without) per bin, same shape.
        smoothing (float): Pseudo-count ``a`` added to every bin of both histograms before
            normalising. ``0`` gives the plain estimate: bins with ``q = 0`` add nothing and a bin
            with ``q > 0, r = 0`` gives ``inf``. Default: 0.5
        axis (int): The bin axis. Default: -1

    Returns:
        np.ndarray: KL in nats, with ``axis`` removed; NaN where a histogram is empty.
    """
    present = np.asarray(present, dtype=np.float64)
    absent = np.asarray(absent, dtype=np.float64)
    n_bins = present.shape[axis]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (present + smoothing) / (present.sum(axis=axis, keepdims=True) + n_bins * smoothing)
        r = (absent + smoothing) / (absent.sum(axis=axis, keepdims=True) + n_bins * smoothing)
        terms = np.where(q > 0, q * (np.log(q) - np.log(r)), 0.0)
        terms = np.where(np.isnan(q) | np.isnan(r), np.nan, terms)
    return terms.sum(axis=axis)


def _kl_batch(
    q_counts: np.ndarray, r_counts: np.ndarray, n_q: np.ndarray, n_r: np.ndarray, smoothing: float
) -> np.ndarray:
    """Smoothed KL over bins (axis 1) of ``[C, K, X]`` counts with per-column totals ``[X]``.

    float32 is enough here: the terms are O(1) and K is small; it halves the memory traffic on
    the permutation hot path.
    """
    n_bins = q_counts.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (q_counts + np.float32(smoothing)) / (n_q + n_bins * smoothing).astype(np.float32)
        r = (r_counts + np.float32(smoothing)) / (n_r + n_bins * smoothing).astype(np.float32)
        if smoothing > 0:
            terms = q * (np.log(q) - np.log(r))
        else:
            terms = np.where(q > 0, q * (np.log(q) - np.log(r)), 0.0)
    return terms.sum(axis=1)


# --------------------------------------------------------------------------- AUROC
def auroc(activations: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """AUROC ``[C, J]`` of each filter's max activation for AU present vs absent.

    ``P(a_present > a_absent) + P(a_present == a_absent) / 2``, from average ranks (the
    Mann-Whitney U divided by ``n_present * n_absent``). NaN where an AU has no positive or no
    negative image.
    """
    acts = _as_activations(activations)
    labels = _as_presence(presence, len(acts))
    ranks = rankdata(acts, axis=0).astype(np.float64)
    return _auroc_from_ranks(ranks, labels.astype(np.float64))


def _auroc_from_ranks(ranks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    n_images = len(ranks)
    n_pos = labels.sum(axis=0)
    n_neg = n_images - n_pos
    rank_sums = ranks.T @ labels
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


# --------------------------------------------------------------------------- FDR
def benjamini_hochberg(p_values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Benjamini-Hochberg q-values (adjusted p-values) over all entries of ``p_values``.

    Args:
        p_values (np.ndarray): p-values of any shape.
        mask (np.ndarray, optional): Bool, same shape: only these entries form the family;
            the others get ``q = 1``.

    Returns:
        np.ndarray: q-values, same shape; ``q <= alpha`` controls the FDR at ``alpha``
        (independent or positively dependent tests).
    """
    p = np.asarray(p_values, dtype=np.float64)
    family = np.ones(p.shape, bool) if mask is None else np.asarray(mask, bool)
    q = np.ones(p.shape, dtype=np.float64)
    values = p[family]
    m = values.size
    if m == 0:
        return q
    order = np.argsort(values, kind="stable")
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    q[family] = out
    return q


# --------------------------------------------------------------------------- resampling
def permutation_sources(groups: np.ndarray | None, n_images: int, n_permutations: int, seed: int = 0) -> np.ndarray:
    """Label permutations at the group level, ``[P, M]``: row ``p`` says whose labels image ``m`` gets.

    Groups (sequences or subjects) move as wholes: a group receives the label block of another
    group of the same size, in the same within-group order (so a neutral first frame stays
    first). Without groups every image is its own group.
    """
    codes = _group_codes(groups, n_images)
    rng = np.random.default_rng(seed)
    sources = np.empty((n_permutations, n_images), dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for size in np.unique(sizes):
        same = np.flatnonzero(sizes == size)
        # members[g, i]: the i-th image (dataset order) of the g-th group of this size
        members = order[starts[same][:, None] + np.arange(size)[None, :]]
        if len(same) == 1:
            sources[:, members.ravel()] = members.ravel()[None, :]
            continue
        shuffles = np.argsort(rng.random((n_permutations, len(same))), axis=1)
        sources[:, members.ravel()] = members[shuffles].reshape(n_permutations, -1)
    return sources


def bootstrap_weights(groups: np.ndarray | None, n_images: int, n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """Bootstrap multiplicities ``[B, M]``: groups drawn with replacement, images weighted by the draws."""
    codes = _group_codes(groups, n_images)
    n_groups = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_bootstrap, n_groups))
    counts = np.zeros((n_bootstrap, n_groups), dtype=np.float32)
    np.add.at(counts, (np.arange(n_bootstrap)[:, None], draws), 1.0)
    return counts[:, codes]


# --------------------------------------------------------------------------- main entry
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
    acts = _as_activations(activations)
    labels = _as_presence(presence, len(acts))
    n_images, n_filters = acts.shape
    n_aus = labels.shape[1]
    if bin_edges is not None:
        edges = np.asarray(bin_edges, dtype=np.float64)
        if edges.ndim != 2 or edges.shape[0] != n_filters or edges.shape[1] < 2:
            raise ConfigError(f"bin_edges must be [n_filters={n_filters}, K + 1 >= 2], got {edges.shape}.")
        bins = edges.shape[1] - 1
    int_at_least(bins, "bins", 2, hint="a histogram needs at least two bins (the default is 10).")
    if smoothing < 0 or not math.isfinite(smoothing):
        raise ConfigError(f"smoothing must be a finite number >= 0, got {smoothing!r}.")
    non_negative_int(n_permutations, "n_permutations", hint="0 skips the permutation test.")
    non_negative_int(n_bootstrap, "n_bootstrap", hint="0 skips the bootstrap intervals.")
    if not 0 < ci_level < 1:
        raise ConfigError(f"ci_level must lie in (0, 1), got {ci_level!r}.")
    if test_statistic not in ("auroc", "kl"):
        raise ConfigError(f"test_statistic={test_statistic!r} is not known; use 'auroc' or 'kl'.")
    if n_images < MIN_IMAGES_PER_BIN * bins:
        raise StatisticsError(
            f"{n_images} images are too few for {bins}-bin histograms (need at least "
            f"{MIN_IMAGES_PER_BIN * bins}); use fewer bins (e.g. bins={max(2, n_images // MIN_IMAGES_PER_BIN // 2)}) "
            "or more images."
        )
    codes_groups = _group_codes(groups, n_images)
    codes_boot = codes_groups if bootstrap_groups is None else _group_codes(bootstrap_groups, n_images)
    if bin_edges is None:
        edges = histogram_edges(acts, bins, binning)

    notes: list[str] = []
    n_present = labels.sum(axis=0).astype(np.int64)
    testable_aus = (n_present > 0) & (n_present < n_images)
    span = acts.max(axis=0) - acts.min(axis=0)
    dead = span <= 1e-12 * np.maximum(1.0, np.abs(acts).max(axis=0))
    for j in np.flatnonzero(~testable_aus):
        side = "no image with it" if n_present[j] == 0 else "no image without it"
        notes.append(f"AU column {j} is untestable ({side}); its scores are set to kl=0, p=q=1, auroc=0.5.")
    if dead.any():
        notes.append(
            f"{int(dead.sum())} filter(s) have constant activations (dead units: {np.flatnonzero(dead)[:10].tolist()}"
            f"{' ...' if dead.sum() > 10 else ''}); they carry no information about any AU and get kl=0, p=q=1."
        )

    codes = bin_codes(acts, edges)
    onehot = _one_hot(codes, bins)  # [M, C*K]
    label_f = labels.astype(np.float32)
    bin_totals = onehot.sum(axis=0).reshape(n_filters, bins, 1)  # [C, K, 1]

    def present_counts(label_matrix: np.ndarray) -> np.ndarray:
        """``[C, K, X]`` counts of 'present' images per bin for ``[M, X]`` label columns."""
        return (onehot.T @ label_matrix).reshape(n_filters, bins, -1)

    q_obs = present_counts(label_f).astype(np.float64)  # [C, K, J]
    r_obs = bin_totals - q_obs
    kl = kl_from_counts(q_obs, r_obs, smoothing, axis=1)
    kl_plain = kl_from_counts(q_obs, r_obs, 0.0, axis=1)

    ranks = rankdata(acts, axis=0).astype(np.float32)
    auc = _auroc_from_ranks(ranks.astype(np.float64), label_f.astype(np.float64))
    auc_dev = np.abs(auc - 0.5)

    kl_null_sum = np.zeros((n_filters, n_aus))
    exceed_kl = np.zeros((n_filters, n_aus))
    exceed_auc = np.zeros((n_filters, n_aus))
    if n_permutations > 0:
        sources = permutation_sources(codes_groups, n_images, n_permutations, seed)
        n_pos = n_present.astype(np.float32)
        n_neg = (n_images - n_present).astype(np.float32)
        if chunk_size is None:
            chunk_size = max(1, int(8e6 // max(1, n_filters * bins * n_aus)))
        # A tiny tolerance: the observed and permuted statistics come from different float paths.
        kl_tol = 1e-5 * np.maximum(1.0, np.abs(kl))
        chunks = range(0, n_permutations, chunk_size)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="permutations", unit="chunk")
        for start in chunks:
            stop = min(start + chunk_size, n_permutations)
            width = stop - start
            # [M, width, J] -> [M, width*J]: column x = p*J + j
            permuted = label_f[sources[start:stop].T].reshape(n_images, width * n_aus)
            q_perm = present_counts(permuted)  # [C, K, width*J]
            kl_perm = _kl_batch(
                q_perm, bin_totals - q_perm, np.tile(n_pos, width), np.tile(n_neg, width), smoothing
            ).reshape(n_filters, width, n_aus)
            kl_null_sum += kl_perm.sum(axis=1)
            exceed_kl += (kl_perm >= (kl - kl_tol)[:, None, :]).sum(axis=1)
            rank_sums = (ranks.T @ permuted).reshape(n_filters, width, n_aus)
            with np.errstate(divide="ignore", invalid="ignore"):
                auc_perm = (rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
            exceed_auc += (np.abs(auc_perm - 0.5) >= (auc_dev - 1e-6)[:, None, :]).sum(axis=1)
        kl_null_mean = kl_null_sum / n_permutations
        p_kl = (1.0 + exceed_kl) / (1.0 + n_permutations)
        p_auc = (1.0 + exceed_auc) / (1.0 + n_permutations)
        n_groups = int(codes_groups.max()) + 1
        if groups is not None:
            notes.append(
                f"Permutations exchange whole groups ({n_groups} groups) among groups of equal size."
            )
            group_sizes = np.bincount(codes_groups)
            groups_per_size = np.bincount(group_sizes)
            singletons = groups_per_size[group_sizes[codes_groups]] == 1
            if singletons.mean() > 0.2:
                notes.append(
                    f"{singletons.mean():.0%} of images belong to groups whose size no other group shares; "
                    "their labels cannot move, so the permutation test loses power. Use sequence ids, "
                    "or groups of equal size, where possible."
                )
    else:
        kl_null_mean = np.zeros((n_filters, n_aus))
        p_kl = np.ones((n_filters, n_aus))
        p_auc = np.ones((n_filters, n_aus))

    alpha = (1.0 - ci_level) / 2
    if n_bootstrap > 0:
        weights = bootstrap_weights(codes_boot, n_images, n_bootstrap, seed + 1)  # [B, M]
        boot = np.empty((n_filters, n_bootstrap, n_aus), dtype=np.float64)
        b_chunk = max(1, int(8e6 // max(1, n_filters * bins * n_aus)))
        for start in range(0, n_bootstrap, b_chunk):
            w = weights[start : start + b_chunk]  # [b, M]
            width = len(w)
            weighted = (w.T[:, :, None] * label_f[:, None, :]).reshape(n_images, width * n_aus)
            q_b = present_counts(weighted)
            tot_b = (onehot.T @ w.T).reshape(n_filters, bins, width)  # [C, K, b]
            r_b = np.repeat(tot_b, n_aus, axis=2) - q_b
            n_q = (w @ label_f).reshape(-1)  # [b*J]
            n_r = np.repeat(w.sum(axis=1), n_aus) - n_q
            kl_b = _kl_batch(q_b, r_b, n_q, n_r, smoothing).reshape(n_filters, width, n_aus)
            # A resample without any image with (or without) the AU has no KL.
            empty = ((n_q == 0) | (n_r == 0)).reshape(width, n_aus)
            kl_b = np.where(empty[None], np.nan, kl_b)
            boot[:, start : start + width] = kl_b
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ci = np.stack(
                    [np.nanquantile(boot, alpha, axis=1), np.nanquantile(boot, 1 - alpha, axis=1)], axis=-1
                )
        ci = np.where(np.isnan(ci), kl[..., None], ci)
    else:
        ci = np.stack([kl, kl], axis=-1)

    pair_ok = (~dead)[:, None] & testable_aus[None, :]
    p = p_auc if test_statistic == "auroc" else p_kl
    q = benjamini_hochberg(p, mask=pair_ok)

    def neutral(values: np.ndarray, fill: float) -> np.ndarray:
        mask = pair_ok if values.ndim == 2 else pair_ok[..., None]
        return np.where(mask, values, fill)

    return AssociationStatistics(
        kl=neutral(kl, 0.0),
        kl_plain=neutral(kl_plain, 0.0),
        kl_null_mean=neutral(kl_null_mean, 0.0),
        kl_corrected=neutral(kl - kl_null_mean, 0.0),
        p=neutral(p, 1.0),
        p_kl=neutral(p_kl, 1.0),
        p_auroc=neutral(p_auc, 1.0),
        q=q,
        ci=neutral(ci, 0.0),
        auroc=neutral(auc, 0.5),
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
    "MIN_IMAGES_PER_BIN",
    "auroc",
    "benjamini_hochberg",
    "bin_codes",
    "bootstrap_weights",
    "fau_kl_statistics",
    "histogram_edges",
    "kl_from_counts",
    "permutation_sources",
]
