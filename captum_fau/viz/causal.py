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

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau.viz.figures import Figure, _save, new_figure, save_figure
from captum_fau.viz.filter_browser import au_sort_key
from captum_fau.viz.report import Section

#: Featured filters whose tuning curves the report draws (two per row, so they stay legible on a phone).
TUNING_PANELS = 6


def plot_tuning_curves(result: Any, filters: Sequence[int], aus: Sequence[str] | None = None, *,
                       condition: int = 0, ncols: int | None = None, path: str | Path | None = None
                       ) -> Figure:  # fmt: skip
    """One panel per filter: median spatial-max activation vs intensity per AU, IQR shaded.

    Args:
        result (AUProbeResult): The probe's result.
        filters (sequence of int): Filters to show (one panel each).
        aus (sequence of str, optional): AUs to draw; default: each filter's 4 AUs with the largest
            absolute effect.
        condition (int, optional): 0 = neutral face, 1 = emotion prototypes. Default: 0
        ncols (int, optional): Panels per row (2 keeps the labels legible on a phone). Default: all in one row
        path (str or Path, optional): Also save the figure there as PNG.
    """
    filters = list(filters)
    axes = _grid(len(filters), ncols, (3.2, 2.8))
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
        ax.set_ylabel(f"{result.layer} max activation", fontsize=8)
    fig = axes[0].figure
    fig.tight_layout()
    return _save(fig, path)


def _grid(n: int, ncols: int | None, panel: tuple[float, float]) -> list[Any]:
    """``n`` axes in rows of ``ncols`` on a new figure of ``panel``-sized cells; unused cells hidden."""
    n = max(1, n)
    cols = min(n, ncols or n)
    rows = -(-n // cols)
    fig = new_figure((panel[0] * cols, panel[1] * rows))
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


def plot_causal_vs_association(result: Any, association_top: Sequence[str | None], *,
                               path: str | Path | None = None) -> Figure:  # fmt: skip
    """AU x AU counts of filters: causal top AU (rows) against the association's top AU (columns); AUs that
    are neither filter's top AU are left out."""
    used = {a for a in list(result.top_au) + list(association_top) if a is not None}
    labels = [a for a in result.aus if a in used] + sorted(used - set(result.aus)) + ["none"]
    index = {au: i for i, au in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), int)
    for causal, assoc in zip(result.top_au, association_top):
        counts[index.get(causal or "none", len(labels) - 1), index.get(assoc or "none", len(labels) - 1)] += 1
    side = 2.0 + 0.22 * len(labels)
    fig = new_figure((side + 0.8, side))
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


def plot_importance(result: Any, *, mode: str = "zero", top: int = 8, ncols: int | None = None,
                    path: str | Path | None = None) -> Figure:  # fmt: skip
    """Per emotion, the ``top`` filters by log-probability drop under ablation, with 95% intervals
    (``ncols`` panels per row; default: all in one row)."""
    ranking = result.ranking(mode)
    m = result.modes.index(mode)
    axes = _grid(len(ranking), ncols, (3.0, 2.8))
    for ax, (i, (emotion, order)) in zip(axes, enumerate(ranking.items())):
        chosen = order[:top]
        drop = result.logprob_drop[m, i, chosen]
        err = np.stack([drop - result.logprob_low[m, i, chosen], result.logprob_high[m, i, chosen] - drop])
        ax.barh(range(len(chosen)), drop, xerr=np.nan_to_num(err), color="tab:red", alpha=0.7)
        ax.set_yticks(range(len(chosen)), [str(f) for f in chosen], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(emotion, fontsize=9)
        ax.set_xlabel("drop in log p(true class)", fontsize=8)
        ax.set_ylabel(f"{result.layer} filter ({mode} ablation)", fontsize=8)
    fig = axes[0].figure
    fig.tight_layout()
    return _save(fig, path)


def plot_facs_table(table: Any, *, path: str | Path | None = None) -> Figure:
    """Score (share of top filters whose AU is in the EMFACS prototype) per emotion and source, with baselines."""
    sources = sorted({r["source"] for r in table.rows})
    emotions = list(dict.fromkeys(r["emotion"] for r in table.rows))
    fig = new_figure((1.2 + 0.6 * len(emotions), 3.0))
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
    ax.legend(
        fontsize=7,
        frameon=False,
        title="AU from (black: random-filter baseline)",
        title_fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.32),
        ncol=max(1, len(sources)),
    )
    fig.tight_layout()
    return _save(fig, path)


