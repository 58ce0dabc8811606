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
td.best { font-weight: bold; } td.failed { color: #b00020; } td.missing { color: #8a6d00; }
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
    """A CSS class per cell of a view: best, tie, failed, missing, partial."""
    out = []
    for _, entries in view.rows:
        row = [""]
        for entry in entries:
            if isinstance(entry, str):
                row.append("")
                continue
            result = table.cells[entry]
            status = {"FAILED": "failed", "missing": "missing", "partial": "partial"}.get(result.status, "")
            row.append(" ".join(c for c in ("best" if result.bold else "", "tie" if result.tie else "", status) if c))
        out.append(row)
    return out


def _view(table: TableResult, view: View, heading: bool) -> list[str]:
    parts = [f"<h3>{escape(view.heading)}</h3>"] if heading else []
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


def _section(report: Report, table: TableResult) -> list[str]:
    setting, views, titles = table.data.setting, views_of(report, table), row_titles(table)
    parts = [f'<section id="{escape(slug(setting))}">', f"<h2>{escape(title(setting))}</h2>",
             *_view(table, views[0], heading=False), _notes(notes(table, report))]
    for view in views[1:]:
        parts += _view(table, view, heading=True)
    parts += ["<h3>Sanity</h3>", _notes(sanity(table))]
    if table.gap_columns:
        parts += ["<h3>Robust gap (clean − threat)</h3>", _table(*gap_rows(table, titles), css="gap"),
                  _notes([GAP_NOTE.format(level=table.options.level)])]
    parts += ["<h3>Evaluation device seconds</h3>", _table(*seconds_rows(table, titles), css="seconds"),
              _notes([SECONDS_NOTE])]
    if column_key(table):
        parts += ["<h3>Column labels (as in the CSV and JSON)</h3>", _notes(column_key(table))]
    plots = report.plots.get(slug(setting), [])
    if plots:
        parts += ['<div class="plots">', *(_figure(p) for p in plots), "</div>"]
    return parts + ["</section>"]


def render_html(report: Report) -> str:
    """The whole page."""
    name = escape(report.suite.name)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>Leaderboard: {name}</title>", f"<style>\n{CSS}\n</style>", "</head>", "<body>",
             f"<h1>Leaderboard: {name}</h1>"]
    if report.suite.description:
        parts.append(f"<p>{escape(report.suite.description.strip())}</p>")
    parts.append(f"<p>{escape(INTRO)} Bold: significantly best; {TIE}: tied with the best.</p>")
    if report.filters:
        parts.append(f"<p>Filtered: {escape(report.filters)}.</p>")
    for table in report.tables:
        parts += _section(report, table)
    if report.ignored:
        parts.append(f"<p>{report.ignored} record(s) of other configurations of this suite were ignored.</p>")
    parts += [f"<footer>{escape(provenance(report))}</footer>", "</body>", "</html>", ""]
    return "\n".join(parts)

