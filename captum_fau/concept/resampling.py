"""Resampling for FAU-KL: group-level label permutations (p-values, null KL) and the bootstrap (CIs).

Labels are permuted at the group level when group ids (sequences or subjects) are known: the
images of one group keep their label pattern and move together, and groups are only exchanged
with groups of the same size, so that within-group correlation (frames of one CK+ sequence) does
not make the test anti-conservative. The bootstrap draws groups (or images) with replacement and
weights the images by the draws; bin edges stay fixed.

Both loops run in chunks of resamples; each chunk is one matrix product of the one-hot bin codes
(:class:`~captum_fau.concept.kernels.BinnedActivations`) with a ``[M, chunk * J]`` label matrix,
then one :func:`~captum_fau.concept.kernels.kl_from_counts` call.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from captum_fau.concept.kernels import BinnedActivations, auroc_from_rank_sums, kl_from_counts
from captum_fau.errors import LabelError

#: Target size (elements) of one chunk's count tensor ``[C, K, chunk * J]``.
_CHUNK_ELEMENTS = 8e6


def group_codes(groups: Any, n_images: int) -> np.ndarray:
    """Integer codes ``0..G-1`` for group ids (``None``: every image is its own group).

    Raises:
        LabelError: the ids are not one per image.
    """
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


@dataclass
class ExchangeClass:
    """Units that may trade labels: ``donors[d, i]`` is the image whose labels unit ``d`` gives to slot
    ``i`` of the unit it lands on; image ``images[x]`` is in slot ``slot[x]`` of unit ``receiver[x]``."""

    donors: np.ndarray
    images: np.ndarray
    receiver: np.ndarray
    slot: np.ndarray


class PermutationScheme:
    """Which images' labels may trade places: whole units among units of the same structure.

    A unit is a group (a subject, else a sequence; with ``strata`` a (group, stratum) cell). Units
    are exchangeable only when their within-unit structure matches, so that moved labels never cut
    across a receiver's clusters of near-duplicate frames (which never happens in the observed
    data and makes the null too narrow):

    * with sequence ids and labels constant within each of a unit's sequences, units with the same
      number of sequences trade hierarchically: each of the receiver's sequences (longest first)
      takes the labels of the donor's sequence of the same rank, on all its frames;
    * otherwise units trade only with units of the same sorted sequence-length signature (the same
      image count without sequence ids), frame by frame in canonical order (a neutral first frame
      stays first);
    * and only within one stratum. A unit no other unit matches keeps its labels.

    Args:
        groups (np.ndarray, optional): ``[M]`` unit ids (None: every image is a unit).
        n_images (int): ``M``.
        sequences (np.ndarray, optional): ``[M]`` sequence ids (nested in the units).
        strata (np.ndarray, optional): ``[M]`` stratum labels.
        labels (np.ndarray, optional): ``[M, J]`` labels; decide which units trade hierarchically.

    Examples::

        >>> scheme = PermutationScheme(np.array([0, 0, 1, 1, 2, 2]), 6, sequences=np.array([0, 0, 1, 2, 3, 3]))
        >>> scheme.n_exchangeable  # units 0 and 2 ([2]) trade; unit 1 ([1, 1]) cannot move
        2
    """

    def __init__(self, groups: Any, n_images: int, sequences: Any = None, strata: Any = None,
                 labels: np.ndarray | None = None) -> None:  # fmt: skip
        codes = group_codes(groups, n_images)
        stratum = np.zeros(n_images, np.int64) if strata is None else group_codes(strata, n_images)
        if strata is not None:
            codes = np.unique(np.stack([codes, stratum], axis=1), axis=0, return_inverse=True)[1].ravel()
        seq = codes if sequences is None else group_codes(sequences, n_images)
        seq = np.unique(np.stack([codes, seq], axis=1), axis=0, return_inverse=True)[1].ravel()
        self.n_images = n_images
        self.n_units = int(codes.max()) + 1 if n_images else 0
        keyed: dict[tuple, list[list[np.ndarray]]] = {}
        for unit_stratum, parts in _units(codes, seq, stratum):
            constant = (
                sequences is not None
                and labels is not None
                and all((labels[rows] == labels[rows[0]]).all() for rows in parts)
            )
            key = (
                (unit_stratum, "sequences", len(parts))
                if constant
                else (unit_stratum, "frames", tuple(map(len, parts)))
            )
            keyed.setdefault(key, []).append(parts if constant else [np.array([i]) for i in np.concatenate(parts)])
        self.classes = [_exchange_class(units) for units in keyed.values()]
        self.n_exchangeable = int(sum(len(c.donors) for c in self.classes if len(c.donors) > 1))
        self.n_classes = len(self.classes)
        self.hierarchical = any(key[1] == "sequences" and len(v) > 1 for key, v in keyed.items())

    def shuffles(self, n_permutations: int, rng: np.random.Generator) -> list[np.ndarray]:
        """One ``[P, units]`` donor order per class (row ``p``: which unit gives its labels to each unit)."""
        out = []
        for c in self.classes:
            n = len(c.donors)
            out.append(np.zeros((n_permutations, 1), np.int64) if n == 1
                       else np.argsort(rng.random((n_permutations, n)), axis=1))  # fmt: skip
        return out

    def sources(self, n_permutations: int, seed: int) -> np.ndarray:
        """``[P, M]`` label permutations: row ``p`` says whose labels image ``m`` gets."""
        out = np.empty((n_permutations, self.n_images), dtype=np.int64)
        for c, order in zip(self.classes, self.shuffles(n_permutations, np.random.default_rng(seed))):
            out[:, c.images] = c.donors[order[:, c.receiver], c.slot[None, :]]
        return out

    def log10_arrangements(self, labels: np.ndarray) -> np.ndarray:
        """``[J]`` log10 of the number of distinct label arrangements each AU column admits.

        Within a class, units with the same label pattern are interchangeable, so a class of ``n``
        units with pattern counts ``k_1..k_r`` gives ``n! / prod k_i!`` arrangements. The smallest
        p a permutation test can reach is about one over this number.
        """
        from scipy.special import gammaln

        total = np.zeros(labels.shape[1])
        for c in self.classes:
            if len(c.donors) < 2:
                continue
            for j in range(labels.shape[1]):
                _, counts = np.unique(labels[c.donors, j], axis=0, return_counts=True)
                total[j] += gammaln(len(c.donors) + 1) - gammaln(counts + 1).sum()
        return total / np.log(10)


def _units(codes: np.ndarray, seq: np.ndarray, stratum: np.ndarray) -> Any:
    """Per unit: its stratum and its sequences' image rows, longest first (ties by first image)."""
    n_images = len(codes)
    seq_len = np.bincount(seq)
    seq_first = np.full(len(seq_len), n_images, np.int64)
    np.minimum.at(seq_first, seq, np.arange(n_images))
    order = np.lexsort((np.arange(n_images), seq_first[seq], -seq_len[seq], codes))
    bounds = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1], True])
    for start, stop in zip(bounds[:-1], bounds[1:]):
        rows = order[start:stop]
        cuts = np.flatnonzero(seq[rows][1:] != seq[rows][:-1]) + 1
        yield int(stratum[rows[0]]), np.split(rows, cuts)


