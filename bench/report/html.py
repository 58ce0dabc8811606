"""``leaderboard.html``: one static, self-contained page (inline CSS, plots as PNG data URIs).

No script, no external resource: the page renders the same from a file, a mail attachment or
a CI artifact, and is byte-stable for the same records.
"""

from __future__ import annotations

import base64
import struct
from html import escape

from bench.report.results import Plot, Report, TableResult
from bench.report.tables import GAP_NOTE, INTRO, SECONDS_NOTE, provenance
from bench.report.text import TIE, column_key, gap_rows, notes, sanity, seconds_rows, slug, title, view_rows, views_of
from bench.report.views import View, row_titles

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 110rem;
       padding: 0 1rem; color: #1a1a1a; background: #ffffff; }
div.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.75rem 0; font-variant-numeric: tabular-nums; }
th, td { border-top: 1px solid #c8c8c8; border-bottom: 1px solid #c8c8c8; padding: 0.3rem 0.6rem; }
th { background: #f0f0f0; text-align: right; } th:first-child, td:first-child { text-align: left; }
td { text-align: right; white-space: nowrap; }
td.best { font-weight: bold; } td.top { text-decoration: underline; }
td.failed { color: #b00020; } td.missing { color: #8a6d00; }
nav.toc { font-size: 0.9rem; } nav.toc ul { margin: 0.2rem 0; }
td.partial { color: #555555; } ul.notes { font-size: 0.85rem; color: #444444; }
figure { display: inline-block; margin: 0.5rem 1rem 0.5rem 0; } figcaption { font-size: 0.85rem; }
footer { margin-top: 2rem; font-size: 0.85rem; color: #555555; }
""".strip()


def _table(headers: list[str], rows: list[list[str]], classes: list[list[str]] | None = None,
           css: str = "", tooltips: tuple[str, ...] = ()) -> str:
    """A table; ``tooltips``: per header, the raw label shown on hover ("" for none)."""
    tips = list(tooltips) + [""] * (len(headers) - len(tooltips))
    head = "".join(f'<th title="{escape(t)}">{escape(h)}</th>' if t and t != h else f"<th>{escape(h)}</th>"
                   for h, t in zip(headers, tips, strict=True))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(f'<td class="{classes[r][c]}">{escape(v)}</td>' if classes and classes[r][c]
                        else f"<td>{escape(v)}</td>" for c, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return (f'<div class="wide"><table class="{css}"><thead><tr>{head}</tr></thead><tbody>' + "".join(body)
            + "</tbody></table></div>")


def _classes(table: TableResult, view: View) -> list[list[str]]:
    """A CSS class per cell of a view: best, tie, top (highest of a column without a
    significantly best row), failed, missing, partial."""
    top = column_tops(table) & _baseline_columns(view)
    out = []
    for _, entries in view.rows:
        row = [""]
        for entry in entries:
            if isinstance(entry, str):
                row.append("")
                continue
            result = table.cells[entry]
            status = {"FAILED": "failed", "missing": "missing", "partial": "partial"}.get(result.status, "")
            marks = ("best" if result.bold else "", "tie" if result.tie else "", "top" if entry in top else "", status)
            row.append(" ".join(c for c in marks if c))
        out.append(row)
    return out


def _baseline_columns(view: View) -> set[tuple[str, str]]:
    """The entries of a view's columns that hold one report column for several baselines (a
    per-baseline view, such as corruption x severity, never shows a column's top)."""
    out: set[tuple[str, str]] = set()
    for c in range(max((len(entries) for _, entries in view.rows), default=0)):
        cells = [entry for _, e in view.rows if c < len(e) and isinstance(entry := e[c], tuple)]
        if len(cells) > 1 and len({column for _, column in cells}) == 1:
            out |= set(cells)
    return out


def column_tops(table: TableResult) -> set[tuple[str, str]]:
    """Per column with results but no significantly best row, the cell(s) of its highest mean:
    a reader still sees where the column peaks (underlined, not bold: no test backs it)."""
    tops = set()
    for column in table.data.columns:
        cells = {(label, column.label): table.cells[(label, column.label)] for label, _ in table.data.rows}
        means = {key: c.interval.mean for key, c in cells.items() if c.interval is not None}
        if means and not any(c.bold for c in cells.values()):
            tops |= {key for key, mean in means.items() if mean == max(means.values())}
    return tops


def _view(table: TableResult, view: View, heading: bool) -> list[str]:
    anchor = f'{slug(table.data.setting)}-{view.key}'
    parts = [f'<h3 id="{escape(anchor)}">{escape(view.heading)}</h3>'] if heading else []
    return parts + [_table(*view_rows(table, view), _classes(table, view), "leaderboard", view.raw)]


def _notes(lines: list[str]) -> str:
    return '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in lines) + "</ul>"


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return int(width), int(height)


def _figure(plot: Plot) -> str:
    width, height = _png_size(plot.png)
    data = base64.b64encode(plot.png).decode("ascii")
    return (f'<figure><img alt="{escape(plot.caption)}" width="{width}" height="{height}" '
            f'src="data:image/png;base64,{data}"><figcaption>{escape(plot.caption)} '
            f'(<a href="plots/{escape(plot.name)}.svg">SVG</a>)</figcaption></figure>')


def _h3(table: TableResult, part: str, heading: str) -> str:
    return f'<h3 id="{escape(slug(table.data.setting))}-{part}">{escape(heading)}</h3>'


def _section(report: Report, table: TableResult) -> list[str]:
    """One data setting: headline, detail views, plots, sanity, gaps, seconds, then the label
    appendix (reading order: results first, bookkeeping last)."""
    setting, views, titles = table.data.setting, views_of(report, table), row_titles(table)
    parts = [f'<section id="{escape(slug(setting))}">', f"<h2>{escape(title(setting))}</h2>",
             *_view(table, views[0], heading=False), _notes(notes(table, report))]
    for view in views[1:]:
        parts += _view(table, view, heading=True)
    plots = report.plots.get(slug(setting), [])
    if plots:
        parts += [_h3(table, "plots", "Plots"), '<div class="plots">', *(_figure(p) for p in plots), "</div>"]
    parts += [_h3(table, "sanity", "Sanity"), _notes(sanity(table))]
    if table.gap_columns:
        parts += [_h3(table, "gap", "Robust gap (clean − threat)"), _table(*gap_rows(table, titles), css="gap"),
                  _notes([GAP_NOTE.format(level=table.options.level)])]
    parts += [_h3(table, "seconds", "Evaluation device seconds"),
              _table(*seconds_rows(table, titles), css="seconds"), _notes([SECONDS_NOTE])]
    if column_key(table):
        parts += [_h3(table, "labels", "Column labels (as in the CSV and JSON)"), _notes(column_key(table))]
    return parts + ["</section>"]


def contents(report: Report) -> list[str]:
    """The table of contents: each data setting, with its views, plots and sanity section."""
    items = []
    for table in report.tables:
        anchor, views = slug(table.data.setting), views_of(report, table)
        inner = [(f"{anchor}-{v.key}", v.heading) for v in views[1:]]
        inner += [(f"{anchor}-plots", "Plots")] if report.plots.get(anchor) else []
        inner += [(f"{anchor}-sanity", "Sanity")]
        links = "".join(f'<li><a href="#{escape(a)}">{escape(h)}</a></li>' for a, h in inner)
        items.append(f'<li><a href="#{escape(anchor)}">{escape(title(table.data.setting))}</a><ul>{links}</ul></li>')
    return ['<nav class="toc"><h2>Contents</h2><ul>', *items, "</ul></nav>"]


def render_html(report: Report) -> str:
    """The whole page."""
    name = escape(report.suite.name)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>Leaderboard: {name}</title>", f"<style>\n{CSS}\n</style>", "</head>", "<body>",
             f"<h1>Leaderboard: {name}</h1>"]
    if report.suite.description:
        parts.append(f"<p>{escape(report.suite.description.strip())}</p>")
    parts.append(f"<p>{escape(INTRO)} Bold: significantly best; {TIE}: tied with the best; underlined: the "
                 f"highest value of a column in which no row is significantly best.</p>")
    if report.filters:
        parts.append(f"<p>Filtered: {escape(report.filters)}.</p>")
    parts += contents(report)
    for table in report.tables:
        parts += _section(report, table)
    if report.ignored:
        parts.append(f"<p>{report.ignored} record(s) of other configurations of this suite were ignored.</p>")
    parts += [f"<footer>{escape(provenance(report))}</footer>", "</body>", "</html>", ""]
    return "\n".join(parts)

