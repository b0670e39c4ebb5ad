"""Figures of the causal probes: tuning curves, causal vs associational AU, emotion importance, FACS table.

They take the probes' result objects (read by attribute: ``AUProbeResult``, ``ImportanceResult``,
``FACSTable`` from :mod:`captum_fau.probes`) and return a :class:`~captum_fau.viz.figures.Figure`
on its own Agg canvas, optionally saved as PNG (``path=``); the report embeds them as PNG bytes
(:func:`~captum_fau.viz.figures.figure_png`).

Examples::

    >>> from captum_fau.viz.causal import plot_tuning_curves
    >>> fig = plot_tuning_curves(result, filters=[3, 17])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau.viz.figures import Figure, _save, new_figure


def plot_tuning_curves(result: Any, filters: Sequence[int], aus: Sequence[str] | None = None, *,
                       condition: int = 0, path: str | Path | None = None) -> Figure:  # fmt: skip
    """One panel per filter: median spatial-max activation vs intensity per AU, IQR shaded.

    Args:
        result (AUProbeResult): The probe's result.
        filters (sequence of int): Filters to show (one panel each).
        aus (sequence of str, optional): AUs to draw; default: each filter's 4 AUs with the largest
            absolute effect.
        condition (int, optional): 0 = neutral face, 1 = emotion prototypes. Default: 0
        path (str or Path, optional): Also save the figure there as PNG.
    """
    filters = list(filters)
    fig = new_figure((3.2 * max(1, len(filters)), 2.8))
    axes = fig.subplots(1, max(1, len(filters)), squeeze=False)[0]
    levels = np.asarray(result.intensities)
    for ax, f in zip(axes, filters):
        chosen = list(aus) if aus is not None else [result.aus[j] for j in np.argsort(-np.abs(result.effect[f]))[:4]]
        for au in chosen:
            j = result.aus.index(au)
            line = ax.plot(levels, result.median[condition, f, j], marker="o", ms=3, label=au)[0]
            ax.fill_between(levels, result.q25[condition, f, j], result.q75[condition, f, j], color=line.get_color(),
                            alpha=0.15, lw=0)  # fmt: skip
        top = result.top_au[f]
        ax.set_title(f"filter {f}" + (f" (causal: {top})" if top else " (no causal AU)"), fontsize=9)
        ax.set_xlabel("AU intensity (0 = absent)")
        ax.legend(fontsize=7, frameon=False)
    axes[0].set_ylabel(f"{result.layer} max activation")
    fig.tight_layout()
    return _save(fig, path)


def plot_causal_vs_association(result: Any, association_top: Sequence[str | None], *,
                               path: str | Path | None = None) -> Figure:  # fmt: skip
    """AU x AU counts of filters: causal top AU (rows) against the association's top AU (columns)."""
    labels = list(result.aus) + ["none"]
    index = {au: i for i, au in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), int)
    for causal, assoc in zip(result.top_au, association_top):
        counts[index.get(causal or "none", len(labels) - 1), index.get(assoc or "none", len(labels) - 1)] += 1
    fig = new_figure((6.5, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("associational top AU")
    ax.set_ylabel("causal top AU (counterfactual probe)")
    agree = sum(c == a and c is not None for c, a in zip(result.top_au, association_top))
    ax.set_title(f"{result.layer}: {agree} filters agree (diagonal)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04, label="filters")
    fig.tight_layout()
    return _save(fig, path)


def plot_importance(result: Any, *, mode: str = "zero", top: int = 8, path: str | Path | None = None) -> Figure:
    """Per emotion, the ``top`` filters by log-probability drop under ablation, with 95% intervals."""
    ranking = result.ranking(mode)
    m = result.modes.index(mode)
    fig = new_figure((3.0 * len(ranking), 2.8))
    axes = fig.subplots(1, max(1, len(ranking)), squeeze=False)[0]
    for ax, (i, (emotion, order)) in zip(axes, enumerate(ranking.items())):
        chosen = order[:top]
        drop = result.logprob_drop[m, i, chosen]
        err = np.stack([drop - result.logprob_low[m, i, chosen], result.logprob_high[m, i, chosen] - drop])
        ax.barh(range(len(chosen)), drop, xerr=np.nan_to_num(err), color="tab:red", alpha=0.7)
        ax.set_yticks(range(len(chosen)), [str(f) for f in chosen], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(emotion, fontsize=9)
        ax.set_xlabel("drop in log p(true class)", fontsize=8)
    axes[0].set_ylabel(f"{result.layer} filter ({mode} ablation)")
    fig.tight_layout()
    return _save(fig, path)


def plot_facs_table(table: Any, *, path: str | Path | None = None) -> Figure:
    """Score (share of top filters whose AU is in the EMFACS prototype) per emotion and source, with baselines."""
    sources = sorted({r["source"] for r in table.rows})
    emotions = list(dict.fromkeys(r["emotion"] for r in table.rows))
    fig = new_figure((1.0 + 0.9 * len(emotions), 3.0))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(sources))
    for s, source in enumerate(sources):
        rows = {r["emotion"]: r for r in table.rows if r["source"] == source}
        x = np.arange(len(emotions)) + s * width
        ax.bar(x, [rows[e]["score"] or 0.0 for e in emotions], width, label=source)
        ax.scatter(x, [rows[e]["baseline"] or 0.0 for e in emotions], color="k", marker="_", s=80, zorder=3)
    ax.set_xticks(np.arange(len(emotions)) + 0.4 - width / 2, emotions, rotation=30, fontsize=8)
    ax.set_ylabel(f"share of top-{table.top_k} filters\nwith a prototype AU")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, frameon=False, title="AU from (black: random-filter baseline)", title_fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["plot_causal_vs_association", "plot_facs_table", "plot_importance", "plot_tuning_curves"]