def _num(value: Any, fmt: str = ".2f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(float(value), fmt)


def causal_sections(out: Path, probes: Any, featured: Sequence[int]) -> list[Section]:
    """The report's causal-probe sections from ``probes`` (:class:`~captum_fau.probe_steps.ProbeFindings`):
    tuning curves and causal vs associational AU, the emotion importance ranking, the FACS table."""
    sections = []
    if probes.causal is not None:
        sections.append(_probe_section(Path(out), probes, list(featured)))
    if probes.importance is not None:
        sections.append(_importance_section(Path(out), probes.importance))
    if probes.facs is not None:
        sections.append(_facs_section(Path(out), probes.facs))
    return sections


def _probe_section(out: Path, probes: Any, featured: list[int]) -> Section:
    res = probes.causal
    shown = [f for f in featured if f < len(res.top_au)][:TUNING_PANELS]
    figures = [(save_figure(plot_tuning_curves(res, shown, ncols=2), out / "causal_tuning.png"),
                f"Tuning curves of {len(shown)} featured filters on the neutral face: median over {res.n_faces} faces "
                "(shaded: inter-quartile range), the 4 AUs with the largest effect per filter")]  # fmt: skip
    size = (res.meta.get("input_spec") or {}).get("size") or ["?", "?"]
    n_causal = res.to_dict()["filters_with_causal_au"]
    text = [
        f"Counterfactual AU probe: {res.n_faces} SynthFACS faces (identities × poses × lighting) rendered at the "
        f"model's input spec ({size[0]}x{size[-1]}, the spec this analysis resolved), each of {len(res.aus)} AUs "
        f"swept over intensities {', '.join(map(str, res.intensities))} with every other AU held fixed (on the "
        "neutral face and, where chosen, on the emotion prototypes containing it). Effect: mean over faces of "
        "max(AU at the top intensity) − max(AU absent), divided by the filter's activation sd; two-sided sign-flip "
        "p over faces (the faces are the units), Benjamini–Hochberg q over all filter × AU pairs, Student-t 95% "
        f"interval. {n_causal} of {len(res.top_au)} filters have an AU with q < {res.alpha:g}; the causal AU is "
        f"the one with the largest |effect| among those ({res.meta.get('precision', 'float32')} forward)."
    ]
    assoc = probes.association_top
    rows = []
    for f in shown + [f for f in featured if f not in shown]:
        au = res.top_au[f]
        j = res.aus.index(au) if au else None
        effect = "—" if j is None else f"{res.effect[f, j]:.2f} [{res.ci_low[f, j]:.2f}, {res.ci_high[f, j]:.2f}]"
        qv = "—" if j is None else f"{res.q[f, j]:.2g}"
        other = "n/a" if assoc is None else (assoc[f] or "none")
        agree = "n/a" if assoc is None else ("yes" if au == assoc[f] else "no")
        rows.append([f, au or "none", effect, qv, other, agree])
    agreement = probes.agreement
    if agreement is not None and agreement.get("n_filters"):
        text.append(
            f"Causal vs associational (FAU-KL) top AU over the layer: {agreement['n_filters']} filters have "
            f"both; they agree for {agreement['agreement']:.0%} (chance with the FAU-KL AUs shuffled over "
            f"filters {agreement['chance']:.0%}, p = {agreement['p']:.3g}; Cohen's κ "
            f"{_num(agreement['kappa'])}). Where they differ, the association may name an AU that co-occurs "
            "in the data with the one the filter responds to (AU6 with AU12 in happiness)."
        )
        figures.append(
            (
                save_figure(plot_causal_vs_association(res, assoc), out / "causal_vs_association.png"),
                "Filters by causal top AU (rows) and FAU-KL top AU (columns); the diagonal agrees",
            )
        )
    elif agreement is not None:
        text.append("No filter has both a causal and an associational top AU, so their agreement is undefined.")
    if probes.occlusion is not None:
        occ = probes.occlusion.to_dict()
        text.append(f"AU-region occlusion on the data ({occ.get('images', '')}; regions filled with "
                    f"{occ.get('fill_definition', occ['fill'])}): {occ['n_significant']} filter × AU pairs lose "
                    f"activation with q < {occ['alpha']:g} (sign-flip over "
                    f"{'subjects' if occ.get('unit') == 'unit' else 'images, no subject ids'}); "
                    "results.json['causal']['occlusion'] and occlusion.npz hold every pair.")  # fmt: skip
    return Section("Causal probes: does a filter respond to the AU itself?", text=text, figures=figures,
                   table=(["filter", "causal AU", "effect [95% CI]", "q", "FAU-KL AU", "agree"], rows),
                   table_note="Featured filters; every filter is in results.json['causal'] and causal.npz.",
                   )  # fmt: skip


def _importance_section(out: Path, imp: Any) -> Section:
    mode = "zero" if "zero" in imp.modes else imp.modes[0]
    ranking = imp.ranking(mode)
    m = imp.modes.index(mode)
    figure = save_figure(plot_importance(imp, mode=mode, top=6, ncols=2), out / "importance.png")
    rows = [[e, f"{imp.base_accuracy[i]:.0%}", int(imp.n_units[i]),
             ", ".join(f"{f} ({imp.logprob_drop[m, i, f]:.2f})" for f in ranking[e][:5])]
            for i, e in enumerate(imp.emotions)]  # fmt: skip
    return Section(
        "Causal probes: which filters does each emotion's decision use?",
        text=[
            f"Each filter of {imp.layer} ablated in turn ({', '.join(imp.modes)} replacement; the head run from "
            f"cached activations) on {imp.meta.get('images', str(imp.meta.get('n_images', '?')) + ' images')}; "
            "per emotion (the data's emotions mapped to the model's classes by name), the drop in the true class's "
            f"log-probability, mean over units ({str(imp.meta.get('unit', '?')).replace(' (as given)', '')}) "
            "with its 95% Student-t interval; "
            "filters ranked by that drop."
        ],  # fmt: skip
        figures=[(figure, f"The 6 most important filters per emotion ({mode} ablation), 95% intervals over units")],
        table=(["emotion", "accuracy", "units", "top filters (drop in log p)"], rows),
    )


def _facs_section(out: Path, table: Any) -> Section:
    figure = save_figure(plot_facs_table(table), out / "facs.png")
    scores = "; ".join(f"{s}: {_num(table.score(s))}" for s in sorted({r["source"] for r in table.rows}))
    rows = [[f"{r['emotion']} ({r['source']})", " ".join(sorted(r["prototype"], key=au_sort_key)),
             f"{r['hits']}/{r['n_with_au']}", _num(r["score"]), _num(r["baseline"]), _num(r["p"], ".2g"),
             " ".join(f"{au}×{k}" if k > 1 else au for au, k in Counter(r["aus"]).most_common()) or "—"]
            for r in table.rows]  # fmt: skip
    return Section(
        "Does the model use AUs the way FACS says?",
        text=[
            f"For each emotion, the AUs of its {table.top_k} most important filters (with an AU), by the causal "
            "probe and by the association (FAU-KL), against the emotion's EMFACS prototype AUs. Score: the share of "
            "those filters whose AU is in the prototype; baseline: the same share for as many filters drawn at "
            f"random among the layer's filters with an AU ({table.meta.get('n_permutations', '?')} draws; p "
            "one-sided). "
            f"Mean score: {scores}."
        ]
        + list(table.meta.get("notes", [])),  # fmt: skip
        figures=[(figure, "Score per emotion and AU source; black marks: the random-filter baseline")],
        table=(
            ["emotion (AU from)", "EMFACS prototype", "hits", "score", "baseline", "p", "AUs of the top filters"],
            rows,
        ),
    )


__all__ = [
    "TUNING_PANELS",
    "causal_sections",
    "plot_causal_vs_association",
    "plot_facs_table",
    "plot_importance",
    "plot_tuning_curves",
]
