"""The report of :func:`captum_fau.analyze.analyze`: the paper's figures and tables as PNG,
``results.json``, and a self-contained ``index.html`` that ties them together."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau._utils.faults import pause_point
from captum_fau._utils.io import atomic_write_text
from captum_fau.viz.figures import plot_agreement, plot_au_heatmap, plot_confusion, save_figure
from captum_fau.viz.report import Section, write_report


def build_report(
    out: Path,
    *,
    model: str,
    data: str,
    layer: str,
    faces: Any,
    topn: Any,
    faukl: Any | None,
    accuracy: dict[str, Any] | None,
    localisation: dict[str, Any] | None,
    featured: Sequence[int],
    notes: Sequence[str],
    params: dict[str, Any],
    title: str | None = None,
) -> Path:
    """Write the figures, ``results.json`` and ``index.html`` into ``out``; return the page.

    Args:
        out (Path): The report folder.
        model (str): How the model was named (zoo name, folder, ...).
        data (str): How the data were named.
        layer (str): The analysed layer.
        faces (Sized): The images (only their number is reported).
        topn (TopNResult): Top-N reconstructions of the layer.
        faukl (FAUKLResult, optional): FAU-KL statistics (None without AU labels).
        accuracy (dict, optional): ``accuracy``, ``n``, ``confusion``, ``class_names``,
            ``per_class_accuracy`` (None without expression labels).
        localisation (dict, optional): ``rate``, ``n_filters`` and ``per_filter`` rows of the
            localisation check (None without AU regions).
        featured (sequence of int): Filters shown in the figures and tables.
        notes (sequence of str): Remarks listed at the end (skipped steps, caveats).
        params (dict): The analysis settings, stored in ``results.json``.
        title (str, optional): Page title.

    Returns:
        Path: ``out/index.html``.
    """
    out = Path(out)
    featured = list(featured)
    summary = _summary(model, data, layer, faces, topn, faukl, accuracy, localisation)
    results: dict[str, Any] = {"params": params, "featured_filters": featured, "notes": list(notes)}
    if faukl is not None:
        st = faukl.stats(layer)
        results["fau_kl"] = {"significant_filters": int(_significant_filters(st).sum()),
                             "table": faukl.table_rows(featured, layer)}  # fmt: skip
    results["localisation"] = localisation
    results["accuracy"] = accuracy

    sections = [_topn_section(out, topn, layer, featured, faukl is not None)]
    if faukl is not None:
        sections += _faukl_sections(out, faukl, layer, featured)
    if localisation is not None:
        sections.append(_localisation_section(out, localisation))
    if accuracy is not None:
        sections.append(_accuracy_section(out, accuracy))
    sections.append(_files_section(faukl is not None, notes))
    atomic_write_text(out / "results.json", json.dumps({"summary": summary, **results}, indent=2, default=_jsonable) + "\n")
    pause_point("report")  # a fault test stops here: results.json written, index.html not yet
    return write_report(
        out, title or "Do deep networks learn facial action units?", sections, summary=summary,
        subtitle="captum-fau analysis (Khorrami, Paine & Huang, 2015)",
    )  # fmt: skip


def _significant_filters(st: Any) -> np.ndarray:
    """``[C]`` bool: the filter has a testable AU association with ``q < 0.05``."""
    return (np.where(st.testable, st.q, 1.0) < 0.05).any(axis=1)


def _summary(
    model: str, data: str, layer: str, faces: Any, topn: Any, faukl: Any | None,
    accuracy: dict[str, Any] | None, localisation: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    """The key facts at the top of the page."""
    summary: dict[str, Any] = {
        "Model": model,
        "Data": f"{data} ({len(faces)} images)",
        "Layer": f"{layer} ({int(topn.filters.numel())} filters, top {topn.n} images each, {topn.rule} rule)",
    }
    if accuracy is not None:
        summary["Accuracy"] = f"{accuracy['accuracy']:.1%} on {accuracy['n']} labelled images"
    if faukl is not None:
        st = faukl.stats(layer)
        summary["FAU-KL"] = (
            f"{int(_significant_filters(st).sum())} of {st.kl.shape[0]} filters have an AU association with q < 0.05 "
            f"({len(faukl.au_ids)} AUs, {st.config.get('n_permutations', '?')} permutations)"
        )
    if localisation is not None and localisation.get("rate") is not None:
        summary["Localisation"] = (
            f"{localisation['rate']:.0%} of {localisation['n_filters']} significant filters: FAU-KL's top AU is the "
            "AU region holding most of the reconstruction energy"
        )
    return summary


def _topn_section(out: Path, topn: Any, layer: str, featured: list[int], ranked_by_au: bool) -> Section:
    """Paper Fig. 1/3/4: top-N reconstructions of the featured filters, and their image windows."""
    grid = save_figure(topn.plot(filters=featured, show="reconstruction"), out / "topn_grid.png")
    patches = save_figure(topn.plot(filters=featured, show="image"), out / "topn_images.png")
    return Section(
        "Top-N deconvolution",
        text=[
            f"Each row is one filter of {layer}; left to right, its {topn.n} strongest images, keeping only the "
            f"strongest activation and projecting it back to pixels ({topn.rule} rule), cropped to the unit's "
            "receptive field — the layout of the paper's Figures 1, 3 and 4. Filters are ordered by the "
            "strength of their AU association" + ("." if ranked_by_au else " (none without AU labels: by activation)."),
        ],
        figures=[(grid, "Reconstructions (paper Fig. 1/3/4 layout)"), (patches, "The same windows of the input images")],
    )


def _faukl_sections(out: Path, faukl: Any, layer: str, featured: list[int]) -> list[Section]:
    """Paper Table 4 and Fig. 5 for the featured filters, and the AU x filter heat map."""
    bars_png = save_figure(faukl.plot_bars(featured, layer), out / "kl_bars.png")
    rows = faukl.table_rows(featured, layer)
    table = Section(
        "Filter → action unit (paper Table 4)",
        text=[
            "For each featured filter, the AU whose images give the filter's maximum activation the most "
            "different distribution (D_KL(Q‖R), Q over images with the AU, R without). KL [CI]: bootstrap "
            "interval over subjects; KL-null: KL minus its mean under label permutations; q: "
            "Benjamini–Hochberg over all filter × AU pairs."
        ],
        table=(
            ["filter", "AU", "name", "KL", "CI low", "CI high", "KL-null", "AUROC", "q"],
            [[r["filter"], r["au"], r["name"] + (" (dead)" if r["dead"] else ""), r["kl"], r["ci_low"],
              r["ci_high"], r["kl_corrected"], r["auroc"], r["q"]] for r in rows],
        ),  # fmt: skip
    )
    bars = Section(
        "KL divergence of every AU (paper Fig. 5)",
        text=["One panel per featured filter; the AU with the largest KL in red, * where q < 0.05."],
        figures=[(bars_png, "KL divergence per AU for each featured filter")],
    )
    st = faukl.stats(layer)
    order = np.argsort(-np.where(st.testable, st.kl_corrected, -np.inf).max(axis=1), kind="stable")[:40]
    plot_au_heatmap(
        st.kl_corrected[order], list(faukl.au_ids), [int(f) for f in order],
        significant=(st.q[order] < 0.05) & st.testable[order], colorbar_label="KL minus permutation mean",
        title="Null-corrected KL, 40 most associated filters", path=out / "au_heatmap.png",
    )  # fmt: skip
    heatmap = Section("AU × filter heat map", figures=[(out / "au_heatmap.png", "Null-corrected KL; dots: q < 0.05")])
    return [table, bars, heatmap]


def _localisation_section(out: Path, localisation: dict[str, Any]) -> Section:
    """Agreement of FAU-KL's top AU with the AU region that holds most of the reconstruction energy."""
    per = localisation["per_filter"]
    figs = []
    if per:
        by_au: dict[str, list[bool]] = defaultdict(list)
        for row in per:
            by_au[row["fau_kl_au"]].append(row["agree"])
        rates = {f"{au} ({len(v)})": float(np.mean(v)) for au, v in sorted(by_au.items())}
        plot_agreement(rates, path=out / "localisation.png")
        figs.append((out / "localisation.png", "Agreement per FAU-KL top AU (filters)"))
    rate = localisation.get("rate")
    return Section(
        "Localisation check against ground-truth AU regions",
        text=[
            "For every filter with a significant association, the share of its top-N reconstruction energy "
            "inside each AU's ground-truth region; agreement means the AU with the most energy is FAU-KL's "
            "top AU. " + (f"Agreement: {rate:.0%} of {localisation['n_filters']} filters." if rate is not None
                         else "No filter had a significant association."),
            "Where AUs co-occur (prototypical expressions such as 1+2+5+26 in surprise), neighbouring AUs "
            "share the statistical credit and overlapping regions share the energy, so disagreements often "
            "name a partner AU of the same expression; SynthFACS's independent mode separates them "
            "(scripts/bench_faukl.py measures agreement there).",
        ],
        figures=figs,
        table=(["filter", "FAU-KL top AU", "AU region with most energy", "share", "agree"],
               [[r["filter"], r["fau_kl_au"], r["region_au"], r["share"], "yes" if r["agree"] else "no"]
                for r in per[:60]]) if per else None,
    )  # fmt: skip


def _accuracy_section(out: Path, accuracy: dict[str, Any]) -> Section:
    """Expression-recognition accuracy and the confusion matrix."""
    cm_png = out / "confusion.png"
    plot_confusion(np.asarray(accuracy["confusion"]), accuracy["class_names"], path=cm_png)
    return Section(
        "Expression recognition",
        text=[f"Accuracy {accuracy['accuracy']:.1%} over {accuracy['n']} labelled images."],
        figures=[(cm_png, "Confusion matrix")],
        table=(["class", "accuracy"], [[k, v] for k, v in accuracy["per_class_accuracy"].items()]),
    )


def _files_section(with_faukl: bool, notes: Sequence[str]) -> Section:
    """The machine-readable files next to the page, and the run's notes."""
    files = ["topn.safetensors", "topn.json", "maxima.npz"] + (["fau_kl.safetensors", "fau_kl.csv"] if with_faukl else [])
    return Section(
        "Files",
        text=["Machine-readable results in this folder: results.json, " + ", ".join(files) + "."],
        notes=list(notes),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


__all__ = ["build_report"]
