"""An HTML report that opens from disk on a laptop or a phone, with no server and no network.

Figures inside the report folder are linked by relative path and load lazily (the folder is the
unit); figures elsewhere are embedded as base64 PNG. Tables are plain HTML, styling and scripts
are inline, the layout is responsive: every figure is scaled to the width of the screen, whole,
and links to its full-size image (one tap on a phone). Notes that change how to read
the results are shown at the top, next to the summary.

Examples::

    >>> import tempfile, pathlib
    >>> from captum_fau.viz.report import Section, write_report
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> page = write_report(out, "Demo", [Section("Numbers", text=["All good."],
    ...                     table=(["a", "b"], [[1, 2]]))])
    >>> "All good." in page.read_text()
    True
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from captum_fau._utils.io import atomic_write_text

_CSS = """
:root { --fg: #1d1d1f; --muted: #5f6368; --accent: #c62828; --line: #e0e0e0; --bg: #fafafa; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: .5rem 0; } h2 { font-size: 1.25rem; margin-top: 2rem; }
.meta { color: var(--muted); font-size: .9rem; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
.kv dt { color: var(--muted); } .kv dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.note, .notes li, p { overflow-wrap: anywhere; }
figure { margin: 1rem 0; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
figure img { max-width: 100%; height: auto; display: block; }
figure a.full { display: block; }
.notes-top { margin: .8rem 0; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: #f1f1f1; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff8e1; border-left: 4px solid #f9a825; padding: .5rem .8rem; margin: .8rem 0; }
.trunc { color: var(--muted); font-size: .9rem; }
@media (max-width: 600px) { body { font-size: 15px; } main { padding: .5rem; } h1 { font-size: 1.3rem; }
  figure { padding: .25rem; } .kv { grid-template-columns: 1fr; } .kv dd { margin-bottom: .4rem; } }
"""


@dataclass
class Section:
    """One part of the report.

    Args:
        heading (str): Section title.
        text (list of str): Paragraphs (plain text; escaped).
        figures (list of (path, caption)): PNG files to embed.
        table (tuple of (columns, rows), optional): A table; numbers are right-aligned.
        notes (list of str): Highlighted remarks (skipped steps, caveats).
        anchor (str, optional): HTML id; derived from the heading by default.
        html (str): Markup appended after the table, built by the caller with every user
            string escaped (e.g. the filter browser).
        table_note (str): Said under the table, e.g. that it is truncated and where the rest is.
        table_csv (str, optional): Relative path of the file with the whole table, linked there.
    """

    heading: str
    text: list[str] = field(default_factory=list)
    figures: list[tuple[str | Path, str]] = field(default_factory=list)
    table: tuple[Sequence[str], Sequence[Sequence[Any]]] | None = None
    notes: list[str] = field(default_factory=list)
    anchor: str | None = None
    html: str = ""
    table_note: str = ""
    table_csv: str | None = None


def _img(path: str | Path, out_dir: Path | None = None) -> str:
    """A relative link when ``path`` lies in the report folder, else the PNG as a data URL."""
    path = Path(path)
    if out_dir is not None:
        try:
            return html.escape(path.resolve().relative_to(out_dir.resolve()).as_posix())
        except ValueError:
            pass
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
        return f'<td class="num">{html.escape(text)}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _section_html(section: Section, out_dir: Path | None = None) -> str:
    anchor = section.anchor or "".join(ch if ch.isalnum() else "-" for ch in section.heading.lower()).strip("-")
    parts = [f'<section id="{html.escape(anchor)}"><h2>{html.escape(section.heading)}</h2>']
    parts += [f"<p>{html.escape(p)}</p>" for p in section.text]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in section.notes]
    for path, caption in section.figures:
        src = _img(path, out_dir)
        img = f'<img src="{src}" alt="{html.escape(caption)}" loading="lazy">'
        if src.startswith("data:"):  # embedded: no file to link to
            parts.append(f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>")
        else:
            parts.append(
                f'<figure><a class="full" href="{src}" title="full size">{img}</a>'
                f"<figcaption>{html.escape(caption)} (tap for full size)</figcaption></figure>"
            )
    if section.table is not None:
        columns, rows = section.table
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
        parts.append(
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        )
    if section.table_note or section.table_csv:
        link = (f' <a href="{html.escape(section.table_csv)}">{html.escape(section.table_csv)}</a>'
                if section.table_csv else "")  # fmt: skip
        parts.append(f'<p class="trunc">{html.escape(section.table_note)}{link}</p>')
    parts.append(section.html)
    parts.append("</section>")
    return "\n".join(parts)


def write_report(
    out_dir: str | Path,
    title: str,
    sections: Sequence[Section],
    *,
    summary: dict[str, Any] | None = None,
    subtitle: str = "",
    filename: str = "index.html",
    notes: Sequence[str] = (),
    script: str = "",
    css: str = "",
) -> Path:
    """Write ``out_dir/index.html`` (atomically) and return its path.

    Args:
        out_dir (str or Path): Folder of the report.
        title (str): Page title.
        sections (sequence of Section): The body, in order.
        summary (dict, optional): Key facts shown at the top (model, data, layer, ...).
        subtitle (str, optional): A line under the title.
        filename (str, optional): Default: ``"index.html"``
        notes (sequence of str, optional): What changes how to read the results (skipped steps,
            input adaptation, data caveats), shown at the top next to the summary.
        script (str, optional): Inline JavaScript added at the end of the page (no external files).
        css (str, optional): Extra inline CSS.

    Returns:
        Path: The HTML file.
    """
    kv = ""
    if summary:
        items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in summary.items())
        kv = f'<dl class="kv">{items}</dl>'
    top_notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    if top_notes:
        top_notes = f'<div class="notes-top" id="notes"><strong>Read first</strong>{top_notes}</div>'
    out_path = Path(out_dir)
    toc = " · ".join(
        f'<a href="#{html.escape(s.anchor or "".join(ch if ch.isalnum() else "-" for ch in s.heading.lower()).strip("-"))}">'
        f"{html.escape(s.heading)}</a>"
        for s in sections
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}{css}</style></head><body><main>"
        f'<header><h1>{html.escape(title)}</h1><p class="meta">{html.escape(subtitle)}</p></header>'
        f'{kv}{top_notes}<nav class="meta">{toc}</nav>'
        + "\n".join(_section_html(s, out_path) for s in sections)
        + "</main>"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>\n"
    )
    return atomic_write_text(out_path / filename, page)


__all__ = ["Section", "write_report"]
