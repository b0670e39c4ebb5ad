"""The sanity-check part of the analysis report: its section, its ``results.json`` entry and its figure.

The model-randomisation check (:mod:`captum_fau.attr.sanity`) reaches the report as a result object; this
module turns it into text, a table and a figure of trained vs randomised reconstructions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau.viz.report import Section


def _step_label(step: dict[str, Any]) -> str:
    """``conv3 + conv2`` for a cascade stage, ``only conv2`` for an independent step."""
    return ("" if step["mode"] == "cascade" else "only ") + " + ".join(step["randomised"])


def _spread(row: dict[str, Any], measure: str) -> str:
    """``0.90 (0.88-0.92)``: the median over filters and the interquartile range."""
    med, q1, q3 = (row.get(f"{measure}_filter_{k}") for k in ("median", "q1", "q3"))
    return "n/a" if med is None else f"{med:.2f} ({q1:.2f}-{q3:.2f})"


def sanity_results(sanity: Any) -> dict[str, Any]:
    """The sanity check as ``results.json`` states it: what was checked, in which order, how it was
    measured, the per-step spread, the per-filter values and the interpretation."""
    selection = dict(sanity.meta.get("selection") or {})
    featured = set(selection.get("featured") or [])
    per_ssim, per_rho = sanity.per_filter("ssim"), sanity.per_filter("spearman")
    images = sanity.images if sanity.images is not None else None
    labels = [_step_label(step) for step in sanity.steps]
    per_filter = [{
        "filter": int(f), "chosen_as": "featured" if int(f) in featured else
        "seeded sample" if selection.get("rule") == "featured + seeded sample" else selection.get("rule", "given"),
        "images": None if images is None else [int(i) for i in images[k]],
        "ssim": {label: _finite(per_ssim[s, k]) for s, label in enumerate(labels)},
        "spearman": {label: _finite(per_rho[s, k]) for s, label in enumerate(labels)},
    } for k, f in enumerate(sanity.filters)]  # fmt: skip
    return {
        "layer": sanity.layer, "rule": sanity.rule, "seed": sanity.seed, "filters_checked": len(sanity.filters),
        "images_per_filter": sanity.meta.get("n"), "pairs": sanity.meta.get("pairs"), "selection": selection,
        "images_are": "0-based positions in the analysed data, as the 'indices' of topn.safetensors; the top ranks",
        "cascade_order": labels, "layers_below": list(sanity.layers), "layers_above_not_randomised": list(sanity.above),
        "randomisation": sanity.meta.get("randomisation"),
        "measures": "SSIM of the maps as drawn (0.5 + 0.5 r / max|r|, gaussian window sigma 1.5) and Spearman rank "
                    "correlation of |r| over the receptive field, trained vs randomised; per filter the mean over its "
                    "images, per step the median and quartiles over filters",
        "summary": sanity.summary(), "per_filter": per_filter, "interpretation": sanity.interpretation,
        "reading": sanity.reading,
        "file": "sanity.json",
    }  # fmt: skip


def _finite(value: Any) -> float | None:
    value = float(value)
    return round(value, 4) if np.isfinite(value) else None


def _sanity_text(sanity: Any) -> list[str]:
    """What was checked, in which order, and how it was measured."""
    sel = dict(sanity.meta.get("selection") or {})
    count, total = len(sanity.filters), sel.get("filters_in_layer", len(sanity.filters))
    if sel.get("rule") == "featured + seeded sample":
        which = (f"{count} of the {total} filters of {sanity.layer}: the {len(sel.get('featured', []))} featured filters, "
                 f"then {len(sel.get('sampled', []))} drawn at random (seed {sel.get('seed')}) among the other "
                 f"{sel.get('live_filters', total) - len(sel.get('featured', []))} live filters")  # fmt: skip
        if sel.get("featured_dead"):
            which += f"; featured filters {', '.join(map(str, sel['featured_dead']))} never respond and are left out"
    elif sel.get("rule") == "all live":
        which = f"all {count} live filters of the {total} of {sanity.layer}"
    else:
        which = f"{count} of the {total} filters of {sanity.layer}"
    rule = {"guided": "guided-backpropagation", "deconv": "deconvnet", "gradient": "gradient"}.get(
        sanity.rule, sanity.rule
    )
    above = ", ".join(sanity.above) or "none"
    cascade = " → ".join(_step_label(s) for s in sanity.steps if s["mode"] == "cascade")
    alone = ", ".join(_step_label(s) for s in sanity.steps if s["mode"] == "independent")
    return [
        f"Checked: the top {sanity.meta.get('n', '?')} images of {which} ({sanity.meta.get('pairs', '?')} reconstructions; "
        "every filter and image is listed below and in sanity.json). Each was reconstructed again by the same "
        f"{rule} code with random weights (normal draws with each trained tensor's mean and sd, seed {sanity.seed}) "
        "and compared with its trained reconstruction above (Adebayo et al., 2018).",
        f"Order: the layers above {sanity.layer} ({above}) do not change the reconstruction of a {sanity.layer} unit, "
        f"which depends only on {sanity.layer} and the layers below it, so they are not randomised; the cascade starts "
        f"at {sanity.layer} and goes down: {cascade}" + (f"; then each lower layer alone: {alone}." if alone else "."),
        "Measures: SSIM of the pictures as drawn (each scaled by its own largest |value|; 1 = unchanged, about 0 = "
        "unrelated) and Spearman rank correlation of |reconstruction| over the receptive field. Per filter: the mean "
        "over its images; per step (table): the median over filters and, in brackets, the interquartile range. "
        "The sentence below reads a median SSIM of 0.7 or more as 'depend little on' the randomised weights, "
        "0.4-0.7 as 'partly', under 0.4 as 'depend on' (conventions for reading, not a test).",
    ]


def sanity_section(sanity: Any, figure: str | Path | None = None) -> Section:
    """The model-randomisation check (Adebayo et al. 2018): what was checked, the similarity per
    randomisation step with its spread over filters, the per-filter values and the interpretation."""
    steps = _html_table(["randomised", "SSIM (IQR)", "Spearman (IQR)"],
                        [[_step_label(step), _spread(r, "ssim"), _spread(r, "spearman")]
                         for step, r in zip(sanity.steps, sanity.summary())])  # fmt: skip
    res = sanity_results(sanity)
    labels = [_step_label(s) for s in sanity.steps if s["mode"] == "cascade"]
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    table = _html_table(["filter", "chosen as", "images"] + [f"SSIM after {label}" for label in labels],
                        [[str(r["filter"]), str(r["chosen_as"]), ", ".join(str(i) for i in r["images"] or [])]
                         + [fmt(r["ssim"][lab]) for lab in labels] for r in res["per_filter"]])  # fmt: skip
    per_filter = (
        f'<details class="sanity-filters"><summary>Per filter: the {len(res["per_filter"])} filters checked, '
        f"their images (dataset indices) and mean SSIM after each cascade stage</summary>{table}</details>"
    )
    figures = [(figure, "The top image of featured filters: the input window, its trained reconstruction, and its "
                        "reconstruction after each cascade stage, with the SSIM to the trained one")] if figure else []  # fmt: skip
    return Section(
        "Sanity check: reconstructions with randomised weights",
        text=_sanity_text(sanity),
        notes=[sanity.interpretation],
        figures=figures,
        html=steps + per_filter,
    )  # fmt: skip


def _html_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of escaped strings whose cells may wrap (so that it fits a phone), numbers right-aligned."""
    import html

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    cell = (
        lambda v: (
            f'<td class="num" style="white-space:normal">{html.escape(v)}</td>'  # noqa: E731
            if v[:1].isdigit() or v == "n/a"
            else f'<td style="white-space:normal">{html.escape(v)}</td>'
        )
    )
    body = "".join("<tr>" + "".join(cell(str(v)) for v in row) + "</tr>" for row in rows)
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def sanity_figure(path: str | Path, sanity: Any, topn: Any, filters: Sequence[int], count: int = 4) -> Path | None:
    """Draw the top image of up to ``count`` of ``filters`` (those checked, in order): input window, trained
    reconstruction, and each cascade stage's randomised reconstruction with its SSIM. Needs a check run with
    ``keep_reconstructions=True``; returns None without one."""
    from captum_fau.viz.figures import new_figure, save_figure

    if sanity.reconstructions is None:
        return None
    checked = [int(f) for f in sanity.filters]
    chosen = [f for f in filters if f in checked and np.isfinite(sanity.ssim[0, checked.index(f), 0])][:count]
    if not chosen:
        return None
    cascade = [k for k, s in enumerate(sanity.steps) if s["mode"] == "cascade"]
    if len(cascade) > 4:  # deep models: the first, last and two stages between
        cascade = [cascade[int(round(i))] for i in np.linspace(0, len(cascade) - 1, 4)]
    cols = 2 + len(cascade)
    fig = new_figure((1.45 * cols, 2.05 * len(chosen)))
    for r, f in enumerate(chosen):
        k, row = checked.index(f), topn.row(f)
        window = topn.image_patches[row, 0].numpy()
        panels = [(window, False, "input"), (topn.patches[row, 0].numpy(), True, "trained")]
        panels += [(sanity.reconstructions[s, k, 0].numpy(), True,
                    f"{_stage_title(sanity.steps[s])}\nSSIM {sanity.ssim[s, k, 0]:.2f}") for s in cascade]  # fmt: skip
        for c, (img, centred, title) in enumerate(panels):
            ax = fig.add_subplot(len(chosen), cols, r * cols + c + 1)
            ax.imshow(_panel(img, centred), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"filter {f}", fontsize=9)
    fig.suptitle(f"{sanity.layer}: trained vs randomised weights (cascade from {sanity.layer} down)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _stage_title(step: dict[str, Any]) -> str:
    """``random conv3`` / ``random conv3\ndown to conv1``: a cascade stage in two short lines."""
    layers = step["randomised"]
    return f"random {layers[0]}" + (f"\ndown to {layers[-1]}" if len(layers) > 1 else "\n")


def _panel(img: np.ndarray, centred: bool) -> np.ndarray:
    """``[C, h, w]`` to a 2-D grey image in [0, 1] as the report draws it (channels averaged)."""
    img = img.astype(np.float32).mean(axis=0)
    if centred:
        return 0.5 + 0.5 * img / (float(np.abs(img).max()) or 1.0)
    low, high = float(img.min()), float(img.max())
    return (img - low) / ((high - low) or 1.0)


__all__ = ["sanity_figure", "sanity_results", "sanity_section"]
