"""Cell texts, table rows and the notes printed under each table (shared by every format).

Accuracies are percent with one decimal; ``±`` is the half-width of the interval named in
the notes. Format-specific markup (bold, tie mark) is applied through a ``mark`` callback, so
Markdown, LaTeX and HTML show the same cells.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.report.model import ColumnRole
from bench.report.results import CellResult, Report, TableResult
from bench.report.sanity import FLAG, sanity_lines
from bench.report.strength import strength_lines
from bench.report.views import View, mce_notes, setting_views
from bench.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Interval
from bench.suite.load import DataSetting
from bench.suite.published import Published, parse_references

Mark = Callable[[str, bool, bool], str]
TIE = "†"
RULES = {
    "episodes": "mean over test episodes ± half-width of the Student-t {level:.0%} CI over episodes (one seed)",
    "seeds": "mean of seed means ± half-width of the Student-t {level:.0%} CI over seeds",
    "bootstrap-episodes": "mean over test episodes ± half the width of the {level:.0%} percentile bootstrap CI "
                          f"over episodes ({BOOTSTRAP_RESAMPLES} resamples, generator seed {BOOTSTRAP_SEED}; one seed)",
    "bootstrap-seeds": "mean of seed means ± half the width of the {level:.0%} two-level (seed x episode) "
                       f"percentile bootstrap CI ({BOOTSTRAP_RESAMPLES} resamples, generator seed {BOOTSTRAP_SEED})",
}
TESTS = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
SHORT_REASON = 60


def title(setting: DataSetting) -> str:
    within = f" within {setting.within}" if setting.within else ""
    return f"{setting.name}, {setting.way}-way {setting.shot}-shot{within}"


def slug(setting: DataSetting) -> str:
    """A file-name-safe, unique name of a data setting (``within`` only where set, so the
    names of every other setting stay as they were)."""
    within = f"-within-{setting.within}" if setting.within else ""
    return f"{setting.name}-{setting.way}w{setting.shot}s-{setting.image_size}px-q{setting.query}{within}"


def views_of(report: Report, table: TableResult) -> list[View]:
    """The headline and detail views of one table (`bench.report.views`)."""
    setting = table.data.setting
    return setting_views(table, report.published, report.suite.mce_reference, slug(setting), title(setting))


def pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}"


def interval_text(interval: Interval) -> str:
    return f"{pct(interval.mean)} ± {pct(interval.half)}"


def cell_text(result: CellResult, reasons: bool = True) -> str:
    """``"48.9 ± 0.8"``, ``"48.9 ± 0.8 (1/2 seeds)"``, ``"FAILED: <reason>"`` or ``"missing: ..."``
    (just ``FAILED`` / ``missing`` without ``reasons``: the notes under the table give them)."""
    if result.interval is None:
        if not reasons:
            return result.status
        reason = result.reason
        return reason if len(reason) <= SHORT_REASON else reason[:SHORT_REASON - 1] + "…"
    text = interval_text(result.interval)
    if result.status == "partial":
        text += f" ({result.seeds_used}/{result.seeds_expected} seeds)"
    return text


def gap_text(table: TableResult, key: tuple[str, str]) -> str:
    """``"12.3 ± 1.1"``; ``–`` when a cell has no result; ``n/a (not paired)`` without a shared episode set."""
    if key not in table.gaps:
        return "–"
    paired = table.gaps[key]
    return "n/a (not paired)" if paired is None else f"{pct(paired.diff)} ± {pct(paired.half)}"


def plain(text: str, bold: bool, tie: bool) -> str:
    return text + (f" {TIE}" if tie else "")


def view_rows(table: TableResult, view: View, mark: Mark = plain,
              reasons: bool = True) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of one view: cells with their marks and sanity flags, text as given."""
    rows = []
    for header, entries in view.rows:
        row = [header]
        for entry in entries:
            if isinstance(entry, str):
                row.append(entry)
                continue
            result = table.cells[entry]
            text = cell_text(result, reasons)
            text = mark(text, result.bold, result.tie) if result.interval else text
            row.append(text + (f" {FLAG}" if table.flags_of(*entry) else ""))
        rows.append(row)
    return list(view.headers), rows


