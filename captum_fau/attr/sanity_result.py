"""The result of the model-randomisation sanity check and how its numbers are read.

:class:`SanityCheckResult` holds the SSIM and Spearman similarity of every checked reconstruction
after each randomisation step, and the baseline: the SSIM between two different trained filters'
reconstructions at the same image and unit. :func:`interpret` words the cascade relative to that
baseline (see :mod:`captum_fau.attr.sanity`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from captum_fau._utils.io import atomic_write_text
from captum_fau.errors import OutputError


@dataclass
class SanityCheckResult:
    """Similarity of top-N reconstructions with randomised weights to the trained model's.

    Attributes:
        layer (str): The analysed layer.
        rule (str): The back-projection rule.
        seed (int): Seed of the random weights (and of the filter sample).
        layers (list of str): The weighted layers feeding the analysed one, bottom to top.
        steps (list of dict): One per randomisation: ``mode`` (``"cascade"`` or
            ``"independent"``) and ``randomised`` (the layers with random weights).
        filters (np.ndarray): ``[F]`` the filters checked.
        ssim (np.ndarray): ``[S, F, N]`` SSIM per step, filter and top-N rank (NaN for dead units).
        spearman (np.ndarray): ``[S, F, N]`` Spearman correlation of ``|reconstruction|``.
        interpretation (str): One sentence per cascade stage saying what the numbers mean.
        meta (dict): ``n``, ``pairs``, ``randomisation``, ``selection`` (how the filters were chosen:
            ``rule``, ``featured``, ``sampled``, ``filters_in_layer``, ``live_filters``), ``seconds``.
        images (np.ndarray, optional): ``[F, N]`` dataset index of each checked image.
        above (list of str): Weighted layers after the analysed one, never randomised (they cannot
            change the reconstruction of its units).
        reconstructions (Tensor, optional): ``[S, F, N, C, h, w]`` the randomised reconstructions on the
            receptive-field windows (only with ``keep_reconstructions=True``; not saved).
        baseline_ssim (np.ndarray, optional): ``[F, N]`` SSIM between the trained reconstruction and the
            trained reconstruction of a *different* checked filter at the same image and unit position:
            how alike two filters' pictures are anyway. The verdict reads the randomised SSIM against it.
    """

    layer: str
    rule: str
    seed: int
    layers: list[str]
    steps: list[dict[str, Any]]
    filters: np.ndarray
    ssim: np.ndarray
    spearman: np.ndarray
    interpretation: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    images: np.ndarray | None = None
    above: list[str] = field(default_factory=list)
    reconstructions: torch.Tensor | None = None
    baseline_ssim: np.ndarray | None = None

    @property
    def reading(self) -> str:
        """The cut-offs the interpretation reads SSIM with (:data:`READING`)."""
        return READING

    def per_filter(self, measure: str = "ssim") -> np.ndarray:
        """``[S, F]`` each filter's mean over its checked images (NaN for a dead filter)."""
        values = {"ssim": self.ssim, "spearman": self.spearman}[measure]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (dead filters)
            return np.nanmean(values, axis=2)

    def summary(self) -> list[dict[str, Any]]:
        """One row per step: mode, layers, the median/mean over all checked pairs, and the median and
        quartiles over filters of each filter's mean (``*_filter_median``, ``*_filter_q1``, ``*_filter_q3``)."""
        rows = []
        per = {m: self.per_filter(m) for m in ("ssim", "spearman")}
        for s, step in enumerate(self.steps):
            row: dict[str, Any] = {"mode": step["mode"], "randomised": list(step["randomised"])}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                for m, values in (("ssim", self.ssim[s]), ("spearman", self.spearman[s])):
                    row[f"{m}_median"], row[f"{m}_mean"] = _num(np.nanmedian(values)), _num(np.nanmean(values))
                    q1, med, q3 = (
                        np.nanpercentile(per[m][s], [25, 50, 75]) if np.isfinite(per[m][s]).any() else [np.nan] * 3
                    )
                    row[f"{m}_filter_median"], row[f"{m}_filter_q1"], row[f"{m}_filter_q3"] = (
                        _num(med),
                        _num(q1),
                        _num(q3),
                    )
            row["pairs"] = int(np.isfinite(self.ssim[s]).sum())
            row["filters"] = int(np.isfinite(per["ssim"][s]).sum())
            rows.append(row)
        if self.baseline_ssim is not None and np.isfinite(self.baseline_ssim).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                per_filter = np.nanmean(self.baseline_ssim, axis=1)
                q1, med, q3 = np.nanpercentile(per_filter, [25, 50, 75])
                rows.append(
                    {
                        "mode": "baseline",
                        "randomised": [],
                        "ssim_median": _num(np.nanmedian(self.baseline_ssim)),
                        "ssim_mean": _num(np.nanmean(self.baseline_ssim)),
                        "ssim_filter_median": _num(med),
                        "ssim_filter_q1": _num(q1),
                        "ssim_filter_q3": _num(q3),
                        "pairs": int(np.isfinite(self.baseline_ssim).sum()),
                        "filters": int(np.isfinite(per_filter).sum()),
                        "spearman_median": None,
                        "spearman_mean": None,
                        "spearman_filter_median": None,
                        "spearman_filter_q1": None,
                        "spearman_filter_q3": None,
                        "what": "trained reconstruction vs a different trained filter's at the same image and unit",
                    }
                )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Everything but the reconstructions as JSON-ready values (arrays as nested lists, NaN as None)."""
        return {
            "layer": self.layer, "rule": self.rule, "seed": self.seed, "layers": list(self.layers),
            "above": list(self.above), "steps": [dict(s) for s in self.steps], "filters": [int(f) for f in self.filters],
            "images": None if self.images is None else np.asarray(self.images).astype(int).tolist(),
            "ssim": _nested(self.ssim), "spearman": _nested(self.spearman), "summary": self.summary(),
            "interpretation": self.interpretation, "meta": dict(self.meta),
            "baseline_ssim": None if self.baseline_ssim is None else _nested(self.baseline_ssim),
        }  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (atomically); returns the path."""
        path = Path(path)
        try:
            return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        except OSError as err:
            raise OutputError(f"Cannot write the sanity check to {path} ({err}); choose a writable location.") from err

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SanityCheckResult":
        """The inverse of :meth:`to_dict`."""
        arr = lambda v: np.array(v, dtype=float)  # noqa: E731 - None -> NaN
        images = d.get("images")
        return cls(layer=d["layer"], rule=d["rule"], seed=int(d["seed"]), layers=list(d["layers"]),
                   steps=list(d["steps"]), filters=np.asarray(d["filters"], dtype=np.int64), ssim=arr(d["ssim"]),
                   spearman=arr(d["spearman"]), interpretation=d.get("interpretation", ""), meta=d.get("meta", {}),
                   images=None if images is None else np.asarray(images, dtype=np.int64),
                   above=list(d.get("above", [])),
                   baseline_ssim=None if d.get("baseline_ssim") is None else arr(d["baseline_ssim"]))  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SanityCheckResult":
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def _nested(a: np.ndarray) -> list:
    return [_nested(v) for v in a] if a.ndim > 1 else [None if not math.isfinite(v) else float(v) for v in a]


