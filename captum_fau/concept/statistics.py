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
* ``kl_z`` -- the null-standardised KL ``(kl - kl_null_mean) / kl_null_sd``: comparable across
  AUs of any prevalence (the raw KL of a rare AU is larger and noisier), so the default per-filter
  "top AU" ranks by it (:meth:`~captum_fau.concept.result.FAUKLResult.top_au`).
* ``q`` -- Benjamini-Hochberg q-values over all testable (filter, AU) pairs of ``p``; ``q_kl`` and
  ``q_auroc`` are those of each test, so the q shown beside a statistic belongs to it.
* ``auroc_ci`` -- a cluster-robust interval of the AUROC (Obuchowski's clustered DeLong variance,
  subjects as clusters where known, logit scale, Student's t with one degree of freedom fewer than
  the smaller of the cluster groups with and without the AU): it contains its estimate and covers the exact population AUROC at
  the nominal level on planted data with subject structure (``scripts/bench_faukl.py``). The KL gets no interval: its percentile
  bootstrap did not cover (the plug-in KL is biased by an amount that depends on the sample).
* ``*_within`` -- with ``strata`` (e.g. the posed emotion), the same two tests with permutations
  inside each stratum: association beyond what the stratum label explains.
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
    auroc_interval,
    bin_codes,
    histogram_edges,
    kl_from_counts,
)
from captum_fau.concept.resampling import (
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
_NEUTRAL = {"kl": 0.0, "kl_plain": 0.0, "kl_null_mean": 0.0, "kl_null_sd": 0.0, "kl_corrected": 0.0,
            "kl_z": np.nan, "p": 1.0, "p_kl": 1.0, "p_auroc": 1.0, "auroc_ci": 0.5, "auroc": 0.5,
            "auroc_se": np.nan, "p_kl_within": 1.0, "p_auroc_within": 1.0}  # fmt: skip


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
        auroc_ci: ``[C, J, 2]`` cluster-robust interval of ``auroc`` (``[auroc, auroc]`` when
            intervals are skipped).
        auroc: AUROC of the max activation, AU present vs absent.
        kl_null_sd: SD of the smoothed KL under the permutations (0 without permutations).
        kl_z: ``(kl - kl_null_mean) / kl_null_sd``; NaN where untestable or the null does not vary.
        q_kl: BH q-values of ``p_kl``.
        q_auroc: BH q-values of ``p_auroc``.
        auroc_se: Cluster-robust standard error of ``auroc``.
        p_kl_within, p_auroc_within, q_kl_within, q_auroc_within: The tests with permutations
            within strata (``None`` without ``strata``).
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
    auroc_ci: np.ndarray
    auroc: np.ndarray
    n_present: np.ndarray
    testable_aus: np.ndarray
    dead_filters: np.ndarray
    bin_edges: np.ndarray
    kl_null_sd: np.ndarray
    kl_z: np.ndarray
    q_kl: np.ndarray
    q_auroc: np.ndarray
    auroc_se: np.ndarray
    p_kl_within: np.ndarray | None = None
    p_auroc_within: np.ndarray | None = None
    q_kl_within: np.ndarray | None = None
    q_auroc_within: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    ARRAY_FIELDS = (
        "kl", "kl_plain", "kl_null_mean", "kl_corrected", "p", "p_kl", "p_auroc", "q", "auroc_ci",
        "auroc", "n_present", "testable_aus", "dead_filters", "bin_edges", "kl_null_sd", "kl_z",
        "q_kl", "q_auroc", "auroc_se",
    )  # fmt: skip
    #: Arrays present only with strata.
    OPTIONAL_FIELDS = ("p_kl_within", "p_auroc_within", "q_kl_within", "q_auroc_within")

    @property
    def ci(self) -> np.ndarray:
        """``[C, J, 2]`` the interval of the AUROC (:attr:`auroc_ci`); the KL has no interval."""
        return self.auroc_ci

    @property
    def stratified(self) -> bool:
        """Whether the within-strata tests were run."""
        return self.p_kl_within is not None

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
    strata: np.ndarray | Sequence[Any] | None = None,
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
    """FAU-KL scores, permutation p-values, BH q-values, AUROCs and their clustered intervals for every pair.

    Args:
        activations (np.ndarray): ``[M, C]`` per-image maximum activation of each filter.
        presence (np.ndarray): ``[M, J]`` AU labels, bool or intensities (``> 0`` = present).
        groups (array-like, optional): ``[M]`` sequence or subject ids. Permutations (and, unless
            ``bootstrap_groups`` is given, the bootstrap) then act on whole groups.
            Default: None (images independent)
        bootstrap_groups (array-like, optional): ``[M]`` ids of the clusters of the AUROC interval
            (subjects, so that intervals reflect subject-to-subject variation). Default: ``groups``
        strata (array-like, optional): ``[M]`` stratum labels (e.g. the posed emotion). Adds the
            ``*_within`` tests, whose permutations stay inside each stratum (see
            :func:`~captum_fau.concept.resampling.permutation_sources`). Default: None
        bins (int): Bins per filter histogram. Default: 10
        binning (str): ``"uniform"`` or ``"quantile"`` edges (:func:`histogram_edges`). Default: ``"uniform"``
        bin_edges (np.ndarray, optional): Explicit ``[C, K + 1]`` edges; overrides ``bins`` and
            ``binning``.
        smoothing (float): Additive pseudo-count per bin for ``kl`` (``kl_plain`` never smooths).
            Default: 0.5
        n_permutations (int): Label permutations for p-values and the null-corrected KL
            (0 skips them: ``p = 1``). Default: 1000
        n_bootstrap (int): 0 skips the AUROC intervals; any other value computes them (the
            interval is analytic, so the number is not used otherwise). Default: 200
        ci_level (float): Confidence level of ``auroc_ci``. Default: 0.95
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
    strata_codes = None if strata is None else _strata_codes(strata, n_images, n_permutations)
    if edges is None:
        edges = histogram_edges(acts, bins, binning)

    n_present = labels.sum(axis=0).astype(np.int64)
    testable_aus = (n_present > 0) & (n_present < n_images)
    span = acts.max(axis=0) - acts.min(axis=0)
    dead = span <= 1e-12 * np.maximum(1.0, np.abs(acts).max(axis=0))
    notes = _coverage_notes(n_present, testable_aus, dead)
    if groups is None and n_permutations > 0:
        notes.append(NO_GROUPS_NOTE)
    if dead.all():
        import warnings

        warnings.warn(
            "FAU-KL: every filter of this layer has constant activations (an all-dead layer); no association "
            "can be measured. Check the layer name, the input preprocessing, or the weights.",
            UserWarning,
            stacklevel=2,
        )

    binned = BinnedActivations(bin_codes(acts, edges), bins)
    label_f = labels.astype(np.float32)
    q_obs = binned.counts(label_f).astype(np.float64)  # [C, K, J]
    r_obs = binned.totals - q_obs
    kl = kl_from_counts(q_obs, r_obs, smoothing, axis=1)
    kl_plain = kl_from_counts(q_obs, r_obs, 0.0, axis=1)
    ranks = rankdata(acts, axis=0).astype(np.float32)
    n_pos = n_present.astype(np.float64)
    auc = auroc_from_rank_sums(ranks.astype(np.float64).T @ label_f.astype(np.float64), n_pos, n_images - n_pos)

    ones = np.ones(kl.shape)
    if n_permutations > 0:
        sources = permutation_sources(codes_groups, n_images, n_permutations, seed)
        null = permutation_null(binned, ranks, label_f, kl, auc, sources, smoothing, chunk_size, progress)
        kl_null_mean, kl_null_sd, p_kl, p_auc = null.kl_mean, null.kl_sd, null.p_kl, null.p_auroc
        if groups is not None:
            notes.extend(permutation_notes(codes_groups))
    else:
        kl_null_mean, kl_null_sd, p_kl, p_auc = np.zeros(kl.shape), np.zeros(kl.shape), ones, ones
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_z = np.where(kl_null_sd > 1e-9, (kl - kl_null_mean) / kl_null_sd, np.nan)
    if n_bootstrap > 0:
        auroc_ci, auroc_se = auroc_interval(acts, labels, codes_boot, ci_level)
    else:
        auroc_ci, auroc_se = np.stack([auc, auc], axis=-1), np.full(kl.shape, np.nan)

    pair_ok = (~dead)[:, None] & testable_aus[None, :]
    p = p_auc if test_statistic == "auroc" else p_kl
    raw = {"kl": kl, "kl_plain": kl_plain, "kl_null_mean": kl_null_mean, "kl_null_sd": kl_null_sd,
           "kl_corrected": kl - kl_null_mean, "kl_z": kl_z, "p": p, "p_kl": p_kl, "p_auroc": p_auc,
           "auroc_ci": auroc_ci, "auroc": auc, "auroc_se": auroc_se}  # fmt: skip
    within: dict[str, np.ndarray] = {}
    if strata_codes is not None:
        within = _within_strata(binned, ranks, label_f, kl, auc, codes_groups, strata_codes, pair_ok, notes,
                                n_permutations, seed, smoothing, chunk_size, progress)  # fmt: skip
    neutral = {k: np.where(pair_ok if v.ndim == 2 else pair_ok[..., None], v, _NEUTRAL[k]) for k, v in raw.items()}
    # an interval of an untestable pair is the neutral point itself
    return AssociationStatistics(
        # untestable pairs get neutral values: no association, p = 1
        **neutral,
        q=benjamini_hochberg(p, mask=pair_ok),
        q_kl=benjamini_hochberg(p_kl, mask=pair_ok),
        q_auroc=benjamini_hochberg(p_auc, mask=pair_ok),
        **within,
        n_present=n_present,
        testable_aus=testable_aus,
        dead_filters=dead,
        bin_edges=edges,
        notes=notes,
        config=_config(bins, binning if bin_edges is None else "explicit", smoothing, n_permutations, n_bootstrap,
                       ci_level, test_statistic, seed, n_images, groups is not None,
                       bootstrap_groups is not None or groups is not None, strata is not None),
    )


def _config(
    bins: int, binning: str, smoothing: float, n_permutations: int, n_bootstrap: int, ci_level: float,
    test_statistic: str, seed: int, n_images: int, grouped: bool, bootstrap_grouped: bool, stratified: bool,
) -> dict[str, Any]:
    """The settings stored with the statistics."""
    return {
        "bins": int(bins),
        "binning": binning,
        "smoothing": float(smoothing),
        "n_permutations": int(n_permutations),
        "n_bootstrap": int(n_bootstrap),
        "ci_level": float(ci_level),
        "ci_statistic": "auroc",
        "ci_method": "cluster-robust DeLong (Obuchowski 1997), logit scale" if n_bootstrap > 0 else "none",
        "test_statistic": test_statistic,
        "seed": int(seed),
        "grouped": grouped,
        "bootstrap_grouped": bootstrap_grouped,
        "stratified": stratified,
        "n_images": int(n_images),
        "kl_direction": "D_KL(Q || R), Q = images with the AU, R = images without",
    }


#: The note of a result whose permutations moved single images (no subject or sequence ids).
NO_GROUPS_NOTE = (
    "WARNING: no subject or sequence ids: labels were permuted image by image. If the images include "
    "several frames of one sequence or several images of one person, they are correlated and the "
    "p-values are too small (type-I error well above alpha); give groups=subject ids."
)


def _strata_codes(strata: Any, n_images: int, n_permutations: int) -> np.ndarray:
    codes = group_codes(strata, n_images)
    if int(codes.max()) + 1 < 2:
        raise ConfigError(
            "stratify: the stratum label has a single level, so a test within strata is the plain test; "
            "drop stratify or choose a label with at least two levels."
        )
    if n_permutations == 0:
        raise ConfigError("stratify needs permutations (n_permutations > 0): the within-strata test is a permutation test.")
    return codes


def _within_strata(
    binned: BinnedActivations, ranks: np.ndarray, labels: np.ndarray, kl: np.ndarray, auc: np.ndarray,
    groups: np.ndarray, strata: np.ndarray, pair_ok: np.ndarray, notes: list[str], n_permutations: int, seed: int,
    smoothing: float, chunk_size: int | None, progress: bool,
) -> dict[str, np.ndarray]:
    """The KL and AUROC tests with permutations inside each stratum (the ``*_within`` fields)."""
    import warnings

    # an AU that never varies inside any stratum carries no information beyond the strata
    n_strata = int(strata.max()) + 1
    member = np.zeros((len(strata), n_strata), np.float32)
    member[np.arange(len(strata)), strata] = 1.0
    per_stratum = member.T @ labels  # [S, J]
    sizes = member.sum(axis=0)[:, None]
    varies = ((per_stratum > 0) & (per_stratum < sizes)).any(axis=0)
    testable = pair_ok & varies[None, :]
    if not varies.all():
        bad = np.flatnonzero(~varies).tolist()
        message = (
            f"stratify: AU column(s) {bad} never vary inside any stratum (each stratum has the AU in all or "
            "none of its images), so they are untestable beyond the strata: p_within = q_within = 1."
        )
        notes.append(message)
        warnings.warn(message, UserWarning, stacklevel=3)
    sources = permutation_sources(groups, len(strata), n_permutations, seed + 7, strata=strata)
    null = permutation_null(binned, ranks, labels, kl, auc, sources, smoothing, chunk_size, progress)
    notes.append(
        f"Within-strata tests (p_kl_within, p_auroc_within): permutations inside {n_strata} strata; they measure "
        "association beyond what the stratum label explains."
    )
    return {
        "p_kl_within": np.where(testable, null.p_kl, 1.0),
        "p_auroc_within": np.where(testable, null.p_auroc, 1.0),
        "q_kl_within": benjamini_hochberg(null.p_kl, mask=testable),
        "q_auroc_within": benjamini_hochberg(null.p_auroc, mask=testable),
    }


__all__ = [
    "AssociationStatistics",
    "Binning",
    "MIN_IMAGES_PER_BIN",
    "NO_GROUPS_NOTE",
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
