"""Planted FAU-KL data with subject structure: subjects x sequences x frames, AUs clustered by subject.

The calibration benchmark (``scripts/bench_faukl.py``) and the fast tests draw from one
generator, :func:`planted_faces`, so that what the tests pin is what the benchmark measures.

Design (one call):

* ``n_subjects`` subjects, each with ``sequences`` sequences of ``frames`` frames; the first frame of
  a sequence is neutral (no AU), the others share the sequence's AUs (as in CK+).
* AUs cluster by subject: the sequence's AU ``j`` is present with probability
  ``sigmoid(logit(prevalence_j) + clustering * u_sj)``, ``u_sj ~ N(0, 1)`` per subject.
* Activations are correlated within subjects and sequences: a subject effect, a sequence effect and
  frame noise (variances ``subject_var``, ``sequence_var``, the rest up to 1), plus ``d`` on frames
  showing AU ``j`` for the planted (filter, AU) pairs.
* ``emotions > 0``: each sequence poses one emotion (distinct within a subject), the AUs depend on
  the emotion (a prototype per emotion) and every filter responds to the emotion (loading
  ``emotion_effect``), but not to any AU beyond it when ``d = 0``: the confounded null that a
  test within emotion strata must not reject. Neutral frames get the extra label ``emotions``.

Examples::

    >>> data = planted_faces(0, n_subjects=10, n_filters=4)
    >>> data["acts"].shape, data["presence"].shape, len(set(data["subjects"].tolist()))
    ((120, 4), (120, 20), 10)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from captum_fau.errors import ConfigError

#: CK+ sequence counts per AU (of 593 sequences), for realistic prevalences.
CKPLUS_AU_COUNTS = {
    "AU1": 177, "AU2": 117, "AU4": 194, "AU5": 102, "AU6": 123, "AU7": 121, "AU9": 75, "AU10": 21,
    "AU11": 34, "AU12": 131, "AU14": 37, "AU15": 94, "AU16": 24, "AU17": 202, "AU20": 79, "AU23": 60,
    "AU24": 58, "AU25": 324, "AU26": 50, "AU27": 81,
}  # fmt: skip


def ckplus_prevalences() -> np.ndarray:
    """``[20]`` per-sequence AU prevalences of CK+ (columns in :data:`CKPLUS_AU_COUNTS` order)."""
    return np.array(list(CKPLUS_AU_COUNTS.values()), dtype=np.float64) / 593.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class PlantedDesign:
    """The study design of :func:`planted_faces`.

    Attributes:
        n_subjects (int): Subjects. Default: 100
        sequences (int): Sequences per subject. Default: 3
        frames (int): Frames per sequence (the first is neutral). Default: 4
        n_filters (int): Filters. Default: 64
        prevalences (np.ndarray, optional): ``[J]`` per-sequence AU prevalences.
            Default: :func:`ckplus_prevalences`
        d (float): Shift of a planted filter on frames with its AU. Default: 0.0 (null)
        planted (np.ndarray or float): ``[C, J]`` bool planted pairs, or the fraction of pairs to
            plant at random. Default: 0.1
        clustering (float): SD of the per-subject logit propensity of each AU. Default: 1.5
        subject_var (float): Variance of the subject effect on activations. Default: 0.3
        sequence_var (float): Variance of the sequence effect. Default: 0.3
        emotions (int): Posed emotions (0: AUs independent of any emotion). Default: 0
        emotion_effect (float): SD of each filter's response to each emotion. Default: 0.8
    """

    n_subjects: int = 100
    sequences: int = 3
    frames: int = 4
    n_filters: int = 64
    prevalences: np.ndarray | None = None
    d: float = 0.0
    planted: np.ndarray | float = 0.1
    clustering: float = 1.5
    subject_var: float = 0.3
    sequence_var: float = 0.3
    emotions: int = 0
    emotion_effect: float = 0.8


def planted_faces(seed: int, design: PlantedDesign | None = None, **settings: Any) -> dict[str, Any]:
    """Planted activations and AU labels with subject, sequence and frame structure.

    Args:
        seed (int): Random seed.
        design (PlantedDesign, optional): The study design. Default: ``PlantedDesign()``
        **settings: :class:`PlantedDesign` fields as keywords (``n_subjects=60, d=0.8``); they override
            ``design``.

    Returns:
        dict: ``acts`` ``[M, C]``, ``presence`` ``[M, J]`` bool, ``subjects``, ``sequences``,
        ``emotion`` (``[M]`` int, all 0 without emotions) and ``planted`` ``[C, J]``.
    """
    if design is not None and not isinstance(design, PlantedDesign):
        raise ConfigError(f"design must be a PlantedDesign, got {type(design).__name__}.")
    unknown = sorted(set(settings) - set(PlantedDesign.__dataclass_fields__))
    if unknown:
        raise ConfigError(
            f"{unknown} are not PlantedDesign fields; they are {list(PlantedDesign.__dataclass_fields__)}."
        )
    g = replace(design or PlantedDesign(), **settings)
    n_subjects, sequences, frames, n_filters = g.n_subjects, g.sequences, g.frames, g.n_filters
    prevalences, d, planted, clustering = g.prevalences, g.d, g.planted, g.clustering
    subject_var, sequence_var, emotions, emotion_effect = g.subject_var, g.sequence_var, g.emotions, g.emotion_effect
    rng = np.random.default_rng(seed)
    prev = ckplus_prevalences() if prevalences is None else np.asarray(prevalences, dtype=np.float64)
    n_aus = len(prev)
    n_seq = n_subjects * sequences
    seq_subject = np.repeat(np.arange(n_subjects), sequences)
    logit = np.log(prev / (1 - prev))[None, :] + clustering * rng.normal(size=(n_subjects, n_aus))
    seq_emotion = np.zeros(n_seq, dtype=np.int64)
    if emotions > 0:
        if sequences > emotions:
            raise ValueError("planted_faces: a subject poses each emotion at most once (sequences <= emotions).")
        seq_emotion = np.concatenate([rng.permutation(emotions)[:sequences] for _ in range(n_subjects)])
        prototype = np.where(rng.random((emotions, n_aus)) < 0.3, 2.5, -2.5)  # logit shift per emotion
        logit_seq = logit[seq_subject] + prototype[seq_emotion]
    else:
        logit_seq = logit[seq_subject]
    seq_aus = rng.random((n_seq, n_aus)) < _sigmoid(logit_seq)
    image_seq = np.repeat(np.arange(n_seq), frames)
    presence = seq_aus[image_seq]
    neutral = np.zeros(len(image_seq), bool)
    neutral[::frames] = True
    presence[neutral] = False
    frame_var = max(1e-6, 1.0 - subject_var - sequence_var)
    n = len(image_seq)
    acts = (
        np.sqrt(subject_var) * rng.normal(size=(n_subjects, n_filters))[seq_subject[image_seq]]
        + np.sqrt(sequence_var) * rng.normal(size=(n_seq, n_filters))[image_seq]
        + np.sqrt(frame_var) * rng.normal(size=(n, n_filters))
    )
    emotion = seq_emotion[image_seq].copy()
    if emotions > 0:
        loadings = emotion_effect * rng.normal(size=(emotions, n_filters))
        acts = acts + np.where(neutral[:, None], 0.0, loadings[emotion])
        emotion[neutral] = emotions
    if isinstance(planted, np.ndarray):
        truth = np.asarray(planted, dtype=bool)
    else:
        truth = np.zeros((n_filters, n_aus), bool)
        truth.ravel()[rng.choice(truth.size, int(round(float(planted) * truth.size)), replace=False)] = True
    acts = acts + d * (presence.astype(np.float64) @ truth.T.astype(np.float64))
    return {
        "acts": acts.astype(np.float32),
        "presence": presence,
        "subjects": seq_subject[image_seq],
        "sequences": image_seq,
        "emotion": emotion,
        "planted": truth,
    }


def sequence_prevalences(prevalences: np.ndarray | None = None, clustering: float = 1.5) -> np.ndarray:
    """``[J]`` population share of sequences showing each AU under :func:`planted_faces`'s design.

    ``E_u[sigmoid(logit(p_j) + clustering * u)]``, ``u ~ N(0, 1)``, by 80-point Gauss-Hermite
    quadrature (the subject propensity makes it differ from ``p_j``).

    Examples::

        >>> float(sequence_prevalences(np.array([0.5]))[0])
        0.5
    """
    prev = ckplus_prevalences() if prevalences is None else np.asarray(prevalences, dtype=np.float64)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    logit = np.log(prev / (1 - prev))[:, None] + clustering * nodes[None, :]
    return _sigmoid(logit) @ (weights / weights.sum())


def true_auroc(
    planted: np.ndarray,
    d: float,
    *,
    frames: int = 4,
    prevalences: np.ndarray | None = None,
    clustering: float = 1.5,
) -> np.ndarray:
    """``[C, J]`` population AUROC of every (filter, AU) pair of :func:`planted_faces` (no emotions).

    The estimand of the AUROC interval: ``P(a_with > a_without)`` for an image with the AU and one
    without drawn from different subjects of an infinite population. A filter's activation is a
    unit normal plus ``d`` times the number of its planted AUs present; AUs are independent at the
    sequence level and the first frame of a sequence (share ``1 / frames``) shows none. So an image
    with AU ``j`` carries each other planted AU ``k`` with probability ``pi_k`` (the sequence
    prevalence, :func:`sequence_prevalences`), an image without it is neutral with probability
    ``(1/frames) / (1/frames + (1 - 1/frames)(1 - pi_j))`` and otherwise carries AU ``k`` with
    ``pi_k``; the AUROC is the mixture of ``Phi((shift_with - shift_without) / sqrt(2))``. A "null"
    pair is thus not at 0.5 when its filter has a planted AU: images without AU ``j`` include the
    neutral frames, which never show the planted one.

    Args:
        planted (np.ndarray): ``[C, J]`` bool planted pairs.
        d (float): Shift of a planted filter on frames with its AU.
        frames (int): Frames per sequence (the first neutral). Default: 4
        prevalences (np.ndarray, optional): ``[J]`` as in :func:`planted_faces`. Default: CK+'s
        clustering (float): As in :func:`planted_faces`. Default: 1.5

    Returns:
        np.ndarray: ``[C, J]`` float64.

    Examples::

        >>> truth = true_auroc(np.eye(2, 20, dtype=bool), 0.8)
        >>> round(float(truth[0, 0]), 4), round(float(truth[0, 5]), 4)
        (0.7142, 0.5237)
    """
    from scipy.stats import norm

    truth = np.asarray(planted, dtype=bool)
    pi = sequence_prevalences(prevalences, clustering)
    share_neutral = 1.0 / frames
    out = np.empty(truth.shape)
    for c in range(truth.shape[0]):
        for j in range(truth.shape[1]):
            others = np.array([1.0])  # distribution of the number of other planted AUs present
            for k in np.flatnonzero(truth[c]):
                if k != j:
                    others = np.convolve(others, [1.0 - pi[k], pi[k]])
            counts = np.arange(len(others))
            neutral = share_neutral / (share_neutral + (1.0 - share_neutral) * (1.0 - pi[j]))
            shift_with = d * (counts + truth[c, j])
            shift_without = np.r_[0.0, d * counts]
            w_without = np.r_[neutral, (1.0 - neutral) * others]
            gap = (shift_with[:, None] - shift_without[None, :]) / np.sqrt(2.0)
            out[c, j] = float(others @ norm.cdf(gap) @ w_without)
    return out


__all__ = [
    "CKPLUS_AU_COUNTS",
    "PlantedDesign",
    "ckplus_prevalences",
    "planted_faces",
    "sequence_prevalences",
    "true_auroc",
]
