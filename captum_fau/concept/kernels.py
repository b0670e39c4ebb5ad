"""The numerical kernels of FAU-KL: shared histogram bins, KL from counts, AUROC from ranks.

Everything here works on whole matrices: histograms of "present" images for any number of
labellings are one matrix product of the one-hot bin codes with a ``[M, X]`` label matrix
(:class:`BinnedActivations`), KL divergences of such counts are one call of
:func:`kl_from_counts`, and AUROCs are rank sums (:func:`auroc_from_rank_sums`). The resampling
loops (:mod:`captum_fau.concept.resampling`) and the observed statistics use the same kernels.

Examples::

    >>> import numpy as np
    >>> kl_from_counts(np.array([8.0, 2.0]), np.array([5.0, 5.0]), smoothing=0.0).round(4)
    np.float64(0.1927)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike
from scipy.special import rel_entr
from scipy.stats import rankdata

from captum_fau.errors import ConfigError, LabelError, StatisticsError

Binning = Literal["uniform", "quantile"]


# --------------------------------------------------------------------------- input checks
def as_activations(activations: Any) -> np.ndarray:
    """``[M, C]`` float64 per-image maxima (a 1-d input is one filter); refuses NaN/inf.

    Raises:
        StatisticsError: the array is not 1- or 2-dimensional, or holds NaN or inf.
    """
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


def as_presence(presence: Any, n_images: int) -> np.ndarray:
    """``[M, J]`` bool AU presence from bools or intensities (``> 0`` = present).

    Raises:
        LabelError: the labels are not ``[n_images, n_aus]`` or contain NaN.
    """
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


# --------------------------------------------------------------------------- histograms
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
    acts = as_activations(activations)
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
    acts = as_activations(activations)
    n_bins = edges.shape[1] - 1
    codes = np.empty(acts.shape, dtype=np.int64)
    for c in range(acts.shape[1]):  # C searchsorted calls over M values: cheap, done once
        codes[:, c] = np.searchsorted(edges[c, 1:-1], acts[:, c], side="right")
    return np.clip(codes, 0, n_bins - 1)


class BinnedActivations:
    """Bin codes of ``M`` images x ``C`` filters, ready to histogram any (weighted) labelling.

    Args:
        codes (np.ndarray): ``[M, C]`` bin indices from :func:`bin_codes`.
        n_bins (int): Bins per filter ``K``.

    Examples::

        >>> binned = BinnedActivations(np.array([[0], [1], [1]]), n_bins=2)
        >>> binned.counts(np.array([[1.0], [1.0], [0.0]]))[0, :, 0].tolist()
        [1.0, 1.0]
    """

    def __init__(self, codes: np.ndarray, n_bins: int) -> None:
        n_images, n_filters = codes.shape
        self.n_filters = n_filters
        self.n_bins = n_bins
        # [M, C * K] float32 one-hot, column c * K + k; float32 halves the memory traffic of the
        # resampling products and is exact for counts below 2**24.
        self.onehot = np.zeros((n_images, n_filters * n_bins), dtype=np.float32)
        cols = codes + (np.arange(n_filters) * n_bins)[None, :]
        self.onehot[np.arange(n_images)[:, None], cols] = 1.0
        #: ``[C, K, 1]`` images per bin.
        self.totals = self.onehot.sum(axis=0).reshape(n_filters, n_bins, 1)

    def counts(self, weights: np.ndarray) -> np.ndarray:
        """``[C, K, X]`` weighted image counts per bin for ``[M, X]`` weight (label) columns."""
        return (self.onehot.T @ weights).reshape(self.n_filters, self.n_bins, -1)


# --------------------------------------------------------------------------- KL
def kl_from_counts(
    present: np.ndarray,
    absent: np.ndarray,
    smoothing: float = 0.5,
    axis: int = -1,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """``D_KL(Q || R)`` of two histograms given as counts along ``axis``.

    ``q_k = (Q_k + a) / (n_Q + K a)``, ``r_k`` alike, and ``sum_k rel_entr(q_k, r_k)``
    (:func:`scipy.special.rel_entr`: bins with ``q = 0`` add nothing, ``q > 0, r = 0`` gives ``inf``).

    Args:
        present (np.ndarray): Counts ``Q`` (images with the AU) per bin.
        absent (np.ndarray): Counts ``R`` (images without) per bin, same shape.
        smoothing (float): Pseudo-count ``a`` added to every bin of both histograms before
            normalising; ``0`` gives the paper's plain estimate. Default: 0.5
        axis (int): The bin axis. Default: -1
        dtype (np.dtype): Working precision; the resampling loops use float32, where the terms
            are O(1) and ``K`` is small. Default: float64

    Returns:
        np.ndarray: KL in nats, with ``axis`` removed; NaN where a histogram is empty.
    """
    present = np.asarray(present, dtype=dtype)
    absent = np.asarray(absent, dtype=dtype)
    pseudo = present.dtype.type(smoothing)
    extra = present.dtype.type(present.shape[axis] * smoothing)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (present + pseudo) / (present.sum(axis=axis, keepdims=True) + extra)
        r = (absent + pseudo) / (absent.sum(axis=axis, keepdims=True) + extra)
        return rel_entr(q, r).sum(axis=axis)


# --------------------------------------------------------------------------- AUROC
def auroc_from_rank_sums(rank_sums: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    """AUROC from the sum of the positives' ranks: the Mann-Whitney U over ``n_pos * n_neg``.

    NaN where there are no positives or no negatives.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auroc(activations: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """AUROC ``[C, J]`` of each filter's max activation for AU present vs absent.

    ``P(a_present > a_absent) + P(a_present == a_absent) / 2``, from average ranks (the
    Mann-Whitney U divided by ``n_present * n_absent``). NaN where an AU has no positive or no
    negative image.

    Examples::

        >>> auroc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([0, 0, 1, 1])).tolist()
        [[1.0]]
    """
    acts = as_activations(activations)
    labels = as_presence(presence, len(acts)).astype(np.float64)
    ranks = rankdata(acts, axis=0).astype(np.float64)
    n_pos = labels.sum(axis=0)
    return auroc_from_rank_sums(ranks.T @ labels, n_pos, len(acts) - n_pos)


def _placements(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``[M, J]`` DeLong placements of one filter: for an image with the AU, the share of images
    without it that it beats (ties 1/2); for an image without, the share of images with it that
    beat it."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    lab = labels[order]
    start = np.r_[True, ordered[1:] != ordered[:-1]]
    first = np.flatnonzero(start)
    tie_id = np.cumsum(start) - 1
    pos_at = np.add.reduceat(lab, first, axis=0)  # [T, J] images with the AU per tied value
    size = np.diff(np.r_[first, len(values)])[:, None]
    neg_at = size - pos_at
    pos_below = np.cumsum(pos_at, axis=0) - pos_at
    neg_below = np.cumsum(neg_at, axis=0) - neg_at
    n_pos = lab.sum(axis=0)
    n_neg = len(values) - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        beats = (neg_below + neg_at / 2) / n_neg
        beaten = (n_pos - pos_below - pos_at / 2) / n_pos
    out = np.empty_like(lab)
    out[order] = np.where(lab > 0, beats[tie_id], beaten[tie_id])
    return out


#: Fewest subjects on each side of an AU (with it, without it) for an interval not marked approximate.
MIN_CLUSTERS_EXACT = 10


def auroc_interval(
    activations: np.ndarray, presence: np.ndarray, clusters: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster-jackknife confidence interval ``[C, J, 2]`` of the AUROC and its standard error ``[C, J]``.

    Leaving out one cluster (a subject) at a time is exact for the AUROC's U statistic: the
    concordant pairs that involve cluster ``k`` are its positives' placements times ``n_neg``, plus
    its negatives' placements times ``n_pos``, minus the pairs inside the cluster (counted twice).
    The delete-one-cluster jackknife variance ``(K - 1) / K sum (A_(-k) - mean)^2`` is a
    small-sample corrected sandwich (it is larger than Obuchowski's clustered DeLong variance where
    a few subjects dominate, e.g. with heavy-tailed subject effects, where the sandwich is biased
    low). The interval is built on the logit scale, ``logit(A) +- t se / (A (1 - A))``, so it stays
    inside (0, 1) and contains ``A``; ``t`` is Student's quantile with ``min(K_with, K_without) - 1``
    degrees of freedom (the clusters that carry each side of the AU). With fewer than
    :data:`MIN_CLUSTERS_EXACT` clusters on a side the interval is approximate (coverage measured
    below nominal by ``scripts/bench_faukl.py``); callers mark it. Where the variance is 0 or
    undefined (a perfect separation, an untestable AU) the interval collapses onto the estimate.

    Args:
        activations (np.ndarray): ``[M, C]`` per-image maxima.
        presence (np.ndarray): ``[M, J]`` AU labels (``> 0`` = present).
        clusters (np.ndarray): ``[M]`` integer cluster codes ``0..K-1`` (subjects).
        level (float): Confidence level. Default: 0.95

    Returns:
        tuple: ``(interval [C, J, 2], standard error [C, J])``.

    Examples::

        >>> rng = np.random.default_rng(0)
        >>> y = rng.random(400) < 0.5
        >>> x = rng.normal(size=400) + y
        >>> ci, se = auroc_interval(x[:, None], y[:, None], np.arange(400))
        >>> bool(ci[0, 0, 0] < auroc(x, y)[0, 0] < ci[0, 0, 1]), round(float(se[0, 0]), 2)
        (True, 0.02)
    """
    from scipy.stats import t as t_dist

    acts = as_activations(activations)
    labels = as_presence(presence, len(acts)).astype(np.float64)
    codes = np.asarray(clusters).ravel()
    n_clusters = int(codes.max()) + 1
    member = np.zeros((len(acts), n_clusters))
    member[np.arange(len(acts)), codes] = 1.0
    m_k = member.T @ labels  # [K, J] images with the AU per cluster
    n_k = member.T @ (1.0 - labels)
    n_pos, n_neg = labels.sum(axis=0), (1.0 - labels).sum(axis=0)
    below = np.concatenate([[0.0], np.cumsum(np.bincount(codes, minlength=n_clusters))[:-1]])[codes]
    theta = np.empty((acts.shape[1], labels.shape[1]))
    var = np.empty_like(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        keep_den = (n_pos[None, :] - m_k) * (n_neg[None, :] - n_k)  # [K, J]
        usable = keep_den > 0
        n_usable = usable.sum(axis=0)
        for c in range(acts.shape[1]):
            place = _placements(acts[:, c], labels)
            v10 = member.T @ (place * labels)  # [K, J]
            v01 = member.T @ (place * (1.0 - labels))
            # concordant pairs inside each cluster: a Mann-Whitney U per cluster, from within-cluster ranks
            key = codes * (len(acts) + 1.0) + rankdata(acts[:, c])
            within_rank = rankdata(key) - below
            within = member.T @ (within_rank[:, None] * labels) - m_k * (m_k + 1) / 2
            total = v10.sum(axis=0) * n_neg  # concordant pairs
            theta[c] = total / (n_pos * n_neg)
            leave_out = (total[None, :] - n_neg * v10 - n_pos * v01 + within) / keep_den
            leave_out = np.where(usable, leave_out, np.nan)
            centre = np.nanmean(leave_out, axis=0)
            var[c] = (n_usable - 1) / n_usable * np.nansum((leave_out - centre) ** 2, axis=0)
        se = np.sqrt(np.maximum(var, 0.0))
        k_side = np.minimum((m_k > 0).sum(axis=0), (n_k > 0).sum(axis=0))
        z = t_dist.ppf(0.5 + level / 2, df=np.maximum(1, k_side - 1))[None, :]
        inner = (theta > 0) & (theta < 1) & np.isfinite(se) & (se > 0)
        safe = np.where(inner, theta, 0.5)
        centre = np.log(safe / (1 - safe))
        half = z * np.where(inner, se, 0.0) / (safe * (1 - safe))
        lo = np.where(inner, 1 / (1 + np.exp(-(centre - half))), theta)
        hi = np.where(inner, 1 / (1 + np.exp(-(centre + half))), theta)
    ci = np.stack([np.minimum(lo, theta), np.maximum(hi, theta)], axis=-1)
    return ci, np.where(np.isfinite(se), se, np.nan)


def clusters_per_side(presence: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """``[J]`` the smaller of the numbers of clusters holding an image with, and one without, each AU."""
    labels = as_presence(presence, len(clusters))
    codes = np.asarray(clusters).ravel()
    member = np.zeros((len(codes), int(codes.max()) + 1 if len(codes) else 0))
    member[np.arange(len(codes)), codes] = 1.0
    with_au = (member.T @ labels) > 0
    without = (member.T @ ~labels) > 0
    return np.minimum(with_au.sum(axis=0), without.sum(axis=0)).astype(np.int64)


def informative_clusters(acts: np.ndarray, presence: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """``[C, J]`` per pair, the smaller of the numbers of clusters with an image with, and one without, the AU
    whose activation is above the filter's floor (its minimum).

    A cluster whose images all sit at the floor (a nearly dead filter: 98% exact zeros) is one tie for the
    AUROC and adds nothing to its variance estimate; an interval resting on a handful of clusters that do
    is marked approximate however many subjects carry the AU.
    """
    labels = as_presence(presence, len(clusters)).astype(np.float32)
    codes = np.asarray(clusters).ravel()
    member = np.zeros((int(codes.max()) + 1 if len(codes) else 0, len(codes)), np.float32)
    member[codes, np.arange(len(codes))] = 1.0
    out = np.empty((acts.shape[1], labels.shape[1]), np.int64)
    for start in range(0, acts.shape[1], 64):
        above = (acts[:, start : start + 64] > acts[:, start : start + 64].min(axis=0)).astype(np.float32)  # [M, c]
        with_au = (member @ (above[:, :, None] * labels[:, None, :]).reshape(len(codes), -1)) > 0  # [G, c * J]
        without = (member @ (above[:, :, None] * (1 - labels)[:, None, :]).reshape(len(codes), -1)) > 0
        counts = np.minimum(with_au.sum(axis=0), without.sum(axis=0)).reshape(above.shape[1], labels.shape[1])
        out[start : start + 64] = counts
    return out


__all__ = [
    "BinnedActivations",
    "informative_clusters",
    "MIN_CLUSTERS_EXACT",
    "auroc_interval",
    "Binning",
    "clusters_per_side",
    "as_activations",
    "as_presence",
    "auroc",
    "auroc_from_rank_sums",
    "bin_codes",
    "histogram_edges",
    "kl_from_counts",
]