def _exchange_class(units: list[list[np.ndarray]]) -> ExchangeClass:
    """The :class:`ExchangeClass` of units given as lists of slots (each slot: its image rows)."""
    donors = np.array([[int(rows[0]) for rows in parts] for parts in units], dtype=np.int64)
    images, receiver, slot = [], [], []
    for r, parts in enumerate(units):
        for i, rows in enumerate(parts):
            images.append(rows)
            receiver.append(np.full(len(rows), r))
            slot.append(np.full(len(rows), i))
    return ExchangeClass(donors, np.concatenate(images), np.concatenate(receiver), np.concatenate(slot))


def permutation_sources(
    groups: np.ndarray | None,
    n_images: int,
    n_permutations: int,
    seed: int = 0,
    strata: np.ndarray | None = None,
    sequences: np.ndarray | None = None,
) -> np.ndarray:
    """Label permutations at the unit level, ``[P, M]`` (see :class:`PermutationScheme`).

    Examples::

        >>> src = permutation_sources(np.array([0, 0, 1, 1, 2]), 5, 3, seed=0)
        >>> src.shape, bool((src[:, 4] == 4).all())  # the only group of size 1 cannot move
        ((3, 5), True)
    """
    return PermutationScheme(groups, n_images, sequences, strata).sources(n_permutations, seed)


def bootstrap_weights(groups: np.ndarray | None, n_images: int, n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """Bootstrap multiplicities ``[B, M]``: groups drawn with replacement, images weighted by the draws."""
    codes = group_codes(groups, n_images)
    n_groups = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_bootstrap, n_groups))
    counts = np.zeros((n_bootstrap, n_groups), dtype=np.float32)
    np.add.at(counts, (np.arange(n_bootstrap)[:, None], draws), 1.0)
    return counts[:, codes]


