"""Calibration designs for FAU-KL: planted data with the structure of real AU datasets.

:func:`~captum_fau.concept.simulate.planted_faces` draws one easy design (every subject 3
sequences x 4 frames, Gaussian activations, AUs independent given the subject). The statistics
must hold on data they were not tuned on, so :func:`design_faces` draws any of these designs
(:data:`DESIGNS`), each a variation of one generator:

* ``balanced`` -- 3 sequences x 4 frames per subject, Gaussian activations (today's design).
* ``unbalanced`` -- 1-12 images per subject split at random into 1-3 sequences of near-duplicate
  frames (sequence effect 0.5 of the variance, frame noise 0.2); labels constant within a sequence.
* ``heavy_tailed`` -- ``unbalanced`` with Student-t (3 df) subject and sequence effects, a ReLU
  leaving about 60% exact zeros, 4 dead (constant) filters and 4 nearly dead ones (98% zeros).
* ``correlated`` -- ``unbalanced`` with AU2 mostly with AU1 and AU6 mostly with AU12.
* ``emotion`` -- 7 emotions of unequal frequency; each sequence poses one, the AUs follow the
  emotion and every filter responds to it (the confounded null: only the within-emotion test
  must hold its level).
* ``sparse`` -- ``heavy_tailed`` structure with 96 filters; the planted data have exactly one
  filter per AU (the first 10 filters), true AUROC about 0.70.
* ``few_subjects`` -- 60 subjects; AU ``k`` is carried by only 3, 5, 8, 11, ... subjects.

Every design has 10 AUs at 2-60% prevalence. With ``planted=True`` filter ``k`` (``k < 10``)
responds to AU ``k`` with a shift chosen so that its population AUROC is about 0.70.
:func:`population_auroc` gives the population AUROC of every pair exactly (from the label
probabilities and the activation distribution, as :func:`~captum_fau.concept.simulate.true_auroc`
does): a pair whose AU co-occurs with the planted AU (AU2 beside AU1) is truly associated.
:func:`design_truth` (a 20,000-subject draw) remains for the emotion design, whose marginal AUROC
mixes the emotions.

Examples::

    >>> data = design_faces("unbalanced", 0, n_filters=12)
    >>> data["acts"].shape[1], data["presence"].shape[1], len(np.unique(data["subjects"]))
    (12, 10, 120)
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: AU ids of the designs and their per-sequence prevalences (2-60%).
DESIGN_AUS = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU12", "AU15", "AU17", "AU25", "AU26")
DESIGN_PREVALENCE = np.array([0.30, 0.20, 0.25, 0.15, 0.12, 0.25, 0.10, 0.20, 0.60, 0.03])

#: The designs and their settings (see the module docstring).
DESIGNS: dict[str, dict[str, Any]] = {
    "balanced": dict(layout="balanced", tails="gauss"),
    "unbalanced": dict(layout="unbalanced", tails="gauss"),
    "heavy_tailed": dict(layout="unbalanced", tails="relu_t"),
    "correlated": dict(layout="unbalanced", tails="gauss", correlated=True),
    "emotion": dict(layout="unbalanced", tails="gauss", emotions=7),
    "sparse": dict(layout="unbalanced", tails="relu_t", n_filters=96),
    "few_subjects": dict(layout="unbalanced", tails="gauss", n_subjects=60, few=True),
}

#: Shift of a planted filter (in units of the activation's SD before the ReLU): AUROC about 0.70.
PLANTED_SHIFT = 0.75


def _layout(rng: np.random.Generator, n_subjects: int, balanced: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image subject and sequence ids, and the sequences' subjects."""
    if balanced:
        seq_subject = np.repeat(np.arange(n_subjects), 3)
        return seq_subject.repeat(4), np.arange(3 * n_subjects).repeat(4), seq_subject
    lengths, seq_subject = [], []
    for s in range(n_subjects):
        n_images = int(rng.integers(1, 13))
        n_seq = int(rng.integers(1, min(3, n_images) + 1))
        cuts = np.sort(rng.choice(np.arange(1, n_images), n_seq - 1, replace=False)) if n_seq > 1 else []
        lengths += np.diff(np.r_[0, cuts, n_images]).tolist()
        seq_subject += [s] * n_seq
    seq_subject_arr = np.array(seq_subject)
    sequences = np.repeat(np.arange(len(lengths)), lengths)
    return seq_subject_arr[sequences], sequences, seq_subject_arr


