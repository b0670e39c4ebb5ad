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
  p-values are kept (``p_auroc``, ``p_kl``). Labels are permuted at the unit level when unit
  ids (subjects or sequences) are given: images of one unit keep their label pattern and move
  together, and units are only exchanged with units of the same within-unit structure (sorted
  sequence lengths when sequence ids are known, else image count;
  :class:`~captum_fau.concept.resampling.PermutationScheme`).
* ``kl_z`` -- the null-standardised KL ``(kl - kl_null_mean) / kl_null_sd`` (NaN where the null
  does not vary: labels that cannot move give a constant null whose float SD is rounding noise).
* ``auroc_z`` -- the permutation-standardised AUROC ``(auroc - null mean) / null SD``; the default
  per-filter "top AU" is the AU with the smallest ``p`` of the main test, ties broken by
  ``|auroc_z|`` (:meth:`~captum_fau.concept.result.FAUKLResult.top_au`), so the AU shown, its
  statistic, its q and the significance flag are one test.
* Adaptive permutations (:mod:`~captum_fau.concept.refine`): pairs whose AUROC p sits near the floor
  ``1 / (P + 1)`` get more permutations (up to ``max_permutations``), so that a few AU-selective
  filters among hundreds can clear Benjamini-Hochberg.
* Untested pairs: an AU whose labels admit fewer than ``min_arrangements`` distinct permutations
  (the design leaves too few exchangeable units carrying it) gets ``p = q = NaN`` and a note,
  never a p of 1 as if tested.
* ``q`` -- Benjamini-Hochberg q-values over all testable (filter, AU) pairs of ``p``; ``q_kl`` and
  ``q_auroc`` are those of each test, so the q shown beside a statistic belongs to it.
* ``auroc_ci`` -- a cluster-jackknife interval of the AUROC (delete-one-subject variance, logit
  scale, Student's t with one degree of freedom fewer than the smaller of the cluster groups with
  and without the AU; :func:`~captum_fau.concept.kernels.auroc_interval`). ``clusters_side`` holds
  that count per AU: below 10 the interval is marked approximate. The KL gets no interval: its
  percentile bootstrap did not cover (the plug-in KL is biased by an amount that depends on the sample).
* ``*_within`` -- with ``strata`` (e.g. the posed emotion), the same two tests with permutations
  inside each stratum (the AUROC from ranks within each stratum): association beyond what the
  stratum label explains. They are then the main test: ``p``/``q`` (and so the top AU and the
  significance flag) are those of the within-strata test of ``test_statistic``.
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
flagged and get neutral values: ``kl = 0``, ``p = q = 1``, ``auroc = 0.5``; they get no top AU.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from captum_fau.concept.fdr import benjamini_hochberg
from captum_fau.concept.kernels import (
    MIN_CLUSTERS_EXACT,
    BinnedActivations,
    as_activations,
    as_presence,
    auroc,
    auroc_from_rank_sums,
    auroc_interval,
    bin_codes,
    clusters_per_side,
    histogram_edges,
    informative_clusters,
    kl_from_counts,
)
from captum_fau.concept.options import (
    MIN_IMAGES_PER_BIN,
    Binning,
    Design,
    StatisticsOptions,
    TestStatistic,
)
from captum_fau.concept.refine import RefineLimits, default_max_permutations, refine_auroc
from captum_fau.concept.resampling import (
    PermutationScheme,
    bootstrap_weights,
    group_codes,
    permutation_notes,
    permutation_null,
    permutation_sources,
)
from captum_fau.errors import ConfigError

#: The value of each statistic on an untestable pair (dead filter or untestable AU).
_NEUTRAL = {"kl": 0.0, "kl_plain": 0.0, "kl_null_mean": 0.0, "kl_null_sd": 0.0, "kl_corrected": 0.0,
            "kl_z": np.nan, "p": 1.0, "p_kl": 1.0, "p_auroc": 1.0, "auroc_ci": 0.5, "auroc": 0.5,
            "auroc_se": np.nan, "auroc_z": np.nan, "permutations_used": 0.0}  # fmt: skip


