"""The report of :func:`captum_fau.analyze.analyze`: the paper's figures and tables as PNG,
``results.json``, and an ``index.html`` that ties them together and opens from disk.

The page starts with the summary and the notes that change how to read it (skipped steps, input
adaptation, data provenance, permutation units); each section is built by its own function,
ending with the browser of every filter (:mod:`captum_fau.viz.filter_browser`)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau._utils.faults import pause_point
from captum_fau._utils.io import atomic_write_text
from captum_fau.viz.figures import plot_agreement, plot_au_heatmap, plot_confusion, save_figure
from captum_fau.viz.filter_browser import (
    BROWSER_CSS,
    AGREE_MIN_SHARE,
    BROWSER_SCRIPT,
    agreement_word,
    au_sort_key,
    filter_browser_section,
    statistic_label,
)
from captum_fau.viz.report import Section, write_report
from captum_fau.viz.sanity_report import _finite, sanity_figure, sanity_results, sanity_section

#: Rows of the localisation table shown on the page; all rows are in ``localisation.csv``.
LOCALISATION_ROWS = 60

#: On a phone, table headers and text cells wrap (numbers do not), so wide tables such as Table 4
#: keep both tests' q-values in view.
NARROW_TABLES_CSS = (
    "@media (max-width: 600px) { .table-wrap table { font-size: .78rem; } "
    ".table-wrap th, .table-wrap td { padding: .3rem .25rem; } .table-wrap th, .table-wrap td:not(.num) "
    "{ white-space: normal; } }"
)


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
    sanity: Any | None = None,
    probes: Any | None = None,
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
        notes (sequence of str): Remarks shown at the top (skipped steps, input adaptation, held-out status).
        params (dict): The analysis settings, stored in ``results.json``.
        title (str, optional): Page title.
        sanity (SanityCheckResult, optional): The model-randomisation check of the reconstructions.
        probes (ProbeFindings, optional): The causal probes (``results.json`` keys ``causal``, ``importance``,
            ``facs``; None each where not run).

    Returns:
        Path: ``out/index.html``.
    """
    out = Path(out)
    featured = list(featured)
    provenance = dict(params.get("data_provenance") or {})
    summary = _summary(model, data, layer, faces, topn, faukl, accuracy, localisation, provenance)
    summary.update(_input_summary(params))
    from captum_fau.inputs.fields import unverified_fields

    unverified = unverified_fields(params.get("input_spec") or {})  # what a probe, a default or the data supplied
    results: dict[str, Any] = {
        "params": {**params, "input_unverified": unverified},
        "featured_filters": featured,
        "notes": list(notes),
    }
    if faukl is not None:
        st = faukl.stats(layer)
        results["fau_kl"] = {"significant_filters": int(_significant_filters(st).sum()),
                             "permutation_unit": st.config.get("permutation_unit"),
                             "permutations": {k: st.config.get(k) for k in ("n_permutations", "max_permutations",
                                                                             "refined_pairs", "min_attainable_q")},
                             "untested_aus": [faukl.au_ids[j] for j in st.config.get("untested_aus", [])],
                             "top_au_rule": DEFAULT_RULE_TEXT,
                             "table": faukl.table_rows(featured, layer)}  # fmt: skip
    results["topn"] = topn_status(topn)
    if topn.pending_filters:
        summary["Reconstructions"] = (f"{len(topn.filters)} of {len(topn.top_values())} filters complete; "
                                      f"{len(topn.pending_filters)} pending (see the filter browser)")  # fmt: skip
    results["localisation"] = localisation
    results["held_out"] = bool(provenance.get("held_out", False))
    results["held_out_reason"] = provenance.get("reason", "not recorded")
    results["accuracy"] = None if accuracy is None else {**accuracy, "held_out": results["held_out"]}
    if sanity is not None:
        results["sanity_check"] = sanity_results(sanity)
        total = (sanity.meta.get("selection") or {}).get("filters_in_layer", len(sanity.filters))
        summary["Sanity check"] = (f"{sanity.interpretation} ({len(sanity.filters)} of {total} filters checked, top "
                                   f"{sanity.meta.get('n', '?')} images each)")  # fmt: skip

    results.update(probes.to_results() if probes is not None else dict.fromkeys(("causal", "importance", "facs")))
    sections = [_topn_section(out, topn, layer, featured, faukl, input_caveat(sanity))]
    if faukl is not None:
        sections += _faukl_sections(out, faukl, layer, featured)
    if sanity is not None:
        figure = out / "sanity.png"
        sections.append(sanity_section(sanity, figure if figure.is_file() else None))
    if localisation is not None:
        sections.append(_localisation_section(out, localisation, faukl, layer))
    if accuracy is not None:
        sections.append(_accuracy_section(out, accuracy, provenance))
    if probes is not None:
        from captum_fau.viz.causal import causal_sections

        sections += causal_sections(out, probes, featured)
    sections.append(filter_browser_section(out, topn, faukl, layer, localisation, featured))
    sections.append(_files_section(faukl is not None, localisation is not None, sanity is not None))
    atomic_write_text(
        out / "results.json", json.dumps({"summary": summary, **results}, indent=2, default=_jsonable) + "\n"
    )
    pause_point("report")  # a fault test stops here: results.json written, index.html not yet
    return write_report(
        out, title or "Do deep networks learn facial action units?", sections, summary=summary,
        subtitle="captum-fau analysis (Khorrami, Paine & Huang, 2015)",
        notes=_top_notes(notes, faukl, layer), script=BROWSER_SCRIPT, css=BROWSER_CSS + NARROW_TABLES_CSS,
    )  # fmt: skip