def permutation_notes(scheme: PermutationScheme, unit: str) -> list[str]:
    """What the permutation scheme did with these units, and when it loses power."""
    how = (
        "whole sequences trade between units with as many sequences (labels are constant within them)"
        if scheme.hierarchical
        else "units trade only with units of the same sequence-length signature"
    )
    notes = [
        f"Permutation unit: {unit} ({scheme.n_units} units in {scheme.n_classes} classes of equal within-unit "
        f"structure; {how}); {scheme.n_exchangeable} units can trade labels."
    ]
    fixed = scheme.n_units - scheme.n_exchangeable
    if scheme.n_units and fixed / scheme.n_units > 0.2:
        notes.append(
            f"{fixed / scheme.n_units:.0%} of {unit} have a structure (image count, sequence lengths) no other unit "
            "shares; their labels cannot move, so the permutation test loses power."
        )
    return notes


def default_chunk(binned: BinnedActivations, n_aus: int) -> int:
    """Resamples per matrix product so that a chunk's counts stay near 32 MB of float32."""
    return max(1, int(_CHUNK_ELEMENTS // max(1, binned.n_filters * binned.n_bins * n_aus)))


@dataclass
class PermutationNull:
    """What the permutations say about each ``[C, J]`` pair.

    Attributes:
        kl_mean: Mean smoothed KL under the permutations.
        kl_sd: Standard deviation of the smoothed KL under the permutations.
        p_kl: ``(1 + #{KL_perm >= KL}) / (1 + P)``.
        p_auroc: The same for the two-sided ``|AUROC - 1/2|``.
        auroc_mean: Mean AUROC under the permutations.
        auroc_sd: Standard deviation of the AUROC under the permutations.
        exceed_auroc: ``#{|AUROC_perm - 1/2| >= |AUROC - 1/2|}`` (what a refinement continues from).
        n_permutations: Permutations behind the counts.
    """

    kl_mean: np.ndarray
    kl_sd: np.ndarray
    p_kl: np.ndarray
    p_auroc: np.ndarray
    auroc_mean: np.ndarray
    auroc_sd: np.ndarray
    exceed_auroc: np.ndarray
    n_permutations: int


def permutation_null(
    binned: BinnedActivations,
    ranks: np.ndarray,
    labels: np.ndarray,
    observed: tuple[np.ndarray, np.ndarray],
    sources: np.ndarray,
    smoothing: float,
    chunk_size: int | None = None,
    progress: bool = False,
) -> PermutationNull:
    """Null distribution of the smoothed KL and the AUROC under the given label permutations.

    Args:
        binned (BinnedActivations): The images' bin codes.
        ranks (np.ndarray): ``[M, C]`` float32 average ranks of the activations.
        labels (np.ndarray): ``[M, J]`` float32 presence (0/1).
        observed (tuple): ``[C, J]`` observed smoothed KL and AUROC.
        sources (np.ndarray): ``[P, M]`` permutations from :func:`permutation_sources`.
        smoothing (float): Pseudo-count of the KL.
        chunk_size (int, optional): Permutations per matrix product. Default: :func:`default_chunk`
        progress (bool): Show a tqdm bar over the chunks. Default: False

    Returns:
        PermutationNull: Null-mean KL and the permutation p-values.
    """
    n_images, n_aus = labels.shape
    kl, auc = observed
    n_permutations = len(sources)
    if chunk_size is None:
        chunk_size = default_chunk(binned, n_aus)
    # A tiny tolerance: the observed and permuted statistics come from different float paths.
    kl_floor = (kl - 1e-5 * np.maximum(1.0, np.abs(kl)))[:, None, :]
    auc_floor = (np.abs(auc - 0.5) - 1e-6)[:, None, :]
    kl_sum = np.zeros(kl.shape)
    kl_sq = np.zeros(kl.shape)
    exceed_kl = np.zeros(kl.shape)
    exceed_auc = np.zeros(kl.shape)
    auc_sum = np.zeros(kl.shape)
    auc_sq = np.zeros(kl.shape)
    chunks: Any = range(0, n_permutations, chunk_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="permutations", unit="chunk")
    for start in chunks:
        width = min(start + chunk_size, n_permutations) - start
        # [M, width, J] -> [M, width*J]: column x = p*J + j
        permuted = labels[sources[start : start + width].T].reshape(n_images, width * n_aus)
        q_perm = binned.counts(permuted)  # [C, K, width*J]
        kl_perm = kl_from_counts(q_perm, binned.totals - q_perm, smoothing, axis=1, dtype=np.float32)
        kl_perm = kl_perm.reshape(binned.n_filters, width, n_aus)
        kl_sum += kl_perm.sum(axis=1, dtype=np.float64)
        kl_sq += np.square(kl_perm, dtype=np.float64).sum(axis=1)
        exceed_kl += (kl_perm >= kl_floor).sum(axis=1)
        rank_sums = (ranks.T @ permuted).reshape(binned.n_filters, width, n_aus)
        # hierarchical permutations move whole sequences: the count of images with the AU may change
        pos_perm = permuted.sum(axis=0, dtype=np.float64).reshape(1, width, n_aus)
        auc_perm = auroc_from_rank_sums(rank_sums, pos_perm, n_images - pos_perm)
        exceed_auc += (~(np.abs(auc_perm - 0.5) < auc_floor)).sum(axis=1)  # an AUROC-less relabelling counts against
        auc_perm = np.where(np.isnan(auc_perm), 0.5, auc_perm)
        auc_sum += auc_perm.sum(axis=1, dtype=np.float64)
        auc_sq += np.square(auc_perm, dtype=np.float64).sum(axis=1)
    return PermutationNull(
        kl_mean=kl_sum / n_permutations,
        kl_sd=_sd(kl_sum, kl_sq, n_permutations),
        p_kl=(1.0 + exceed_kl) / (1.0 + n_permutations),
        p_auroc=(1.0 + exceed_auc) / (1.0 + n_permutations),
        auroc_mean=auc_sum / n_permutations,
        auroc_sd=_sd(auc_sum, auc_sq, n_permutations),
        exceed_auroc=exceed_auc,
        n_permutations=n_permutations,
    )


def _sd(total: np.ndarray, squares: np.ndarray, n: int) -> np.ndarray:
    mean = total / n
    return np.sqrt(np.maximum(squares / n - mean**2, 0.0) * n / max(1, n - 1))


def bootstrap_kl_interval(
    binned: BinnedActivations,
    labels: np.ndarray,
    kl: np.ndarray,
    weights: np.ndarray,
    smoothing: float,
    ci_level: float,
) -> np.ndarray:
    """Percentile bootstrap interval ``[C, J, 2]`` of the smoothed KL, bin edges held fixed.

    Args:
        binned (BinnedActivations): The images' bin codes.
        labels (np.ndarray): ``[M, J]`` float32 presence (0/1).
        kl (np.ndarray): ``[C, J]`` observed smoothed KL; the interval of a pair no resample can
            score (every resample lacks images with, or without, the AU) collapses onto it.
        weights (np.ndarray): ``[B, M]`` multiplicities from :func:`bootstrap_weights`.
        smoothing (float): Pseudo-count of the KL.
        ci_level (float): Confidence level in (0, 1).

    Returns:
        np.ndarray: ``[C, J, 2]`` lower and upper bounds.
    """
    n_images, n_aus = labels.shape
    n_bootstrap = len(weights)
    boot = np.empty((binned.n_filters, n_bootstrap, n_aus), dtype=np.float64)
    chunk = default_chunk(binned, n_aus)
    for start in range(0, n_bootstrap, chunk):
        w = weights[start : start + chunk]  # [b, M]
        width = len(w)
        weighted = (w.T[:, :, None] * labels[:, None, :]).reshape(n_images, width * n_aus)
        q_b = binned.counts(weighted)
        r_b = np.repeat(binned.counts(w.T), n_aus, axis=2) - q_b  # totals [C, K, b] per AU column
        kl_b = kl_from_counts(q_b, r_b, smoothing, axis=1, dtype=np.float32)
        kl_b = kl_b.reshape(binned.n_filters, width, n_aus)
        # A resample without any image with (or without) the AU has no KL.
        n_q = (w @ labels).reshape(-1)  # [b*J]
        n_r = np.repeat(w.sum(axis=1), n_aus) - n_q
        empty = ((n_q == 0) | (n_r == 0)).reshape(width, n_aus)
        boot[:, start : start + width] = np.where(empty[None], np.nan, kl_b)
    alpha = (1.0 - ci_level) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs: handled below
        ci = np.stack([np.nanquantile(boot, alpha, axis=1), np.nanquantile(boot, 1 - alpha, axis=1)], axis=-1)
    return np.where(np.isnan(ci), kl[..., None], ci)


__all__ = [
    "PermutationNull",
    "bootstrap_kl_interval",
    "bootstrap_weights",
    "group_codes",
    "ExchangeClass",
    "PermutationScheme",
    "permutation_notes",
    "permutation_null",
    "permutation_sources",
]