@dataclass
class AssociationStatistics:
    """FAU-KL statistics of ``C`` filters against ``J`` AUs (all arrays ``[C, J]`` unless noted).

    Attributes:
        kl: Smoothed ``D_KL(Q || R)``.
        kl_plain: The paper's unsmoothed estimate (may be ``inf``; 0 where untestable).
        kl_null_mean: Mean smoothed KL under label permutations (0 without permutations).
        kl_corrected: ``kl - kl_null_mean``.
        p: Permutation p-values of the chosen ``test_statistic`` (1 without permutations; NaN untested); with
            ``strata``, those of the within-strata test (``p_auroc_within`` or ``p_kl_within``).
        p_kl: Permutation p-values of the KL statistic.
        p_auroc: Permutation p-values of the two-sided AUROC statistic (adaptively refined near the floor).
        q: Benjamini-Hochberg q-values of ``p`` over all tested pairs (NaN untested).
        auroc_ci: ``[C, J, 2]`` cluster-jackknife interval of ``auroc`` (``[auroc, auroc]`` when
            intervals are skipped).
        auroc: AUROC of the max activation, AU present vs absent.
        kl_null_sd: SD of the smoothed KL under the permutations (0 without permutations).
        kl_z: ``(kl - kl_null_mean) / kl_null_sd``; NaN where untestable or the null does not vary.
        q_kl: BH q-values of ``p_kl``.
        q_auroc: BH q-values of ``p_auroc``.
        auroc_se: Cluster-jackknife standard error of ``auroc``.
        auroc_z: ``(auroc - null mean) / null SD`` under the permutations (NaN without them).
        permutations_used: Permutations behind each pair's ``p_auroc``.
        tested_aus: ``[J]`` bool, False where the design leaves too few label arrangements to test.
        clusters_side: ``[J]`` subjects (clusters) on the smaller side of each AU.
        ci_clusters: ``[C, J]`` subjects on the smaller side whose activations are not all at the filter's
            floor (:func:`~captum_fau.concept.kernels.informative_clusters`); intervals with fewer than 10
            are approximate.
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
    auroc_z: np.ndarray | None = None
    permutations_used: np.ndarray | None = None
    tested_aus: np.ndarray | None = None
    clusters_side: np.ndarray | None = None
    ci_clusters: np.ndarray | None = None
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
    #: Arrays of this release (filled in for results saved by earlier ones) and the stratified ones.
    OPTIONAL_FIELDS = ("auroc_z", "permutations_used", "tested_aus", "clusters_side", "ci_clusters",
                       "p_kl_within", "p_auroc_within", "q_kl_within", "q_auroc_within")  # fmt: skip

    def __post_init__(self) -> None:
        # results saved before the adaptive permutations and the untested flag: fill in what they imply
        if self.tested_aus is None:
            self.tested_aus = np.asarray(self.testable_aus, bool).copy()
        if self.auroc_z is None:
            self.auroc_z = np.full(self.kl.shape, np.nan)
        if self.permutations_used is None:
            self.permutations_used = np.full(self.kl.shape, float(self.config.get("n_permutations", 0)))
        if self.clusters_side is None:
            self.clusters_side = np.asarray(self.n_present, np.int64).copy()
        if self.ci_clusters is None:
            self.ci_clusters = np.broadcast_to(np.asarray(self.clusters_side, np.int64), self.kl.shape).copy()

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
        """``[C, J]`` bool: the pair has a live filter and a testable AU the design let the permutations test
        (an untested pair has ``p = q = NaN``)."""
        return (~self.dead_filters)[:, None] & (self.testable_aus & np.asarray(self.tested_aus, bool))[None, :]

    @property
    def tested(self) -> np.ndarray:
        """``[C, J]`` bool: the same as :attr:`testable`."""
        return self.testable

    @property
    def ci_approximate(self) -> np.ndarray:
        """``[C, J]`` bool: the AUROC interval rests on fewer than 10 informative subjects on one side of the AU."""
        return np.asarray(self.ci_clusters) < MIN_CLUSTERS_EXACT

    @property
    def min_attainable_q(self) -> float:
        """The smallest q a single pair can reach: ``m / (max permutations + 1)``."""
        return float(self.config.get("min_attainable_q", 0.0))


def _explicit_edges(bin_edges: Any, n_filters: int) -> np.ndarray:
    edges = np.asarray(bin_edges, dtype=np.float64)
    if edges.ndim != 2 or edges.shape[0] != n_filters or edges.shape[1] < 2:
        raise ConfigError(f"bin_edges must be [n_filters={n_filters}, K + 1 >= 2], got {edges.shape}.")
    return edges


def check_options(bins: int, smoothing: float, n_permutations: int, n_bootstrap: int, ci_level: float,
                  test: str) -> None:  # fmt: skip
    """Raise a :class:`ConfigError` naming the first invalid option (kept for callers of earlier releases)."""
    StatisticsOptions.from_keywords(bins=bins, smoothing=smoothing, n_permutations=n_permutations,
                                    n_bootstrap=n_bootstrap, ci_level=ci_level, test_statistic=test)  # fmt: skip


def _coverage_notes(n_present: np.ndarray, testable_aus: np.ndarray, dead: np.ndarray) -> list[str]:
    """Remarks on untestable AUs and dead filters, whose scores are set to neutral values."""
    notes = []
    for j in np.flatnonzero(~testable_aus):
        side = "no image with it" if n_present[j] == 0 else "no image without it"
        notes.append(f"AU column {j} is untestable ({side}); its scores are set to kl=0, p=q=1, auroc=0.5.")
    if dead.any():
        notes.append(
            f"{int(dead.sum())} filter(s) have constant activations (dead units: {np.flatnonzero(dead)[:10].tolist()}"
            f"{' ...' if dead.sum() > 10 else ''}); they carry no information about any AU, get kl=0, p=q=1 and no AU."
        )
    return notes


_DESIGN_KEYS = {"groups": "groups", "sequences": "sequences", "bootstrap_groups": "clusters", "strata": "strata"}


def _split_keywords(options: StatisticsOptions | None, design: Design | None,
                    keywords: dict[str, Any]) -> tuple[StatisticsOptions, Design, np.ndarray | None]:  # fmt: skip
    """Options and design from the options objects plus the keywords of earlier releases."""
    design = Design() if design is None else design
    for old, new in _DESIGN_KEYS.items():
        if old in keywords:
            setattr(design, new, keywords.pop(old))
    edges = keywords.pop("bin_edges", None)
    return StatisticsOptions.from_keywords(options, **keywords), design, edges


@dataclass
class _Prepared:
    """What every part of the computation shares: data, binning, ranks, the permutation scheme."""

    acts: np.ndarray
    labels: np.ndarray
    opts: StatisticsOptions
    design: Design
    binned: BinnedActivations
    ranks: np.ndarray
    scheme: PermutationScheme
    edges: np.ndarray
    dead: np.ndarray
    testable_aus: np.ndarray
    notes: list[str]

    @property
    def pair_ok(self) -> np.ndarray:
        """``[C, J]`` live filter and testable AU."""
        return (~self.dead)[:, None] & self.testable_aus[None, :]


def fau_kl_statistics(
    activations: np.ndarray,
    presence: np.ndarray,
    options: StatisticsOptions | None = None,
    design: Design | None = None,
    *,
    progress: bool = False,
    **keywords: Any,
) -> AssociationStatistics:
    """FAU-KL scores, permutation p-values, BH q-values, AUROCs and their clustered intervals for every pair.

    Args:
        activations (np.ndarray): ``[M, C]`` per-image maximum activation of each filter.
        presence (np.ndarray): ``[M, J]`` AU labels, bool or intensities (``> 0`` = present).
        options (StatisticsOptions, optional): The settings (bins, permutations, intervals, ...).
            Default: ``StatisticsOptions()``
        design (Design, optional): Per-image permutation units (subjects, else sequences),
            sequence ids, interval clusters and strata. Default: images independent
        progress (bool): Show a tqdm bar over the permutation chunks. Default: False
        **keywords: The keywords of earlier releases: ``groups``, ``sequences``,
            ``bootstrap_groups``, ``strata`` (the design), ``bin_edges`` (explicit ``[C, K + 1]``
            edges) and any :class:`StatisticsOptions` field (``n_bootstrap=0`` means
            ``intervals=False``).

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
        >>> st = fau_kl_statistics(acts, aus, StatisticsOptions(n_permutations=200, intervals=False))
        >>> int(st.kl[0].argmax()), bool(st.p[0, 2] < 0.01)
        (2, True)
    """
    opts, design, edges = _split_keywords(options, design, dict(keywords))
    prep = _prepare(activations, presence, opts, design, edges)
    observed = _observed(prep)
    tests = _tests(prep, observed, progress)
    if opts.intervals:
        clusters = group_codes(design.clusters if design.clusters is not None else design.groups, len(prep.acts))
        auroc_ci, auroc_se = auroc_interval(prep.acts, prep.labels, clusters, opts.ci_level)
    else:
        auroc_ci, auroc_se = np.stack([observed["auroc"]] * 2, axis=-1), np.full(observed["kl"].shape, np.nan)
    raw = {**observed, **tests.pop("raw"), "auroc_ci": auroc_ci, "auroc_se": auroc_se}
    ok = prep.pair_ok
    neutral = {k: np.where(ok if v.ndim == 2 else ok[..., None], v, _NEUTRAL[k]) for k, v in raw.items()}
    untested = ok & ~tests["tested_aus"][None, :]
    for key in ("p", "p_auroc", "p_kl"):  # too few arrangements: no p, not a p of 1
        neutral[key] = np.where(untested, np.nan, neutral[key])
    family = ok & ~untested
    within = {}
    if design.strata is not None:
        from captum_fau.concept.strata import within_strata

        within = within_strata(prep, observed["kl"], observed["auroc"], family, progress)
        # with strata the within-strata test is the main one: p, q, the top AU and the flag follow it
        neutral["p"] = np.where(family, within[f"p_{opts.test_statistic}_within"], neutral["p"])
    clusters_ids = design.clusters if design.clusters is not None else design.groups
    bh = lambda p: np.where(untested, np.nan, benjamini_hochberg(p, mask=family))  # noqa: E731
    return AssociationStatistics(
        **neutral,
        q=bh(neutral["p"]),
        q_kl=bh(neutral["p_kl"]),
        q_auroc=bh(neutral["p_auroc"]),
        tested_aus=tests["tested_aus"],
        clusters_side=clusters_per_side(prep.labels, group_codes(clusters_ids, len(prep.acts))),
        ci_clusters=informative_clusters(prep.acts, prep.labels, group_codes(clusters_ids, len(prep.acts))),
        **within,
        n_present=prep.labels.sum(axis=0).astype(np.int64),
        testable_aus=prep.testable_aus,
        dead_filters=prep.dead,
        bin_edges=prep.edges,
        notes=prep.notes,
        config=_config(opts, prep, tests, edges is not None),
    )


def _prepare(activations: Any, presence: Any, opts: StatisticsOptions, design: Design,
             edges: np.ndarray | None) -> _Prepared:  # fmt: skip
    """Check the inputs, bin and rank the activations, build the permutation scheme."""
    acts = as_activations(activations)
    labels = as_presence(presence, len(acts))
    n_images, n_filters = acts.shape
    if edges is not None:
        edges = _explicit_edges(edges, n_filters)
        opts = opts.replace(bins=edges.shape[1] - 1)
    opts.check_images(n_images)
    if design.strata is not None:
        _check_strata(design.strata, n_images, opts.n_permutations)
    if edges is None:
        edges = histogram_edges(acts, opts.bins, opts.binning)
    n_present = labels.sum(axis=0)
    testable_aus = (n_present > 0) & (n_present < n_images)
    span = acts.max(axis=0) - acts.min(axis=0)
    dead = span <= 1e-12 * np.maximum(1.0, np.abs(acts).max(axis=0))
    notes = _coverage_notes(n_present, testable_aus, dead)
    if design.groups is None and opts.n_permutations > 0:
        notes.append(NO_GROUPS_NOTE)
    if dead.all():
        warnings.warn(
            "FAU-KL: every filter of this layer has constant activations (an all-dead layer); no association "
            "can be measured. Check the layer name, the input preprocessing, or the weights.",
            UserWarning,
            stacklevel=3,
        )
    scheme = PermutationScheme(design.groups, n_images, design.sequences, labels=labels)
    binned = BinnedActivations(bin_codes(acts, edges), opts.bins)
    ranks = rankdata(acts, axis=0)
    return _Prepared(acts, labels, opts, design, binned, ranks, scheme, edges, dead, testable_aus, notes)


def _observed(prep: _Prepared) -> dict[str, np.ndarray]:
    """The observed KL (smoothed and plain) and AUROC of every pair."""
    q_obs = prep.binned.counts(prep.labels.astype(np.float32)).astype(np.float64)  # [C, K, J]
    r_obs = prep.binned.totals - q_obs
    n_pos = prep.labels.sum(axis=0).astype(np.float64)
    rank_sums = prep.ranks.T @ prep.labels.astype(np.float64)
    return {
        "kl": kl_from_counts(q_obs, r_obs, prep.opts.smoothing, axis=1),
        "kl_plain": kl_from_counts(q_obs, r_obs, 0.0, axis=1),
        "auroc": auroc_from_rank_sums(rank_sums, n_pos, len(prep.labels) - n_pos),
    }


def _tests(prep: _Prepared, observed: dict[str, np.ndarray], progress: bool) -> dict[str, Any]:
    """Permutation tests: the first ``n_permutations`` for every pair, then the refinement near the floor."""
    opts, shape = prep.opts, observed["kl"].shape
    if opts.n_permutations == 0:
        ones, zeros, nan = np.ones(shape), np.zeros(shape), np.full(shape, np.nan)
        raw = {"kl_null_mean": zeros, "kl_null_sd": zeros, "kl_corrected": observed["kl"], "kl_z": nan,
               "p": ones, "p_kl": ones, "p_auroc": ones, "auroc_z": nan, "permutations_used": zeros}  # fmt: skip
        return {"raw": raw, "tested_aus": prep.testable_aus.copy(), "max_permutations": 0, "refined": 0,
                "log10_arrangements": None}  # fmt: skip
    labels_f = prep.labels.astype(np.float32)
    log_arr = prep.scheme.log10_arrangements(prep.labels)
    tested_aus = prep.testable_aus & (log_arr >= math.log10(opts.min_arrangements))
    sources = prep.scheme.sources(opts.n_permutations, opts.seed)
    null = permutation_null(prep.binned, prep.ranks.astype(np.float32), labels_f, (observed["kl"], observed["auroc"]),
                            sources, opts.smoothing, opts.chunk_size, progress)  # fmt: skip
    family = prep.pair_ok & tested_aus[None, :]
    max_perm = opts.max_permutations
    if max_perm is None:
        max_perm = default_max_permutations(int(family.sum()), opts.alpha, opts.n_permutations)
    p_auroc, used = null.p_auroc, np.full(shape, float(opts.n_permutations))
    if max_perm > opts.n_permutations and opts.test_statistic == "auroc":
        p_auroc, used = refine_auroc(prep.scheme, prep.ranks, prep.labels.astype(np.float64), observed["auroc"],
                                     null, family, RefineLimits(max_perm, opts.alpha, opts.seed))  # fmt: skip
    kl_ok = null.kl_sd > 1e-5 * np.maximum(1.0, np.abs(null.kl_mean))  # float32 noise of a constant null is not spread
    n_pos = prep.labels.sum(axis=0)
    auc_ok = null.auroc_sd > 0.25 / np.maximum(1.0, n_pos * (len(prep.labels) - n_pos))[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_z = np.where(kl_ok & family, (observed["kl"] - null.kl_mean) / null.kl_sd, np.nan)
        auroc_z = np.where(auc_ok & family, (observed["auroc"] - null.auroc_mean) / null.auroc_sd, np.nan)
    p = p_auroc if opts.test_statistic == "auroc" else null.p_kl
    raw = {"kl_null_mean": null.kl_mean, "kl_null_sd": null.kl_sd, "kl_corrected": observed["kl"] - null.kl_mean,
           "kl_z": kl_z, "p": p, "p_kl": null.p_kl, "p_auroc": p_auroc, "auroc_z": auroc_z,
           "permutations_used": used}  # fmt: skip
    _test_notes(prep, tested_aus, log_arr, family, max_perm)
    return {"raw": raw, "tested_aus": tested_aus, "max_permutations": int(max_perm),
            "refined": int((used > opts.n_permutations).sum()), "log10_arrangements": log_arr}  # fmt: skip


def _test_notes(prep: _Prepared, tested_aus: np.ndarray, log_arr: np.ndarray, family: np.ndarray,
                max_perm: int) -> None:  # fmt: skip
    """Notes on the permutation unit, untested AUs and the smallest attainable q."""
    if prep.design.groups is not None:
        prep.notes.extend(permutation_notes(prep.scheme, prep.design.unit))
    for j in np.flatnonzero(prep.testable_aus & ~tested_aus):
        prep.notes.append(
            f"AU column {j} is untested: its labels admit only ~10^{log_arr[j]:.1f} distinct arrangements over the "
            f"exchangeable units (fewer than {prep.opts.min_arrangements}), so no p-value below "
            f"{min(1.0, 10 ** -log_arr[j]):.2g} exists; p and q are left empty (NaN), not set to 1."
        )
    m = int(family.sum())
    floor_q = m / (max(max_perm, prep.opts.n_permutations) + 1.0)
    if m and floor_q > prep.opts.alpha:
        prep.notes.append(
            f"WARNING: with at most {max(max_perm, prep.opts.n_permutations)} permutations per pair and {m} tested "
            f"pairs, the smallest attainable q is {floor_q:.3g} > alpha = {prep.opts.alpha}: a single association "
            "cannot be declared significant. Raise max_permutations (--max-permutations) or test fewer pairs."
        )


def _config(opts: StatisticsOptions, prep: _Prepared, tests: dict[str, Any], explicit_edges: bool) -> dict[str, Any]:
    """The settings stored with the statistics, and what the design made of them."""
    m = int((prep.pair_ok & tests["tested_aus"][None, :]).sum())
    max_perm = max(tests["max_permutations"], opts.n_permutations)
    return {
        "bins": int(prep.edges.shape[1] - 1),
        "binning": "explicit" if explicit_edges else opts.binning,
        "smoothing": float(opts.smoothing),
        "n_permutations": int(opts.n_permutations),
        "max_permutations": int(max_perm),
        "refined_pairs": int(tests["refined"]),
        "min_attainable_q": float(m / (max_perm + 1.0)) if m and opts.n_permutations else 1.0,
        "alpha": float(opts.alpha),
        "intervals": bool(opts.intervals),
        "n_bootstrap": int(opts.intervals),  # earlier releases' key: 0 = no intervals
        "ci_level": float(opts.ci_level),
        "ci_statistic": "auroc",
        "ci_method": "cluster jackknife (delete one subject), logit scale, t(K_side - 1)" if opts.intervals else "none",
        "test_statistic": opts.test_statistic,
        "main_test": opts.test_statistic + (" within strata" if prep.design.strata is not None else ""),
        "seed": int(opts.seed),
        "grouped": prep.design.groups is not None,
        "bootstrap_grouped": prep.design.clusters is not None or prep.design.groups is not None,
        "stratified": prep.design.strata is not None,
        "permutation_unit": prep.design.unit if prep.design.groups is not None else "image",
        "permutation_signature": "sorted sequence lengths" if prep.design.sequences is not None else "image count",
        "min_arrangements": int(opts.min_arrangements),
        "untested_aus": np.flatnonzero(prep.testable_aus & ~tests["tested_aus"]).tolist(),
        "n_images": int(len(prep.acts)),
        "kl_direction": "D_KL(Q || R), Q = images with the AU, R = images without",
    }


#: The note of a result whose permutations moved single images (no subject or sequence ids).
NO_GROUPS_NOTE = (
    "WARNING: no subject or sequence ids: labels were permuted image by image. If the images include "
    "several frames of one sequence or several images of one person, they are correlated and the "
    "p-values are too small (type-I error well above alpha); give groups=subject ids."
)


def _check_strata(strata: Any, n_images: int, n_permutations: int) -> None:
    codes = group_codes(strata, n_images)
    if int(codes.max()) + 1 < 2:
        raise ConfigError(
            "stratify: the stratum label has a single level, so a test within strata is the plain test; "
            "drop stratify or choose a label with at least two levels."
        )
    if n_permutations == 0:
        raise ConfigError(
            "stratify needs permutations (n_permutations > 0): the within-strata test is a permutation test."
        )


__all__ = [
    "AssociationStatistics",
    "Binning",
    "Design",
    "MIN_IMAGES_PER_BIN",
    "NO_GROUPS_NOTE",
    "StatisticsOptions",
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