#: How the report's top AU is chosen (the results.json record of the rule).
DEFAULT_RULE_TEXT = "smallest p of the main test (two-sided AUROC permutation test), ties by |AUROC z|"


def _input_summary(params: dict[str, Any]) -> dict[str, str]:
    """The "Input" line: the model's input spec and where each field came from (``params["input_spec"]``)."""
    from captum_fau.inputs.spec import InputSpec

    from captum_fau.inputs.fields import unverified_fields, unverified_note

    spec = params.get("input_spec")
    out = {"Input": InputSpec.from_dict(spec).describe()} if isinstance(spec, dict) else {}
    guessed = unverified_note(unverified_fields(spec) if isinstance(spec, dict) else {})
    if guessed:
        out["Unverified input"] = guessed.removeprefix("UNVERIFIED input: ")
    return out


def _top_notes(notes: Sequence[str], faukl: Any | None, layer: str) -> list[str]:
    """The run's notes and the statistics' own (permutation units, untestable AUs), shown first."""
    extra = [str(n) for n in (faukl.stats(layer).notes if faukl is not None else [])]
    if faukl is not None:
        st = faukl.stats(layer)
        n_perm = int(st.config.get("max_permutations", st.config.get("n_permutations", 0)) or 0)
        floor_q = float(st.config.get("min_attainable_q", int(st.testable.sum()) / (n_perm + 1)))
        if n_perm > 0 and floor_q > 0.05:
            extra.append(
                f"The smallest attainable q is {floor_q:.3g} > 0.05: with at most {n_perm} permutations per pair the "
                f"smallest p-value is 1/{n_perm + 1} = {1 / (n_perm + 1):.3g}, before the correction over "
                f"{int(st.tested.sum())} filter × AU tests, so no single association can be declared significant. "
                "Rerun with a larger --max-permutations (or leave it at its automatic value) before reading the q-values."
            )
    return list(dict.fromkeys([*notes, *extra]))


def _significant_filters(st: Any) -> np.ndarray:
    """``[C]`` bool: the filter has a testable AU association with ``q < 0.05``."""
    return (np.where(st.testable, st.q, 1.0) < 0.05).any(axis=1)


