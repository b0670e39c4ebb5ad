"""The settings of the FAU-KL statistics and the study design they act on, as two objects.

:class:`StatisticsOptions` is the one home of every statistics setting: the Python API
(:class:`~captum_fau.concept.FAUKL`, :func:`~captum_fau.concept.statistics.fau_kl_statistics`),
``AnalysisConfig`` and the CLI build one and pass it on. :class:`Design` holds the per-image ids
the tests need (permutation units, sequences, interval clusters, strata).

Examples::

    >>> opts = StatisticsOptions(n_permutations=500)
    >>> opts.replace(seed=3).seed, opts.intervals
    (3, True)
    >>> StatisticsOptions.from_keywords(n_bootstrap=0).intervals
    False
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from captum_fau._utils.validate import int_at_least, non_negative_int
from captum_fau.errors import ConfigError

Binning = Literal["uniform", "quantile"]
TestStatistic = Literal["auroc", "kl"]

#: Fewest images per bin (on average) accepted before the histograms are called meaningless.
MIN_IMAGES_PER_BIN = 2


@dataclass(frozen=True)
class StatisticsOptions:
    """Every setting of the FAU-KL statistics.

    Attributes:
        bins (int): Histogram bins per filter (the KL). Default: 10
        binning (str): ``"uniform"`` (the paper's equal-width bins) or ``"quantile"``. Default: ``"uniform"``
        smoothing (float): Additive pseudo-count of the smoothed KL. Default: 0.5
        n_permutations (int): Label permutations every pair gets (0 skips the tests). Default: 1000
        max_permutations (int, optional): Permutations a pair whose p sits near the floor is refined
            to (sequentially, Besag & Clifford 1991: a pair stops once its null has ``10`` exceedances).
            ``None`` chooses ``2 m / alpha`` for ``m`` tested pairs, so that a single pair at the floor
            can still reach ``q < alpha / 2``; ``0`` (or ``n_permutations``) refines nothing.
            Default: None
        intervals (bool): Compute the clustered AUROC intervals. Default: True
        ci_level (float): Interval level. Default: 0.95
        test_statistic (str): ``"auroc"`` (two-sided, the default) or ``"kl"``: whose p feeds ``p``/``q``.
            Default: ``"auroc"``
        alpha (float): FDR level of the "significant" flag and of the attainable-q note. Default: 0.05
        seed (int): Seed of the permutations. Default: 0
        stratify (str, optional): Label whose levels become permutation strata (FAUKL reads it from
            the data). Default: None
        min_arrangements (int): A pair is untested when the labels of its AU admit fewer distinct
            permutations than this (the smallest attainable p would exceed ``1 / min_arrangements``).
            Default: 100
        chunk_size (int, optional): Permutations per matrix product (memory vs speed). Default: automatic
    """

    bins: int = 10
    binning: Binning = "uniform"
    smoothing: float = 0.5
    n_permutations: int = 1000
    max_permutations: int | None = None
    intervals: bool = True
    ci_level: float = 0.95
    test_statistic: TestStatistic = "auroc"
    alpha: float = 0.05
    seed: int = 0
    stratify: str | None = None
    min_arrangements: int = 100
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        int_at_least(self.bins, "bins", 2, hint="a histogram needs at least two bins (the default is 10).")
        if not isinstance(self.smoothing, (int, float)) or self.smoothing < 0 or not math.isfinite(self.smoothing):
            raise ConfigError(f"smoothing must be a finite number >= 0, got {self.smoothing!r}.")
        if self.binning not in ("uniform", "quantile"):
            raise ConfigError(f"binning={self.binning!r} is not known; use 'uniform' or 'quantile'.")
        non_negative_int(self.n_permutations, "n_permutations", hint="0 skips the permutation test.")
        if self.max_permutations is not None:
            non_negative_int(self.max_permutations, "max_permutations", hint="None chooses 2 m / alpha.")
        if not isinstance(self.intervals, (bool, np.bool_)):
            raise ConfigError(f"intervals must be True or False, got {self.intervals!r}.")
        if not 0 < self.ci_level < 1:
            raise ConfigError(f"ci_level must lie in (0, 1), got {self.ci_level!r}.")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must lie in (0, 1), got {self.alpha!r}.")
        if self.test_statistic not in ("auroc", "kl"):
            raise ConfigError(f"test_statistic={self.test_statistic!r} is not known; use 'auroc' or 'kl'.")
        if self.stratify is not None and (not isinstance(self.stratify, str) or not self.stratify):
            raise ConfigError(f"stratify must be a label column name such as 'emotion', got {self.stratify!r}.")
        int_at_least(self.min_arrangements, "min_arrangements", 1, hint="the default is 100.")
        if self.chunk_size is not None:
            int_at_least(self.chunk_size, "chunk_size", 1, hint="None chooses it from the memory use.")

    def replace(self, **changes: Any) -> "StatisticsOptions":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_keywords(cls, base: "StatisticsOptions | None" = None, **keywords: Any) -> "StatisticsOptions":
        """Options from the keywords of earlier releases (``n_bootstrap=0`` means ``intervals=False``).

        Raises:
            ConfigError: a keyword is not a statistics option.
        """
        options = base if base is not None else cls()
        if "n_bootstrap" in keywords:
            n_bootstrap = keywords.pop("n_bootstrap")
            non_negative_int(n_bootstrap, "n_bootstrap", hint="0 skips the AUROC intervals.")
            keywords["intervals"] = bool(n_bootstrap > 0)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise ConfigError(f"{unknown} are not statistics options; the options are {sorted(known)}.")
        return options.replace(**keywords) if keywords else options

    def check_images(self, n_images: int) -> None:
        """Refuse data with fewer than ``MIN_IMAGES_PER_BIN * bins`` images.

        Raises:
            StatisticsError: too few images for the histograms.
        """
        from captum_fau.errors import StatisticsError

        if n_images < MIN_IMAGES_PER_BIN * self.bins:
            raise StatisticsError(
                f"{n_images} images are too few for {self.bins}-bin histograms (need at least "
                f"{MIN_IMAGES_PER_BIN * self.bins}); use fewer bins (e.g. bins="
                f"{max(2, n_images // MIN_IMAGES_PER_BIN // 2)}) or more images."
            )


@dataclass
class Design:
    """Per-image ids of the study design (each ``[M]`` in image order, or None).

    Attributes:
        groups: Permutation units (subjects where known, else sequences). None: images independent.
        sequences: Sequence ids: units are exchanged only with units of the same sorted
            sequence-length signature, and labels land sequence by sequence.
        clusters: Clusters of the AUROC interval (subjects). Default: ``groups``
        strata: Stratum labels of the within-strata tests (e.g. the posed emotion).
        unit: What ``groups`` are (``"subject"``, ``"sequence"``), recorded in the results.
    """

    groups: Any = None
    sequences: Any = None
    clusters: Any = None
    strata: Any = None
    unit: str = "group"

    def subset(self, keep: np.ndarray) -> "Design":
        """The design of the images where ``keep`` is True."""
        cut = lambda ids: None if ids is None else np.asarray(ids)[keep]  # noqa: E731
        return Design(cut(self.groups), cut(self.sequences), cut(self.clusters), cut(self.strata), self.unit)


__all__ = ["Binning", "Design", "MIN_IMAGES_PER_BIN", "StatisticsOptions", "TestStatistic"]
