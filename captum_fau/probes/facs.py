"""Does the model use AUs the way FACS says? Important filters' AUs against the EMFACS prototypes.

For each emotion, take its most important filters (from :class:`~captum_fau.probes.importance.
FilterImportance`), look up the AU each filter is tied to (by the causal probe, and by an
association such as FAU-KL), and compare with the emotion's EMFACS prototype AUs. The score of an
emotion is the share of its top filters (those with an AU) whose AU belongs to the prototype; its
baseline is the same share for as many filters drawn at random from the layer's filters with an
AU (a permutation over filters), with a one-sided p.

Examples::

    >>> table = facs_table({"happy": [3, 1, 0, 2]}, {"causal": ["AU12", "AU4", None, "AU6"]}, top_k=2)
    >>> table.rows[0]["hits"], table.rows[0]["score"]
    (1, 0.5)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from captum_fau._utils.io import atomic_write_text
from captum_fau.data.emotions import canonical_emotion
from captum_fau.errors import ConfigError

#: EMFACS prototype AUs per emotion (canonical names); 5B counts as AU5, R12/R14 are unilateral.
EMFACS_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "happy": ("AU6", "AU12"),
    "sadness": ("AU1", "AU4", "AU15"),
    "surprise": ("AU1", "AU2", "AU5", "AU26"),
    "fear": ("AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26"),
    "anger": ("AU4", "AU5", "AU7", "AU23"),
    "disgust": ("AU9", "AU15", "AU16"),
    "contempt": ("R12", "R14"),
}


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two label arrays; ``None`` when chance agreement is 1."""
    a, b = np.asarray(a), np.asarray(b)
    labels = np.union1d(a, b)
    observed = float((a == b).mean())
    expected = float(sum((a == x).mean() * (b == x).mean() for x in labels))
    return None if expected >= 1 else (observed - expected) / (1 - expected)


@dataclass
class FACSTable:
    """Rows ``{emotion, source, prototype, top_filters, aus, hits, n_with_au, score, baseline, p}``."""

    rows: list[dict[str, Any]]
    top_k: int
    meta: dict[str, Any] = field(default_factory=dict)

    def score(self, source: str) -> float | None:
        """Mean score over the emotions of one source (``"causal"``, ``"association"``)."""
        values = [r["score"] for r in self.rows if r["source"] == source and r["score"] is not None]
        return float(np.mean(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        sources = sorted({r["source"] for r in self.rows})
        return {"top_k": self.top_k, "rows": self.rows, "score": {s: self.score(s) for s in sources},
                "score_definition": "share of an emotion's top-k important filters (with an AU) whose AU is in the "
                                    "emotion's EMFACS prototype; baseline: the same share for random filters",
                "prototypes": {k: list(v) for k, v in EMFACS_PROTOTYPES.items()}, **self.meta}  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        import json

        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1, sort_keys=True))


def _row(emotion: str, source: str, order: Sequence[int], aus: Sequence[str | None], top_k: int,
         rng: np.random.Generator, n_permutations: int) -> dict[str, Any]:  # fmt: skip
    proto = set(EMFACS_PROTOTYPES[emotion])
    with_au = [f for f in order if aus[f] is not None]
    top = with_au[:top_k]
    hits = sum(aus[f] in proto for f in top)
    row: dict[str, Any] = {"emotion": emotion, "source": source, "prototype": sorted(proto), "top_filters": top,
                           "aus": [aus[f] for f in top], "hits": hits, "n_with_au": len(top)}  # fmt: skip
    if not top:
        return {**row, "score": None, "baseline": None, "p": None}
    score = hits / len(top)
    pool = np.array([aus[f] in proto for f in range(len(aus)) if aus[f] is not None], dtype=float)
    null = np.array([rng.choice(pool, size=len(top), replace=False).mean() for _ in range(n_permutations)])
    p = float((1 + (null >= score - 1e-12).sum()) / (1 + n_permutations))
    return {**row, "score": score, "baseline": float(null.mean()), "p": p}


def facs_table(
    rankings: Mapping[str, Sequence[int]],
    filter_aus: Mapping[str, Sequence[str | None]],
    *,
    top_k: int = 10,
    n_permutations: int = 1000,
    seed: int = 0,
) -> FACSTable:
    """The FACS table: for each emotion and each AU source, the AUs of the top filters vs the prototype.

    Args:
        rankings (Mapping): Emotion name (any spelling the library knows) -> filter indices, most
            important first (``ImportanceResult.ranking()``).
        filter_aus (Mapping): Source name (``"causal"``, ``"association"``) -> ``[F]`` AU name or
            ``None`` per filter (``AUProbeResult.top_au``, FAU-KL's top AU).
        top_k (int, optional): Filters per emotion. Default: 10
        n_permutations (int, optional): Random filter draws of the baseline. Default: 1000
        seed (int, optional): Seed of the draws. Default: 0

    Returns:
        FACSTable

    Raises:
        ConfigError: an emotion outside the vocabulary, or AU lists of different lengths.
    """
    rng = np.random.default_rng(seed)
    rows = []
    lengths = {len(v) for v in filter_aus.values()}
    if len(lengths) > 1:
        raise ConfigError(f"every filter_aus list needs one entry per filter; got lengths {sorted(lengths)}.")
    skipped = []
    for name, order in rankings.items():
        emotion = canonical_emotion(name)
        if emotion is None:
            raise ConfigError(f"{name!r} is not an emotion the library knows; use names such as happy, anger, sadness.")
        if emotion not in EMFACS_PROTOTYPES:
            skipped.append(emotion)
            continue
        for source, aus in filter_aus.items():
            rows.append(_row(emotion, source, [int(f) for f in order], list(aus), top_k, rng, n_permutations))
    notes = [f"{e} has no EMFACS prototype and is left out." for e in skipped]
    return FACSTable(rows=rows, top_k=top_k, meta={"notes": notes, "n_permutations": n_permutations})


__all__ = ["EMFACS_PROTOTYPES", "FACSTable", "cohen_kappa", "facs_table"]