def _summary(
    model: str, data: str, layer: str, faces: Any, topn: Any, faukl: Any | None,
    accuracy: dict[str, Any] | None, localisation: dict[str, Any] | None, provenance: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The key facts at the top of the page; each count is defined once and reused."""
    n_filters = int(topn.filters.numel())
    summary: dict[str, Any] = {
        "Model": model,
        "Data": f"{data} ({len(faces)} images)",
        "Layer": f"{layer} ({n_filters} filters, top {topn.n} images each, {_rule_label(topn)} rule)",
    }
    if provenance.get("subjects"):
        first, last = provenance["subjects"]
        summary["Data"] += (
            f"; seed {provenance['seed']}, subjects {first}..{last}, images from index {provenance['start']}"
        )
    if accuracy is not None:
        held = (
            "held-out subjects (never seen in training or validation)"
            if provenance.get("held_out")
            else f"NOT verified as held out: {provenance.get('reason', 'no record of the training data')}"
        )
        summary["Accuracy"] = f"{accuracy['accuracy']:.1%} on {accuracy['n']} labelled images; {held}"
    n_significant = None
    if faukl is not None:
        st = faukl.stats(layer)
        n_significant = int(_significant_filters(st).sum())
        summary["Significant filters"] = (
            f"{n_significant} of {st.kl.shape[0]} filters have an AU association with q < 0.05 "
            f"({len(faukl.au_ids)} AUs, {st.config.get('n_permutations', '?')} permutations)"
        )
    if localisation is not None and localisation.get("rate") is not None:
        checked = int(localisation["n_filters"])
        agree = int(round(localisation["rate"] * checked))
        left = (
            ""
            if n_significant is None or checked == n_significant
            else (f"; the other {n_significant - checked} significant filters put no energy in any AU region")
        )
        summary["Localisation"] = (
            f"{agree} of {checked} significant filters ({localisation['rate']:.0%}) whose reconstructions reach an "
            f"AU region have FAU-KL's top AU as the region with the {localisation.get('rule_label', 'largest energy')}{left}"
        )
    return summary


def _row_labels(featured: list[int], faukl: Any | None, layer: str) -> list[str] | None:
    """Row labels of the grids: filter, its chosen AU and the q-value of the main test, named."""
    if faukl is None:
        return None
    rows = faukl.table_rows(featured, layer)
    return [f"{r['filter']}\n{r['au'] or 'no AU'}\nq ({statistic_label(r['test'])}) {r['q']:.2g}" for r in rows]


def topn_status(topn: Any) -> dict[str, Any]:
    """Which filters of a top-N result are reconstructed (complete) and which are pending, for ``results.json``."""
    return {
        "complete": not topn.pending_filters,
        "reconstructed_filters": [int(f) for f in topn.filters.tolist()],
        "pending_filters": topn.pending_filters,
        "n": topn.n,
        "rule": topn.rule,
        "dead_filters": list(topn.dead),
        "rule_label": _rule_label(topn),
        **_relu_like(topn),
    }


def _relu_like(topn: Any) -> dict[str, Any]:
    """``relu_like`` of a result for ``results.json``: whether, on which activations, and how to read the pictures."""
    applied = bool(getattr(topn, "relu_like", False))
    return {
        "relu_like": applied,
        "relu_like_activations": topn.meta.get("relu_like_activations") if applied else None,
        "rule_caveat": getattr(topn, "rule_caveat", None),
    }


def _rule_label(topn: Any) -> str:
    """The rule as the result names it (``TopNResult.rule_label``: with ``relu_like`` when it applies)."""
    return str(getattr(topn, "rule_label", topn.rule))


def input_caveat(sanity: Any | None) -> str | None:
    """The sanity check's caveat for the pictures, when its full cascade leaves them similar (median SSIM
    >= 0.4): they show the input more than what the filters learned. None otherwise or without a check."""
    if sanity is None:
        return None
    rows = [(step, row) for step, row in zip(sanity.steps, sanity.summary()) if step["mode"] == "cascade"]
    median = rows[-1][1].get("ssim_median") if rows else None
    similarity = None if median is None else _finite(median)
    if similarity is None or similarity < 0.4:
        return None
    how = "mostly" if similarity >= 0.7 else "partly"
    return (
        f"Sanity check: with every layer up to {sanity.layer} randomised, these reconstructions stay {similarity:.2f} "
        f"similar to the trained ones (median SSIM): they {how} show the input image (its edges), not what the "
        "filters learned. Read them with the sanity check section below."
    )


def _topn_section(out: Path, topn: Any, layer: str, featured: list[int], faukl: Any | None,
                  caveat: str | None = None) -> Section:  # fmt: skip
    """Paper Fig. 1/3/4: top-N reconstructions of the featured filters, and their image windows (with the
    sanity check's ``caveat`` beside them)."""
    labels = _row_labels(featured, faukl, layer)
    grid = save_figure(topn.plot(filters=featured, show="reconstruction", labels=labels), out / "topn_grid.png")
    patches = save_figure(topn.plot(filters=featured, show="image", labels=labels), out / "topn_images.png")
    return Section(
        "Top-N deconvolution",
        text=[
            f"Each row is one featured filter of {layer} (label: filter, its chosen AU and that pair's q); left to "
            f"right, its {topn.n} strongest images, keeping only the strongest activation and projecting it back to "
            f"pixels ({_rule_label(topn)} rule), cropped to the unit's receptive field — the layout of the paper's Figures 1, "
            "3 and 4. Filters are ordered by the strength of their AU association"
            + ("." if faukl is not None else " (none without AU labels: by activation).")
            + " Every filter is in the filter browser at the end.",
        ],
        figures=[
            (grid, f"Reconstructions of the {len(featured)} featured filters (paper Fig. 1/3/4 layout)"),
            (patches, "The same windows of the input images"),
        ],  # fmt: skip
        notes=[c for c in (getattr(topn, "rule_caveat", None), caveat) if c],
    )


def _faukl_sections(out: Path, faukl: Any, layer: str, featured: list[int]) -> list[Section]:
    """Paper Table 4 and Fig. 5 for the featured filters, and the AU x filter heat map."""
    bars_png = save_figure(faukl.plot_bars(featured, layer, ncols=2, figsize_per_panel=(4.8, 2.6)), out / "kl_bars.png")
    rows = faukl.table_rows(featured, layer)
    table = Section(
        "Filter → action unit (paper Table 4)",
        text=[
            "For each featured filter, its top AU is the AU with the smallest p of the main test (the two-sided "
            "AUROC permutation test; ties by the permutation-standardised AUROC), so the AU shown, its q, the "
            "significance flag, the grid label and the localisation check are one test (the paper's rule, argmax "
            "KL, favours rare AUs: FAUKLResult.table(by='kl')). Dead filters get no AU. KL = D_KL(Q‖R), Q over "
            "images with the AU, R without. Each statistic has its own permutation test: q (KL) and q (AUROC), "
            "Benjamini–Hochberg over all tested filter × AU pairs; 'untested' where the design leaves too few "
            "exchangeable subjects. AUROC interval: 95%, clustered on subjects (delete-one-subject jackknife, "
            "logit scale, Student t with one degree of freedom fewer than the smaller of the subject groups with "
            "and without the AU); 'approx.' with the subject count where that group has fewer than 10 subjects. "
            "'Nearly as strong': other significant AUs with at least 80% of the top AU's effect (co-occurring AUs)."
            + (
                " Within-strata q-values: permutations inside each level of the stratifying label "
                "(association beyond what it explains)."
                if faukl.stats(layer).stratified
                else ""
            )
        ]
        + [n for n in faukl.stats(layer).notes if n.startswith("WARNING")],
        table=(
            # each test's q beside its statistic, so that both stay in view on a phone; the interval last
            [
                "filter",
                "AU",
                "name",
                "KL",
                "KL z",
                "q (KL)",
                "AUROC",
                "q (AUROC)",
                "CI low",
                "CI high",
                "nearly as strong",
            ]
            + (["q (KL, within)", "q (AUROC, within)"] if faukl.stats(layer).stratified else []),
            [
                [
                    r["filter"],
                    r["au"] or "—",
                    r["name"] + (" (dead)" if r["dead"] else ""),
                    r["kl"],
                    r["kl_z"],
                    r["q_kl"],
                    r["auroc"],
                    r["q_auroc"],
                    r["auroc_ci_low"],
                    f"{r['auroc_ci_high']:.3f} approx. ({r['ci_subjects']} subjects)"
                    if r["ci_approximate"]
                    else r["auroc_ci_high"],
                    ", ".join(r["also"]),
                ]
                + ([r["q_kl_within"], r["q_auroc_within"]] if "q_kl_within" in r else [])
                for r in rows
            ],
        ),  # fmt: skip
    )
    bars = Section(
        "KL divergence of every AU (paper Fig. 5)",
        text=["One panel per featured filter; its top AU (smallest p of the main test) in red, * where q (KL) < 0.05."],
        figures=[(bars_png, "KL divergence per AU for each featured filter")],
    )
    st = faukl.stats(layer)
    shown = min(40, st.kl.shape[0])
    order = np.argsort(-np.where(st.testable, st.kl_corrected, -np.inf).max(axis=1), kind="stable")[:shown]
    cols = sorted(range(len(faukl.au_ids)), key=lambda j: au_sort_key(faukl.au_ids[j]))
    plot_au_heatmap(
        st.kl_corrected[order][:, cols], [faukl.au_ids[j] for j in cols], [int(f) for f in order],
        significant=((st.q[order] < 0.05) & st.testable[order])[:, cols], colorbar_label="KL minus permutation mean",
        title=f"Null-corrected KL, the {shown} most associated filters", path=out / "au_heatmap.png",
    )  # fmt: skip
    heatmap = Section(
        "AU × filter heat map",
        text=[
            f"The {shown} filters with the largest null-corrected KL (of {st.kl.shape[0]}); all filters are in "
            "the filter browser and fau_kl.csv."
        ],  # fmt: skip
        figures=[(out / "au_heatmap.png", f"Null-corrected KL, the {shown} most associated filters; dots: q < 0.05")],
    )
    return [table, bars, heatmap]


def _localisation_section(out: Path, localisation: dict[str, Any], faukl: Any | None, layer: str) -> Section:
    """Agreement of FAU-KL's top AU with the AU region that holds most of the reconstruction energy."""
    per = localisation["per_filter"]
    figs = []
    if per:
        by_au: dict[str, list[bool]] = defaultdict(list)
        for row in per:
            by_au[row["fau_kl_au"]].append(row["agree"])
        rates = {f"{au} ({len(by_au[au])})": float(np.mean(by_au[au])) for au in sorted(by_au, key=au_sort_key)}
        title = "Localisation agreement per FAU-KL top AU (filters)"
        plot_agreement(rates, title=title, path=out / "localisation.png")
        rule = localisation.get("rule_label", "largest energy")
        figs.append(
            (out / "localisation.png", title + f": share of filters whose AU region with the {rule} is that AU's")
        )
        _localisation_csv(out / "localisation.csv", per)
    rate = localisation.get("rate")
    shown = per[:LOCALISATION_ROWS]
    note = (f"Showing {len(shown)} of {len(per)} filters; every filter's row is in the filter browser and in"
            if len(per) > len(shown) else "All rows are also in")  # fmt: skip
    label = localisation.get("rule_label", "largest energy")
    hit, chance = localisation.get("pointing_hit"), localisation.get("pointing_chance")
    others = [
        f"{name} ({text}): {r:.0%}"
        for name, (text, r) in (localisation.get("comparison") or {}).items()
        if r is not None
    ]
    return Section(
        "Localisation check against ground-truth AU regions",
        text=[
            f"Rule: {localisation.get('rule', '?')}. " + localisation.get("rule_description", "")
            + f" Agreement means the AU region with the {label} is FAU-KL's top AU; the table says 'weak' "
            + f"where that region holds less than {AGREE_MIN_SHARE:.0%} of the reconstruction energy. "
            + (f"Agreement: {rate:.0%} of {localisation['n_filters']} filters." if rate is not None
               else "No filter had a significant association."),
            *(["Comparison only — the same agreement under other rules: " + "; ".join(others) + "."] if others else []),
            *([f"Pointing game: {hit:.0%} of the reconstructions' maxima fall inside FAU-KL's top AU region "
               f"(chance, its area share: {chance:.0%})."] if hit is not None and chance is not None else []),
            "Where AUs co-occur (prototypical expressions such as 1+2+5+26 in surprise), neighbouring AUs "
            "share the statistical credit and overlapping regions share the energy, so disagreements often "
            "name a partner AU of the same expression; SynthFACS's independent mode separates them "
            "(faces rendered with captum-fau data synthfacs --mode independent show the agreement without them).",
        ],
        figures=figs,
        table=(["filter", "FAU-KL top AU", f"AU region ({localisation.get('rule', '?')} rule)", "maxima inside",
                "area share", "energy share", "largest raw energy", "agree"],
               [[r["filter"], r["fau_kl_au"], r["region_au"], r.get("region_hits"), r.get("area"), r["share"],
                 r.get("energy_au", ""), agreement_word(r)] for r in shown]) if per else None,
        table_note=note if per else "",
        table_csv="localisation.csv" if per else None,
    )  # fmt: skip


def _localisation_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    num = lambda v: "" if v is None else f"{v:.6g}"  # noqa: E731
    lines = ["filter,fau_kl_au,region_au,rule,region_hits,area,lift,share,energy_au,agree"]
    lines += [
        f"{r['filter']},{r['fau_kl_au']},{r['region_au']},{r.get('rule', '')},{num(r.get('region_hits'))},"
        f"{num(r.get('area'))},{num(r.get('lift'))},{r['share']:.6g},{r.get('energy_au', '')},{int(bool(r['agree']))}"
        for r in rows
    ]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _accuracy_section(out: Path, accuracy: dict[str, Any], provenance: dict[str, Any]) -> Section:
    """Expression-recognition accuracy and the confusion matrix, with whether the faces were held out."""
    cm_png = out / "confusion.png"
    plot_confusion(np.asarray(accuracy["confusion"]), accuracy["class_names"], path=cm_png)
    held = provenance.get("held_out", False)
    status = (f"Held out: {provenance.get('reason')}." if held else
              f"Not verified as held out ({provenance.get('reason', 'no record of the training data')}): the accuracy "
              "may include images the model was trained on.")  # fmt: skip
    return Section(
        "Expression recognition",
        text=[
            f"Accuracy {accuracy['accuracy']:.1%} over {accuracy['n']} labelled images, the data's classes matched "
            "to the model's by name (rows and columns in the model's class order)"
            + (
                f"; {accuracy['n_left_out']} images of classes the model lacks left out."
                if accuracy.get("n_left_out")
                else "."
            ),
            status,
        ],  # fmt: skip
        figures=[(cm_png, "Confusion matrix (rows: true, columns: predicted)")],
        table=(["class", "accuracy"], [[k, v] for k, v in accuracy["per_class_accuracy"].items()]),
    )


def _files_section(with_faukl: bool, with_localisation: bool, with_sanity: bool = False) -> Section:
    """The machine-readable files next to the page."""
    files = ["topn.safetensors", "topn.json", "maxima.npz"] + (
        ["fau_kl.safetensors", "fau_kl.csv"] if with_faukl else []
    )
    files += ["localisation.csv"] if with_localisation else []
    files += ["sanity.json"] if with_sanity else []
    return Section(
        "Files",
        text=[
            "Machine-readable results in this folder: results.json, " + ", ".join(files) + "; one top-N strip per "
            "filter in filters/. The folder is the report: copy it whole."
        ],  # fmt: skip
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


__all__ = ["build_report", "sanity_figure", "sanity_results", "sanity_section"]
