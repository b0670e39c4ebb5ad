"""The filter browser of the report: every filter of the analysed layer, each with its own entry.

Each filter ``K`` gets ``<details id="filter-K">``: its top-N strip (reconstructions above the
input windows, one PNG in ``filters/`` loaded lazily), its KL bars over every AU (HTML, so their
text stays legible on any screen) with the chosen AU marked, the statistics of the chosen AU and
its localisation when there is one. A sortable, filterable index table of all filters (by AU,
effect and q) sits above the entries; its script is inline, so the page works from disk.

Examples::

    >>> from captum_fau.viz.filter_browser import au_sort_key
    >>> sorted(["AU15", "AU2", "AU1", "AU12"], key=au_sort_key)
    ['AU1', 'AU2', 'AU12', 'AU15']
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captum_fau._utils import shell
from captum_fau._utils.io import atomic_write_bytes
from captum_fau.viz.report import Section

#: Sub-folder of the report that holds one strip per filter.
STRIP_FOLDER = "filters"
#: Screen pixels per patch pixel in the strips (nearest neighbour, so pixels stay sharp).
STRIP_ZOOM = 2


def statistic_label(test: str) -> str:
    """The statistic a q-value belongs to, as the report names it: ``"auroc"`` -> ``"AUROC"``.

    Examples::

        >>> statistic_label("auroc"), statistic_label("kl")
        ('AUROC', 'KL')
    """
    return {"auroc": "AUROC", "kl": "KL"}.get(test, test)


def au_sort_key(au: str) -> tuple[int, str]:
    """Sort key that puts AUs in numeric order (AU2 before AU15); names without a number go last."""
    match = re.search(r"(\d+)", str(au))
    return (int(match.group(1)) if match else 10**9, str(au))


def _to_uint8(patches: np.ndarray, centred: bool, shown: bool = False) -> np.ndarray:
    """``[N, C, h, w]`` floats to ``[N, h, w, C]`` uint8, each patch stretched on its own (``shown``: already in
    [0, 1] as the model saw it, drawn as it is)."""
    out = []
    for patch in patches.astype(np.float32):
        if centred:  # reconstructions: zero is mid-grey, symmetric stretch (deconvnet figures)
            img = 0.5 + 0.5 * patch / (float(np.abs(patch).max()) or 1.0)
        elif shown:
            img = patch
        else:
            low, high = float(patch.min()), float(patch.max())
            img = (patch - low) / ((high - low) or 1.0)
        out.append((img.clip(0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0))
    return np.stack(out)


def strip_image(
    recon: np.ndarray, windows: np.ndarray, zoom: int = STRIP_ZOOM, gap: int = 2, shown: bool = False
) -> np.ndarray:
    """One filter's strip: its top-N reconstructions (top row) over their input windows (bottom row).

    Args:
        recon (np.ndarray): ``[N, C, h, w]`` reconstructions.
        windows (np.ndarray): ``[N, C, h, w]`` input pixels of the same windows.
        zoom (int, optional): Pixel repetition. Default: :data:`STRIP_ZOOM`
        gap (int, optional): White pixels between patches. Default: 2
        shown (bool, optional): ``windows`` are in [0, 1] as the model saw them (``TopNResult.display_windows``),
            drawn without a stretch. Default: False (each window stretched on its own)

    Returns:
        np.ndarray: ``[H, W, 3]`` uint8 image (RGB).
    """
    rows = []
    for tiles in (_to_uint8(recon, True), _to_uint8(windows, False, shown)):
        if tiles.shape[-1] == 1:
            tiles = np.repeat(tiles, 3, axis=-1)
        tiles = tiles.repeat(zoom, axis=1).repeat(zoom, axis=2)
        n, h, w, _ = tiles.shape
        row = np.full((h, n * (w + gap) - gap, 3), 255, np.uint8)
        for k in range(n):
            row[:, k * (w + gap) : k * (w + gap) + w] = tiles[k]
        rows.append(row)
    spacer = np.full((gap * 2, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], spacer, rows[1]], axis=0)


def write_strips(out: Path, topn: Any) -> dict[int, tuple[str, int, int]]:
    """Write ``out/filters/filter-K.png`` for every filter; returns ``{K: (relative path, width, height)}``."""
    import cv2

    folder = Path(out) / STRIP_FOLDER
    strips: dict[int, tuple[str, int, int]] = {}
    shown = topn.display_windows() if callable(getattr(topn, "display_windows", None)) else None
    recon_all = topn.patches.float().numpy()
    windows_all = (topn.image_patches if shown is None else shown).float().numpy()
    for row, f in enumerate(topn.filters.tolist()):
        image = strip_image(recon_all[row], windows_all[row], shown=shown is not None)
        ok, png = cv2.imencode(".png", image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode the strip of filter {f} as PNG.")
        atomic_write_bytes(folder / f"filter-{int(f)}.png", png.tobytes())
        strips[int(f)] = (f"{STRIP_FOLDER}/filter-{int(f)}.png", int(image.shape[1]), int(image.shape[0]))
    return strips


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2g}"
    return f"{value:.{digits}f}"


def _bars_html(faukl: Any, st: Any, f: int, chosen: str, order: list[int], alpha: float) -> str:
    """KL of every AU as HTML bars, AUs in numeric order, the chosen AU marked."""
    kl = np.nan_to_num(st.kl[f], nan=0.0, posinf=0.0)
    top = float(kl.max()) or 1.0
    rows = []
    for j in order:
        au = faukl.au_ids[j]
        testable = bool(st.testable[f, j])
        star = "*" if testable and st.q_kl[f, j] < alpha else ""
        cls = "bar-row chosen" if au == chosen else "bar-row"
        width = max(0.0, 100 * kl[j] / top)
        label = f"{_fmt(float(st.kl[f, j]))}{star}" if testable else "untestable"
        rows.append(
            f'<div class="{cls}"><span class="au">{html.escape(au)}</span>'
            f'<span class="track"><span class="bar" style="width:{width:.1f}%"></span></span>'
            f'<span class="v">{html.escape(label)}</span></div>'
        )
    return '<div class="bars" role="list">' + "".join(rows) + "</div>"


#: The least share of a filter's reconstruction energy inside the chosen AU's region for the report to say the
#: localisation agrees with the AU; below it a matching region is called weak (the share is always stated).
AGREE_MIN_SHARE = 0.25


def agreement_word(loc: dict[str, Any]) -> str:
    """``yes``, ``weak`` (the region matches with less than :data:`AGREE_MIN_SHARE` of the energy) or ``no``."""
    if not loc["agree"]:
        return "no"
    return "yes" if float(loc["share"]) >= AGREE_MIN_SHARE else "weak"


def localisation_verdict(loc: dict[str, Any]) -> str:
    """What a filter's localisation says about its chosen AU, in words that follow the energy share.

    Examples::

        >>> localisation_verdict({"agree": True, "share": 0.08, "region_au": "AU12"})
        'the region is the chosen AU but holds only 8% of the reconstruction energy (agreement needs 25% or more)'
        >>> localisation_verdict({"agree": True, "share": 0.6, "region_au": "AU12"})
        'agrees with the chosen AU: 60% of the reconstruction energy lies in its region (25% or more needed)'
    """
    share, need = float(loc["share"]), f"{AGREE_MIN_SHARE:.0%}"
    word = agreement_word(loc)
    if word == "yes":
        return (f"agrees with the chosen AU: {share:.0%} of the reconstruction energy lies in its region ({need} or "
                "more needed)")  # fmt: skip
    if word == "weak":
        return (f"the region is the chosen AU but holds only {share:.0%} of the reconstruction energy (agreement "
                f"needs {need} or more)")  # fmt: skip
    return f"differs from the chosen AU: the most concentrated energy ({share:.0%}) lies in {loc['region_au']}'s region"


def _stats_html(row: dict[str, Any], loc: dict[str, Any] | None) -> str:
    cells = [("chosen AU", f"{row['au']}: {row['name']} ({row['rule']})"), ("KL", _fmt(row["kl"])),
             ("KL − null mean", _fmt(row["kl_corrected"])), ("KL z (null-standardised)", _fmt(row["kl_z"])),
             ("p (KL permutation)", _fmt(row["p_kl"], 4)), ("q (KL, BH)", _fmt(row["q_kl"], 4)),
             ("AUROC [95% CI]", f"{_fmt(row['auroc'])} [{_fmt(row['auroc_ci_low'])}, {_fmt(row['auroc_ci_high'])}]"),
             ("p (AUROC permutation)", _fmt(row["p_auroc"], 4)), ("q (AUROC, BH)", _fmt(row["q_auroc"], 4))]  # fmt: skip
    if row.get("ci_approximate"):
        cells.append(("interval", f"approximate: {row['ci_subjects']} subjects on the smaller side of the AU"))
    if row.get("also"):
        cells.append(("nearly as strong", ", ".join(row["also"])))
    if row.get("dead"):
        cells.append(("note", "dead filter (constant activation)"))
    if loc is not None:
        hits = (
            f", {loc['region_hits']:.0%} of the maxima inside, area share {loc['area']:.0%}"
            if loc.get("region_hits") is not None and loc.get("area") is not None
            else ""
        )
        rule = f" by the {loc['rule']} rule" if loc.get("rule") else ""
        cells.append(
            (
                "localisation",
                f"AU region {loc['region_au']}{rule} (energy share {loc['share']:.0%}{hits}); "
                f"{localisation_verdict(loc)}",
            )
        )
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in cells)
    return f'<dl class="kv fstats">{items}</dl>'


def _index_row(f: int, row: dict[str, Any] | None, loc: dict[str, Any] | None, top_value: float) -> str:
    link = f'<td data-v="{f}"><a href="#filter-{f}">{f}</a></td>'
    if row is None:
        return f'<tr>{link}<td class="num" data-v="{top_value:.6g}">{_fmt(top_value)}</td></tr>'
    num = lambda v, d=3: f'<td class="num" data-v="{v:.6g}">{html.escape(_fmt(v, d))}</td>'  # noqa: E731
    loc_cell = "–" if loc is None else f"{loc['region_au']} ({agreement_word(loc)})"
    return (
        f'<tr data-au="{html.escape(row["au"])}" data-sig="{int(row["significant"])}">{link}'
        f'<td data-v="{au_sort_key(row["au"])[0]}">{html.escape(row["au"])}</td><td>{html.escape(row["name"])}</td>'
        f"{num(row['kl'])}{num(row['kl_corrected'])}{num(row['auroc'])}{num(row['q'], 4)}"
        f"<td>{'yes' if row['significant'] else 'no'}</td><td>{html.escape(loc_cell)}</td>"
        f'<td class="num" data-v="{top_value:.6g}">{_fmt(top_value)}</td></tr>'
    )


def _index_html(entries: list[tuple[int, dict[str, Any] | None, dict[str, Any] | None, float]], aus: list[str]) -> str:
    with_stats = entries and entries[0][1] is not None
    if with_stats:
        test = statistic_label(str(entries[0][1]["test"]))
        heads = [
            "filter",
            "AU",
            "name",
            "KL",
            "KL − null",
            "AUROC",
            f"q ({test})",
            "q < 0.05",
            "localisation",
            "max act.",
        ]
        options = "".join(f'<option value="{html.escape(a)}">{html.escape(a)}</option>' for a in aus)
        controls = (
            '<div class="fcontrols"><label>AU <select id="fb-au"><option value="">all</option>'
            + options
            + "</select></label>"
            '<label>q ≤ <input id="fb-q" type="number" step="0.01" min="0" max="1" value="1"></label>'
            '<label>KL − null ≥ <input id="fb-eff" type="number" step="0.01" value=""></label>'
            '<label><input id="fb-sig" type="checkbox"> significant only</label>'
            '<span id="fb-count" class="meta"></span></div>'
        )
    else:
        heads, controls = (
            ["filter", "max activation"],
            '<div class="fcontrols"><span id="fb-count" class="meta"></span></div>',
        )
    head = "".join(f'<th data-col="{i}" tabindex="0" title="sort">{html.escape(h)}</th>' for i, h in enumerate(heads))
    body = "".join(_index_row(*e) for e in entries)
    return (
        controls + '<div class="table-wrap findex"><table id="fb-index"><thead><tr>' + head
        + "</tr></thead><tbody>" + body + "</tbody></table></div>"
    )  # fmt: skip


def filter_browser_section(
    out: Path,
    topn: Any,
    faukl: Any | None,
    layer: str,
    localisation: dict[str, Any] | None,
    featured: Sequence[int],
    alpha: float = 0.05,
) -> Section:
    """The browser: an index table of every filter and one ``<details id="filter-K">`` entry each.

    Args:
        out (Path): The report folder (strips go to ``out/filters/``).
        topn (TopNResult): Top-N reconstructions of every filter of the layer.
        faukl (FAUKLResult, optional): Statistics; None without AU labels.
        layer (str): The analysed layer.
        localisation (dict, optional): Output of the localisation check (``per_filter`` rows).
        featured (sequence of int): Filters whose entries start open.
        alpha (float, optional): Significance level of the marks. Default: 0.05

    Returns:
        Section: with the browser in ``html``.
    """
    strips = write_strips(out, topn)
    st = faukl.stats(layer) if faukl is not None else None
    # a dead filter, or one without a testable AU, is named by no AU
    rows = {r["filter"]: {**r, "au": r["au"] or "—"} for r in faukl.table_rows(None, layer, alpha)} if faukl else {}
    locs = {r["filter"]: r for r in (localisation or {}).get("per_filter", [])}
    order = sorted(range(len(faukl.au_ids)), key=lambda j: au_sort_key(faukl.au_ids[j])) if faukl is not None else []
    top_values = topn.top_values()  # every searched filter, reconstructed or pending
    entries, blocks = [], []
    featured_set = {int(f) for f in featured}
    for f in top_values:
        row, loc = rows.get(f), locs.get(f)
        entries.append((f, row, loc, top_values[f]))
        summary = f"<b>Filter {f}</b> · max activation {_fmt(top_values[f])}" + ("" if f in strips else " · pending")
        detail = ""
        if row is not None and st is not None:
            summary += (f" · {html.escape(row['au'])} {html.escape(row['name'])} · KL − null {_fmt(row['kl_corrected'])}"
                        f" · q ({statistic_label(row['test'])}) {_fmt(row['q'], 4)}{' *' if row['significant'] else ''}")  # fmt: skip
            detail = (
                '<div class="fcols"><div><p class="meta">KL of every AU (red: the chosen AU, '
                f"{html.escape(row['rule'])}; * q (KL) &lt; {alpha})</p>"
                + _bars_html(faukl, st, f, row["au"], order, alpha)
                + "</div>"
                "<div>" + _stats_html(row, loc) + "</div></div>"
            )
        blocks.append(
            f'<details class="filt" id="filter-{f}"{" open" if f in featured_set else ""}><summary>{summary}</summary>'
            f"{_strip_html(f, strips.get(f), topn, out)}{detail}</details>"
        )
    aus = sorted(faukl.au_ids, key=au_sort_key) if faukl is not None else []
    text = [
        f"Every one of the {len(entries)} filters of {layer} has an entry below (link to one with #filter-K). "
        "The index table sorts by any column (click its header) and filters by AU, q and effect; "
        "the filters featured in the figures above start open."
    ]
    if topn.pending_filters:
        text.append(
            f"Reconstructed: {len(strips)} of {len(entries)} filters (the featured, then significant and strongest "
            f"ones within the run's size budget). The other {len(topn.pending_filters)} are pending: their top-N "
            "images are found but not back-projected; complete them with "
            f"{html.escape(shell.captum_fau('topn', '--out', out, '--filters', 'K,...'))} "
            "(the run's --model, --data, --layer and --rule) and rebuild the report by rerunning analyze."
        )
    return Section("Filter browser", text=text, anchor="filters",
                   html=_index_html(entries, aus) + '<div class="fentries">' + "".join(blocks) + "</div>")  # fmt: skip


def _strip_html(f: int, strip: tuple[str, int, int] | None, topn: Any, out: Path) -> str:
    """A filter's strip as a figure (scaled to the width, the full-size image one tap away), or the pending note."""
    if strip is None:
        return (
            f'<p class="meta">Not reconstructed in this run (pending). Complete it with <code>captum-fau topn '
            f"--out {html.escape(str(out))} --filters {f}</code> and the run's --model, --data, --layer and --rule.</p>"
        )
    src, width, height = strip
    label, caveat = str(getattr(topn, "rule_label", topn.rule)), getattr(topn, "rule_caveat", None)
    return (
        f'<figure><a href="{html.escape(src)}" title="full size"><img class="fit" src="{html.escape(src)}" width="{width}" '
        f'height="{height}" loading="lazy" alt="Filter {f}: top-{topn.n} reconstructions above their input windows"></a>'
        f"<figcaption>Top: the {topn.n} strongest reconstructions ({html.escape(label)} rule), strongest left; "
        "bottom: the same windows of the input images (tap for full size)."
        + (f" {html.escape(caveat)}." if caveat else "")
        + "</figcaption></figure>"
    )


