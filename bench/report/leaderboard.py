"""A suite's report: records -> analysed tables -> files in ``reports/<suite>/``.

Every number comes from MLflow records (`bench.tracking.RunRecord`, passed in as plain data).
Output is byte-stable for the same records: rows and columns follow the suite's order, floats
are printed at fixed precision, figures carry no date, and nothing time-dependent is written.
Files are written to temporary names first and renamed, so a failed report leaves the previous
files whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.plan.selection import Selection
from bench.report.cells import collect
from bench.report.compare import Options, analyse
from bench.report.export import render_csv, render_json
from bench.report.filters import Filters
from bench.report.html import render_html
from bench.report.model import FILES
from bench.report.plots.figures import table_plots
from bench.report.results import Report
from bench.report.tables import render_latex, render_markdown
from bench.report.text import slug
from bench.suite.load import Suite
from bench.suite.published import parse_published

if TYPE_CHECKING:  # plain data; importing bench.tracking at run time would import mlflow
    from bench.tracking.records import RunRecord

RENDER = {"md": render_markdown, "latex": render_latex, "csv": render_csv, "json": render_json, "html": render_html}


def build_report(suite: Suite, records: list[RunRecord], command: str, uri: str, filters: Filters | None = None,
                 options: Options | None = None, plots: bool = True, selection: Selection | None = None) -> Report:
    """Analyse a suite's records into a `Report` (figures included when ``plots``)."""
    filters, options = filters or Filters(), options or Options()
    published = parse_published(suite)
    collected = collect(suite, records, filters, selection)
    tables = [analyse(data, options) for data in collected.settings]
    report = Report(suite, tables, published, command, uri, collected.ignored, filters.describe())
    if plots:
        report.plots = {slug(t.data.setting): table_plots(t) for t in tables}
    return report


def _write(path: Path, content: str | bytes) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content, encoding="utf-8", newline="\n")
    tmp.replace(path)
    return path


def write_plots(report: Report, folder: Path) -> list[Path]:
    """``plots/<name>.png`` and ``.svg``; figures no longer produced are removed (so the folder
    is a function of the records alone)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in (p for plots in report.plots.values() for p in plots):
        written += [_write(folder / f"{plot.name}.png", plot.png), _write(folder / f"{plot.name}.svg", plot.svg)]
    for stale in sorted(set(folder.glob("*.png")) | set(folder.glob("*.svg"))):
        if stale not in written:
            stale.unlink()
    return written


def write_report(report: Report, out_dir: Path, formats: tuple[str, ...] = ("all",)) -> list[Path]:
    """Write the chosen formats (``md``, ``latex``, ``csv``, ``json``, ``html``, ``all``) into ``out_dir``."""
    chosen = [f for f in FILES if f in formats or "all" in formats]
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = {f: RENDER[f](report) for f in chosen}  # render everything before writing anything
    written = [_write(out_dir / FILES[f], texts[f]) for f in chosen]
    if "html" in chosen:
        written += write_plots(report, out_dir / "plots")
    return written