#: How :func:`interpret` words a median SSIM (stated in results.json with the check).
READING = "SSIM >= 0.7: depend little on the randomised weights; 0.4-0.7: partly; < 0.4: depend on them"


def _dependence(similarity: float) -> str:
    if similarity >= 0.7:
        return "depend little on"
    if similarity >= 0.4:
        return "depend partly on"
    return "depend on"


def interpret(rule: str, layer_names: Sequence[str], summary: Sequence[dict[str, Any]]) -> str:
    """What the cascade says, stage by stage, from the median over filters of the per-filter mean SSIM
    (see :class:`SanityCheckResult`): the pictures "depend little on" the randomised weights at SSIM >= 0.7,
    "partly" at 0.4-0.7, and "depend on" them below 0.4 (:data:`READING`; cut-offs for reading the
    numbers, not a statistical test).

    Examples::

        >>> rows = [{"mode": "cascade", "randomised": ["conv2"], "ssim_filter_median": 0.91},
        ...         {"mode": "cascade", "randomised": ["conv2", "conv1"], "ssim_filter_median": 0.3}]
        >>> print(interpret("guided", ["conv1", "conv2"], rows))
        Guided backpropagation reconstructions stay 0.91 similar (median SSIM over filters) after randomising conv2: they depend little on conv2's trained weights; 0.30 after randomising conv2 down to conv1: they depend on the trained weights below (the check is passed).
    """
    cascade = [row for row in summary if row["mode"] == "cascade" and row.get("ssim_filter_median") is not None]
    if not cascade:
        return "No live unit could be checked (every checked filter is dead)."
    what = {"guided": "Guided backpropagation", "deconv": "Deconvnet", "gradient": "Gradient"}[rule]
    first, last = cascade[0], cascade[-1]
    top = first["randomised"][0]
    text = (f"{what} reconstructions stay {first['ssim_filter_median']:.2f} similar (median SSIM over filters) after "
            f"randomising {top}: they {_dependence(first['ssim_filter_median'])} {top}'s trained weights")  # fmt: skip
    if len(cascade) > 1:
        worst = last["ssim_filter_median"]
        text += (f"; {worst:.2f} after randomising {top} down to {last['randomised'][-1]}: they "
                 f"{_dependence(worst)} the trained weights below")  # fmt: skip
    worst = last["ssim_filter_median"]
    baseline = next((row["ssim_filter_median"] for row in summary if row["mode"] == "baseline"), None)
    if baseline is not None:
        return text + _against_baseline(first["ssim_filter_median"], worst, baseline)
    if worst >= 0.7:
        return text + " (read them as edge maps of the image, not as what the filter learned)."
    if worst >= 0.4:
        return text + " (compare them with the randomised ones before reading them)."
    return text + " (the check is passed)."


#: Randomised pictures this close to the baseline (in SSIM) count as "no more different than another filter's".
BASELINE_MARGIN = 0.05


def _against_baseline(first: float, worst: float, baseline: float) -> str:
    """The verdict relative to how alike two different trained filters' pictures are at the same image and unit.

    Examples::

        >>> _against_baseline(0.90, 0.88, 0.89)[-40:]
        'e trained weights add (the check fails).'
    """
    text = (f". Baseline: two different trained filters' reconstructions at the same image and unit are {baseline:.2f} "
            "similar")  # fmt: skip
    if baseline >= 0.7:
        text += " (much of each picture is the image around the unit, whatever the filter)"
    close = lambda value: value >= baseline - BASELINE_MARGIN  # noqa: E731
    if close(worst):
        return text + (
            ": randomising every layer changes a picture no more than swapping the filter does, so the "
            "pictures carry no filter-specific information that the trained weights add (the check fails)."
        )
    if close(first):
        return text + (
            ": randomising the analysed layer alone changes a picture no more than swapping the filter does "
            "(its own weights make no visible difference); the layers below do (the check is passed for them)."
        )
    return text + (
        ": randomising changes the pictures more than swapping the filter does, so they depend on the "
        "trained weights (the check is passed)."
    )


__all__ = ["BASELINE_MARGIN", "READING", "SanityCheckResult", "interpret"]