def _sequence_aus(rng: np.random.Generator, seq_subject: np.ndarray, n_subjects: int, cfg: dict[str, Any],
                  seq_emotion: np.ndarray) -> np.ndarray:  # fmt: skip
    """``[S, J]`` AUs of each sequence: clustered by subject, optionally correlated, emotion-driven or rare."""
    n_aus = len(DESIGN_PREVALENCE)
    logit = np.log(DESIGN_PREVALENCE / (1 - DESIGN_PREVALENCE))[None, :] + 1.5 * rng.normal(size=(n_subjects, n_aus))
    logit = logit[seq_subject]
    if cfg.get("emotions"):
        prototype = np.where(np.random.default_rng(1234).random((cfg["emotions"], n_aus)) < 0.3, 2.5, -2.5)
        logit = logit + prototype[seq_emotion]
    aus = rng.random(logit.shape) < 1 / (1 + np.exp(-logit))
    if cfg.get("few"):
        carriers = np.array([3, 5, 8, 11, 15, 25, 40, 11, 8, 5])  # subjects carrying each AU
        for j, k in enumerate(carriers):
            carrying = np.isin(seq_subject, rng.choice(n_subjects, k, replace=False))
            aus[:, j] = carrying & (rng.random(len(seq_subject)) < 0.7)
    if cfg.get("correlated"):
        aus[:, 1] = np.where(aus[:, 0], rng.random(len(aus)) < 0.75, rng.random(len(aus)) < 0.03)  # AU2 with AU1
        aus[:, 3] = np.where(aus[:, 5], rng.random(len(aus)) < 0.7, rng.random(len(aus)) < 0.03)  # AU6 with AU12
    return aus


def _noise(rng: np.random.Generator, tails: str, size: tuple[int, ...]) -> np.ndarray:
    if tails == "gauss":
        return rng.normal(size=size)
    return rng.standard_t(3, size=size) / np.sqrt(3.0)  # unit variance