def gap_rows(table: TableResult, titles: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Robust gap (clean − threat): one row per non-clean column, one column per baseline (long,
    not wide: a suite has far more threats than baselines)."""
    labels = [label for label, _ in table.data.rows]
    rows = [[c.header, *(gap_text(table, (label, c.label)) for label in labels)] for c in table.gap_columns]
    return ["threat", *(titles[label] for label in labels)], rows


def seconds_rows(table: TableResult, titles: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Evaluation device seconds per threat (rows, summed over seeds) and baseline, and totals."""
    columns = [c for c in table.data.columns if not c.members]
    labels = [label for label, _ in table.data.rows]
    values = {(label, c.label): table.cells[(label, c.label)].device_seconds for label in labels for c in columns}
    rows = [[c.header, *("–" if values[(label, c.label)] is None else f"{values[(label, c.label)]:.1f}"
                         for label in labels)] for c in columns]
    totals = [sum(v for (row, _), v in values.items() if row == label and v is not None) for label in labels]
    return ["threat", *(titles[label] for label in labels)], [*rows, ["total", *(f"{t:.1f}" for t in totals)]]


def column_key(table: TableResult) -> list[str]:
    """``header: raw label`` for every column whose header is not its raw label (CSV/JSON
    use the raw labels), so a reader can match a table to the records."""
    return [f"{c.header}: `{c.label}`" for c in table.data.columns if c.header != c.label]


REFERENCES_NOTE = "published on this setting by methods this suite does not run"


def notes(table: TableResult, report: Report) -> list[str]:
    """The lines printed under a table: how cells, marks and derived columns were made, and the
    suite's paper-only references for its setting (`bench.suite.published.parse_references`)."""
    published, reference = report.published, report.suite.mce_reference
    options, facts = table.options, table.data.facts
    lines = [f"cells: {RULES[rule].format(level=options.level)}" for rule in table.rules]
    if table.comparisons:
        lines.append(f"bold: best in its column and significantly better than every other row "
                     f"({TESTS[options.test]} on the shared test episodes, per-seed means when several seeds are "
                     f"shared; Holm-corrected over the {len(table.comparisons)} comparisons of this table, alpha = "
                     f"{options.alpha:g}); {TIE}: not significantly different from the best (a tie)")
    else:
        lines.append("bold: none (no column has two results to compare)")
    lines += _few_seed_notes(table) + mode_notes(table)
    lines += _derived_notes(table) + _view_notes(table, published) + mce_notes(table, reference)
    if table.flags:
        lines.append(f"{FLAG}: a sanity check against gradient masking failed for this cell (see Sanity)")
    lines.append(f"test episodes per seed: {facts['episodes']}; seeds: {', '.join(map(str, table.data.seeds))}; "
                 f"episode-set hash: {facts['hashes']}; device: {facts['devices']}; code: {facts['code']}")
    lines.append(f"code fingerprints (bench.fingerprint) behind the cells: {facts['fingerprints'] or 'none'}")
    if facts["kept_stale"]:
        lines.append(f"stale results kept by --reuse-stale (made by older code): {facts['kept_stale']}")
    if facts.get("checkpoints"):
        lines.append(f"checkpoint evaluated (per row and seed: the selection rule and the meta-update it kept): "
                     f"{facts['checkpoints']}")
    for (label, setting), paper in sorted(published.items()):
        if setting == table.data.setting.label and paper.source:
            lines.append(f"paper ({label}): {paper.source}")
    lines += reference_lines(table, report)
    lines += problem_lines(table)
    return lines


TRANSDUCTIVE_NOTE = ("(transductive): batch-statistics batch norm, so a query's prediction depends on the other "
                     "queries of its batch, and an attack perturbs the whole query batch at once; its robust "
                     "accuracy is not comparable with an inductive row's (Bronskill et al. 2020, TaskNorm)")
ONE_DRAW_NOTE = ("(stochastic, no EoT): the adaptation draws random numbers and some attack here averaged one "
                 "draw (eot_draws 1), not the draw that classifies: its robust accuracy is inflated (Athalye et "
                 "al. 2018); set eot_draws on the attack (AutoAttack's rand version uses 20)")


def mode_notes(table: TableResult) -> list[str]:
    """What the row marks of the declared evaluation modes mean, for the marks this table shows."""
    modes = table.data.modes.values()
    return ([TRANSDUCTIVE_NOTE] if any(m.transductive for m in modes) else []) + \
        ([ONE_DRAW_NOTE] if any(m.one_draw for m in modes) else [])


def reference_lines(table: TableResult, report: Report) -> list[str]:
    """One line naming the published results of methods not run here, as the suite gives them."""
    found = parse_references(report.suite).get(table.data.setting.label, ())
    if not found:
        return []
    listed = "; ".join(f"{name} {paper.text()}" + (f" ({paper.source})" if paper.source else "")
                       for name, paper in found)
    return [f"{REFERENCES_NOTE} (clean accuracy, %): {listed}"]


def _few_seed_notes(table: TableResult) -> list[str]:
    """What the intervals and tests can and cannot show with few seeds (said, never implied)."""
    seeds, options, lines = len(table.data.seeds), table.options, []
    if seeds > 1 and any(c.paired is None for c in table.comparisons):
        lines.append("cells sharing fewer than 2 finished seeds with the best are not compared (a seed-level table "
                     "is never tested on the episodes of one seed)")
    if options.ci == "bootstrap" and 1 < seeds < 5:
        lines.append(f"warning: the seed bootstrap under-covers with {seeds} seeds (its percentile interval over "
                     f"{seeds} seed means is too narrow); use 5 or more seeds or the t interval (--ci t)")
    if options.test == "wilcoxon" and 1 < seeds <= 5:
        lines.append(f"Wilcoxon on {seeds} seed pairs cannot reach alpha = {options.alpha:g}: its smallest two-sided "
                     f"p-value is 2/2^n = {2 / 2 ** seeds:.3g}, so no cell can be bold; use 6 or more seeds or the "
                     f"t-test")
    return lines


def _view_notes(table: TableResult, published: dict[tuple[str, str], Published]) -> list[str]:
    """How the headline's extra columns are made (ranks, paper difference)."""
    lines = [f"mean rank: per column, 1 + the number of rows significantly better ({TESTS[table.options.test]}, "
             f"Holm over the column's pairs, alpha = {table.options.alpha:g}), averaged over the table's columns; "
             f"rows no test separates share a rank"]
    if any(setting == table.data.setting.label for _, setting in published):
        lines.append("ours − paper: our clean accuracy minus the published one, ± the half-widths of our interval "
                     "and the paper's (where it gives one) in quadrature")
    return lines


def sanity(table: TableResult) -> list[str]:
    """The lines of a table's Sanity section: the flags (`bench.report.sanity`), then how strong
    the attacks were (`bench.report.strength`: the reference attack per threat model, Square's power)."""
    return sanity_lines(table.flags, table.data.columns) + strength_lines(table.data)


def _derived_notes(table: TableResult) -> list[str]:
    headers = {c.label: c.header for c in table.data.columns}
    lines = []
    for column in table.data.columns:
        members = _members_text([headers.get(m, m) for m in column.members])
        if column.role is ColumnRole.MEAN_CORRUPTION:
            lines.append(f"{column.header}: per-episode mean over {members}")
        elif column.role is ColumnRole.WORST_CASE and _per_query(table, column.label):
            lines.append(f"{column.header}: per query across the attacks at that threat model ({members}), a query "
                         f"robust only if every attack failed on it (as AutoAttack counts), then per episode")
        elif column.role is ColumnRole.WORST_CASE:
            lines.append(f"{column.header}: per-episode minimum over the attacks at that threat model ({members}) "
                         f"(AutoAttack-style; an upper bound on the per-query worst case, which needs per-query "
                         f"records)")
    return lines


def _per_query(table: TableResult, column: str) -> bool:
    """Whether a worst-case column's values are all per query: some computed, none fell back to
    per-episode minima (records made before per-query results were recorded)."""
    cells = [table.data.cells[(label, column)] for label, _ in table.data.rows]
    return any(c.per_seed for c in cells) and not any(c.bounded for c in cells)


def _members_text(headers: list[str], listed: int = 6) -> str:
    """The members of a derived column by name, or, when many, by count and kind
    (``54 corruption columns: 18 corruptions at severities 1, 3, 5``)."""
    severities = sorted({h.rsplit(", s", 1)[1] for h in headers if ", s" in h})
    if len(headers) <= listed or not severities:
        return "; ".join(headers)  # headers hold commas (``PGD-20, ε = 8/255``)
    names = list(dict.fromkeys(h.split(", s")[0] for h in headers))
    return (f"{len(headers)} columns, {len(names)} corruptions at severities {', '.join(severities)} "
            f"({', '.join(names)})")


def problem_lines(table: TableResult) -> list[str]:
    """Failed and missing results of the threat columns, one line per (baseline, seed, reason);
    derived columns follow from them."""
    columns = [c.label for c in table.data.columns if not c.members]
    lines = []
    for label, _ in table.data.rows:
        grouped: dict[tuple[int, str], list[str]] = {}
        for column in columns:
            for seed, problem in sorted(table.data.cells[(label, column)].problems.items()):
                grouped.setdefault((seed, problem), []).append(column)
        for (seed, problem), where in sorted(grouped.items()):
            which = "every threat" if len(where) == len(columns) > 1 else ", ".join(where)
            lines.append(f"{label}, seed {seed}: {problem} ({which})")
    return lines
