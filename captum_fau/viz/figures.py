"""Figures of the report that are not tied to one result class: AU x filter heat map,
confusion matrix, and region-agreement bars. Each function returns the matplotlib
figure and, given ``path``, also saves it as PNG.

Figures are built with matplotlib's object API (:func:`new_figure`: a ``Figure`` on an Agg
canvas) and saved with :func:`save_figure`; the package never selects a backend nor uses pyplot,
so importing or plotting leaves a notebook's backend alone.

Examples::

    >>> import numpy as np
    >>> from captum_fau.viz.figures import plot_confusion
    >>> fig = plot_confusion(np.array([[5, 1], [0, 6]]), ["neutral", "happy"])
    >>> len(fig.axes) >= 1
    True
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import matplotlib.figure
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from captum_fau._utils.io import atomic_write_bytes


class Figure(matplotlib.figure.Figure):
    """A matplotlib figure on its own Agg canvas that notebooks display as PNG.

    Made without pyplot, so creating one neither switches the user's backend nor registers the
    figure with pyplot (nothing to close; it is freed with the last reference).
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def new_figure(figsize: tuple[float, float]) -> Figure:
    """An empty :class:`Figure` of ``figsize`` inches, drawn by Agg."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: matplotlib.figure.Figure, dpi: int = 110, **savefig_kwargs: Any) -> bytes:
    """The figure as PNG bytes (``bbox_inches="tight"`` unless given otherwise)."""
    buffer = io.BytesIO()
    savefig_kwargs.setdefault("bbox_inches", "tight")
    fig.savefig(buffer, format="png", dpi=dpi, **savefig_kwargs)
    return buffer.getvalue()


def save_figure(fig: matplotlib.figure.Figure, path: str | Path, dpi: int = 110, **savefig_kwargs: Any) -> Path:
    """Write the figure to ``path`` as PNG, atomically; returns ``path``."""
    return atomic_write_bytes(path, figure_png(fig, dpi, **savefig_kwargs))


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_au_heatmap(
    scores: np.ndarray,
    au_labels: Sequence[str],
    filters: Sequence[int],
    *,
    title: str = "Association of filters (rows) with action units (columns)",
    colorbar_label: str = "KL divergence",
    significant: np.ndarray | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Heat map of a ``[F, J]`` score matrix for the listed filters; ``significant`` ([F, J] bool) adds dots.

    Args:
        scores (np.ndarray): ``[F, J]`` scores, rows in the order of ``filters``.
        au_labels (sequence of str): Column labels (e.g. ``"AU12"``).
        filters (sequence of int): Row labels (filter indices).
        title (str, optional): Figure title.
        colorbar_label (str, optional): What the colour encodes.
        significant (np.ndarray, optional): Cells to mark with a dot.
        path (str or Path, optional): Save here as PNG.

    Returns:
        matplotlib.figure.Figure
    """
    scores = np.asarray(scores, dtype=float)
    f, j = scores.shape
    fig = new_figure((max(6, 0.42 * j + 2), max(3, 0.28 * f + 1.5)))
    ax = fig.subplots()
    im = ax.imshow(np.nan_to_num(scores, nan=0.0), aspect="auto", cmap="magma")
    ax.set_xticks(range(j), au_labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(f), [str(x) for x in filters], fontsize=8)
    ax.set_xlabel("action unit")
    ax.set_ylabel("filter")
    ax.set_title(title, fontsize=10)
    if significant is not None:
        rows, cols = np.nonzero(np.asarray(significant))
        ax.scatter(cols, rows, s=6, c="cyan", marker="o", label="q < 0.05")
        if len(rows):
            ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    fig.colorbar(im, ax=ax, label=colorbar_label, fraction=0.03)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(
    confusion: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str = "Confusion matrix (rows: true, columns: predicted)",
    path: str | Path | None = None,
) -> Figure:
    """Row-normalised confusion matrix with counts in the cells."""
    confusion = np.asarray(confusion)
    norm = confusion / np.clip(confusion.sum(axis=1, keepdims=True), 1, None)
    n = len(class_names)
    fig = new_figure((0.7 * n + 2.5, 0.6 * n + 2))
    ax = fig.subplots()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for r in range(n):
        for c in range(n):
            ax.text(
                c,
                r,
                str(int(confusion[r, c])),
                ha="center",
                va="center",
                color="white" if norm[r, c] > 0.6 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_agreement(
    rates: dict[str, float],
    *,
    title: str = "Where reconstructions fall: share in the top AU's own region",
    path: str | Path | None = None,
) -> Figure:
    """Horizontal bars of named rates in [0, 1] (e.g. per-AU localisation agreement)."""
    names = list(rates)
    values = [rates[k] for k in names]
    fig = new_figure((6, 0.35 * len(names) + 1.2))
    ax = fig.subplots()
    ax.barh(range(len(names)), values, color="#546e7a")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["Figure", "figure_png", "new_figure", "plot_agreement", "plot_au_heatmap", "plot_confusion", "save_figure"]