def design_faces(name: str, seed: int, *, planted: bool = False, n_filters: int | None = None,
                 n_subjects: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Draw one data set of design ``name``.

    Args:
        name (str): One of :data:`DESIGNS`.
        seed (int): Random seed (the design's structure, AUs and activations).
        planted (bool): Filter ``k < 10`` responds to AU ``k`` (AUROC about 0.70). Default: False
        n_filters (int, optional): Filters (default: the design's, else 48).
        n_subjects (int, optional): Subjects (default: the design's, else 120).

    Returns:
        dict: ``acts`` ``[M, C]`` float32, ``presence`` ``[M, 10]`` bool, ``subjects``,
        ``sequences``, ``emotion`` (``[M]`` ints) and ``planted`` ``[C, 10]`` bool.
    """
    cfg = DESIGNS[name]
    rng = np.random.default_rng(seed)
    n_subjects = n_subjects or cfg.get("n_subjects", 120)
    n_filters = n_filters or cfg.get("n_filters", 48)
    subjects, sequences, seq_subject = _layout(rng, n_subjects, cfg["layout"] == "balanced")
    n_seq, n = len(seq_subject), len(subjects)
    seq_emotion = np.zeros(n_seq, np.int64)
    if cfg.get("emotions"):
        weights = np.array([0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05])[: cfg["emotions"]]
        seq_emotion = rng.choice(len(weights), n_seq, p=weights / weights.sum())
    presence = _sequence_aus(rng, seq_subject, n_subjects, cfg, seq_emotion)[sequences]
    if cfg["layout"] == "balanced":  # CK+-like: the first frame of a sequence is neutral
        presence[::4] = False
    tails = cfg["tails"]
    sub_var, seq_var, frame_var = (0.3, 0.3, 0.4) if cfg["layout"] == "balanced" else (0.3, 0.5, 0.2)
    acts = (np.sqrt(sub_var) * _noise(rng, tails, (n_subjects, n_filters))[subjects]
            + np.sqrt(seq_var) * _noise(rng, tails, (n_seq, n_filters))[sequences]
            + np.sqrt(frame_var) * rng.normal(size=(n, n_filters)))  # fmt: skip
    emotion = seq_emotion[sequences]
    if cfg.get("emotions"):
        acts += 0.8 * np.random.default_rng(4321).normal(size=(cfg["emotions"], n_filters))[emotion]
    truth = np.zeros((n_filters, len(DESIGN_AUS)), bool)
    if planted:
        truth[np.arange(len(DESIGN_AUS)), np.arange(len(DESIGN_AUS))] = True
        acts += PLANTED_SHIFT * (presence.astype(np.float64) @ truth.T.astype(np.float64))
    if tails == "relu_t":
        acts = np.maximum(acts - 0.25, 0.0)  # about 60% exact zeros
        acts[:, -4:] = 0.0  # dead filters
        acts[:, -8:-4] *= rng.random((n, 4)) < 0.02  # nearly dead: 98% zeros
    return {"acts": acts.astype(np.float32), "presence": presence, "subjects": subjects, "sequences": sequences,
            "emotion": emotion, "planted": truth}  # fmt: skip


def design_truth(name: str, n_filters: int | None = None, n_subjects: int = 20000, seed: int = 987_654) -> np.ndarray:
    """``[C, 10]`` population AUROC of every pair of the planted design ``name`` (a large draw).

    The ``few_subjects`` design fixes the number of carrying subjects, so its population is drawn
    as 60-subject data sets pooled until ``n_subjects`` subjects.
    """
    from captum_fau.concept.kernels import auroc

    if DESIGNS[name].get("few"):
        draws = [design_faces(name, seed + i, planted=True, n_filters=n_filters) for i in range(n_subjects // 60)]
        acts = np.concatenate([d["acts"] for d in draws])
        presence = np.concatenate([d["presence"] for d in draws])
        return auroc(acts, presence)
    big = design_faces(name, seed, planted=True, n_filters=n_filters, n_subjects=n_subjects)
    return auroc(big["acts"], big["presence"])


def shifted_auroc(name: str, shift: float = PLANTED_SHIFT, active: float = 1.0) -> float:
    """``P(a' > a) + P(a' = a) / 2`` for two independent activations of design ``name``, ``a'`` shifted by ``shift``.

    Gaussian designs: ``Phi(shift / sqrt(2))`` (unit total variance). ReLU designs: the activation is
    ``max(X + s - 0.25, 0)`` with ``X`` the sum of the Student-t subject and sequence effects and the
    normal frame noise, whose density is computed on a fine grid (FFT convolution); ties sit at 0.
    ``active < 1``: each activation is kept with that probability, else 0 (the nearly dead filters).
    """
    from scipy.stats import norm, t

    if DESIGNS[name]["tails"] == "gauss":
        return float(norm.cdf(shift / np.sqrt(2.0)))
    from scipy.signal import fftconvolve

    step = 0.002
    grid = np.arange(-30.0, 30.0 + step / 2, step)
    scale_t = lambda var: t.pdf(grid / np.sqrt(var / 3.0), 3) / np.sqrt(var / 3.0)
    density = fftconvolve(fftconvolve(scale_t(0.3), scale_t(0.5), mode="same") * step,
                          norm.pdf(grid / np.sqrt(0.2)) / np.sqrt(0.2), mode="same") * step  # fmt: skip
    density = np.clip(density, 0.0, None)
    cdf = np.cumsum(density) * step
    density, cdf = density / cdf[-1], cdf / cdf[-1]
    cdf_at = lambda x: np.interp(x, grid, cdf)
    above = grid > 0.25 - shift
    strictly = float(np.sum(density[above] * cdf_at(grid[above] + shift)) * step)
    both = strictly + 0.5 * float(cdf_at(0.25 - shift) * cdf_at(0.25))
    # one of the two zeroed: P(a' > 0) / 2 + 1/2 (shifted one kept) or 1/2 - P(a > 0) / 2 (unshifted one kept)
    one = 0.5 * (cdf_at(0.25) - cdf_at(0.25 - shift))
    return float(0.5 + active**2 * (both - 0.5) + active * (1 - active) * one)


def _conditional_presence(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``[J, J]`` image-level ``P(AU k | AU j)`` and ``P(AU k | no AU j)`` (row ``j``, column ``k``)."""
    from captum_fau.concept.simulate import sequence_prevalences

    cfg = DESIGNS[name]
    pi = sequence_prevalences(DESIGN_PREVALENCE, 1.5)
    n = len(pi)
    if cfg.get("few"):  # carriers drawn per AU independently: marginal prevalences cancel below
        pi = np.full(n, 0.5)
    given, given_not = np.tile(pi, (n, 1)), np.tile(pi, (n, 1))  # independent columns
    if cfg.get("correlated"):
        for lead, follow, p_yes in ((0, 1, 0.75), (5, 3, 0.7)):
            p_lead, p_no = pi[lead], 0.03
            p_follow = p_yes * p_lead + p_no * (1 - p_lead)
            given[lead, follow], given_not[lead, follow] = p_yes, p_no
            given[follow, lead] = p_yes * p_lead / p_follow
            given_not[follow, lead] = (1 - p_yes) * p_lead / (1 - p_follow)
    if cfg["layout"] == "balanced":  # the neutral first frame of a sequence shows no AU
        neutral = 0.25 / (0.25 + 0.75 * (1 - pi))  # share of the images without AU j that are neutral
        given_not = given_not * (1 - neutral)[:, None]
    np.fill_diagonal(given, 1.0)
    np.fill_diagonal(given_not, 0.0)
    return given, given_not


def population_auroc(name: str, n_filters: int | None = None) -> np.ndarray | None:
    """``[C, 10]`` exact population AUROC of every pair of the planted design ``name``; None for ``emotion``.

    Filter ``k < 10`` is shifted by :data:`PLANTED_SHIFT` on images with AU ``k``, so for AU ``j`` its
    AUROC is ``1/2 + (P(AU k | AU j) - P(AU k | no AU j)) (A - 1/2)`` with ``A`` =
    :func:`shifted_auroc` (images of different subjects); other filters sit at exactly 1/2.

    Examples::

        >>> truth = population_auroc("correlated", n_filters=12)
        >>> round(float(truth[0, 0]), 3), bool(truth[0, 1] > 0.6), float(truth[0, 2])
        (0.702, True, 0.5)
    """
    if DESIGNS[name].get("emotions"):
        return None
    n_filters = n_filters or DESIGNS[name].get("n_filters", 48)
    given, given_not = _conditional_presence(name)
    truth = np.full((n_filters, len(DESIGN_AUS)), 0.5)
    planted = min(n_filters, len(DESIGN_AUS))
    effect = np.full(planted, shifted_auroc(name) - 0.5)
    if DESIGNS[name]["tails"] == "relu_t":  # the last 4 filters are dead, the 4 before them nearly dead
        effect[np.arange(planted) >= n_filters - 8] = shifted_auroc(name, active=0.02) - 0.5
        effect[np.arange(planted) >= n_filters - 4] = 0.0
    truth[:planted] = 0.5 + (given - given_not).T[:planted] * effect[:, None]
    return truth


__all__ = [
    "DESIGNS",
    "DESIGN_AUS",
    "DESIGN_PREVALENCE",
    "PLANTED_SHIFT",
    "design_faces",
    "design_truth",
    "population_auroc",
    "shifted_auroc",
]