BROWSER_CSS = """
.fcontrols { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; margin: .5rem 0; }
.fcontrols input[type=number] { width: 5.5em; }
.findex { max-height: 28rem; overflow-y: auto; }
#fb-index th { cursor: pointer; user-select: none; }
#fb-index th.asc::after { content: " ▲"; } #fb-index th.desc::after { content: " ▼"; }
details.filt { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0; padding: .3rem .6rem; }
details.filt summary { cursor: pointer; }
details.filt:target { outline: 3px solid var(--accent); }
.fcols { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; }
.bars { font-size: .85rem; }
.bar-row { display: grid; grid-template-columns: 3.6em 1fr 6.5em; gap: .4rem; align-items: center; line-height: 1.35; }
.bar-row .track { background: #f1f1f1; height: .8em; }
.bar-row .bar { display: block; height: 100%; background: #9e9e9e; }
.bar-row.chosen .bar { background: var(--accent); } .bar-row.chosen { font-weight: 600; }
.bar-row .v { text-align: right; font-variant-numeric: tabular-nums; }
.fstats { font-size: .9rem; }
@media (max-width: 600px) { .fcols { grid-template-columns: 1fr; } details.filt figure img { max-width: 100%; } }
"""

BROWSER_SCRIPT = r"""
(function () {
  var table = document.getElementById('fb-index'); if (!table) return;
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  function value(row, col) {
    var cell = row.cells[col]; if (!cell) return '';
    var v = cell.getAttribute('data-v'); return v === null ? cell.textContent : parseFloat(v);
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    function sort() {
      var col = +th.getAttribute('data-col'), asc = !th.classList.contains('asc');
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = value(a, col), y = value(b, col);
        var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
  });
  var au = document.getElementById('fb-au'), q = document.getElementById('fb-q');
  var eff = document.getElementById('fb-eff'), sig = document.getElementById('fb-sig');
  var count = document.getElementById('fb-count');
  function apply() {
    var shown = 0;
    rows.forEach(function (r) {
      var ok = true;
      if (au && au.value) ok = ok && r.getAttribute('data-au') === au.value;
      if (sig && sig.checked) ok = ok && r.getAttribute('data-sig') === '1';
      if (q && q.value !== '') ok = ok && value(r, 6) <= parseFloat(q.value);
      if (eff && eff.value !== '') ok = ok && value(r, 4) >= parseFloat(eff.value);
      r.style.display = ok ? '' : 'none'; if (ok) shown++;
    });
    count.textContent = 'showing ' + shown + ' of ' + rows.length + ' filters';
  }
  [au, q, eff, sig].forEach(function (el) { if (el) { el.addEventListener('input', apply); el.addEventListener('change', apply); } });
  apply();
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1)), el = id && document.getElementById(id);
    if (el && el.tagName === 'DETAILS') { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener('hashchange', openTarget); openTarget();
})();
"""

__all__ = [
    "AGREE_MIN_SHARE",
    "BROWSER_CSS",
    "BROWSER_SCRIPT",
    "STRIP_FOLDER",
    "agreement_word",
    "au_sort_key",
    "filter_browser_section",
    "localisation_verdict",
    "strip_image",
    "statistic_label",
    "write_strips",
]
