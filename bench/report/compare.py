"""Cell intervals, paired comparisons, Holm correction, "best" marks and robust gaps.

Pairing: two cells are paired on a seed when both finished it on the same episode set (equal
``episodes_hash``). With one shared seed the unit is the test episode (per-episode
differences); with several, the unit is the seed (per-seed mean differences), because pooling
episodes over seeds would ignore the training-seed variance.

Best marks, per column: the row with the highest mean is compared with every other row; all
comparisons of one table form one Holm family. The best is bold only when it is significantly
better than every other row (the runner-up included); rows not significantly different from
the best are ties, and the best is then marked as a tie too.
"""

from __future__ import annotations

from bench.report.model import Cell, SettingData
from bench.report.pairing import Options, pair
from bench.report.ranks import table_ranks
from bench.report.results import CellResult, Comparison, TableResult, clean_column
from bench.report.sanity import sanity_flags
from bench.report.strength import reference_flags
from bench.stats import Paired, bootstrap_interval, holm, t_interval

__all__ = ["Options", "analyse", "cell_result", "pair"]


def cell_result(cell: Cell, options: Options) -> CellResult:
    """The interval over the seeds that finished, and the status of the others."""
    seeds = [s for s in cell.seeds if s in cell.per_seed]
    if not seeds:
        status = "FAILED" if any(p.startswith("FAILED") for p in cell.problems.values()) else "missing"
        return CellResult(None, status, cell.headline(), 0, len(cell.seeds), None)
    values = [cell.per_seed[s] for s in seeds]
    interval = bootstrap_interval(values, options.level) if options.ci == "bootstrap" \
        else t_interval(values, options.level)
    status = "partial" if len(seeds) < len(cell.seeds) else "ok"
    return CellResult(interval, status, cell.reason(), len(seeds), len(cell.seeds), cell.device_seconds)


def analyse(data: SettingData, options: Options) -> TableResult:
    """Intervals, best marks (Holm over the table) and robust gaps of one table."""
    result = TableResult(data, options, {key: cell_result(cell, options) for key, cell in data.cells.items()})
    _mark_best(result)
    result.ranks = table_ranks(data, result.cells, options)
    result.flags = sanity_flags(data) + reference_flags(data)
    clean = clean_column(data)
    for label, _ in data.rows if clean is not None else ():
        for column in result.gap_columns:
            a, b = data.cells[(label, clean.label)], data.cells[(label, column.label)]  # type: ignore[union-attr]
            if a.per_seed and b.per_seed:  # else the gap is absent for the reason the cells show
                result.gaps[(label, column.label)] = pair(a, b, options)
    return result


def _mark_best(result: TableResult) -> None:
    raw: list[tuple[str, str, str, Paired | None]] = []
    for column in result.data.columns:
        ranked = [label for label, _ in result.data.rows if result.cells[(label, column.label)].interval]
        ranked.sort(key=lambda label: -result.cells[(label, column.label)].interval.mean)  # type: ignore[union-attr]
        for other in ranked[1:]:
            cells = result.data.cells
            raw.append((column.label, ranked[0], other,
                        pair(cells[(ranked[0], column.label)], cells[(other, column.label)], result.options)))
    adjusted = holm([p.p if p is not None else 1.0 for *_, p in raw]) if raw else []
    result.comparisons = [Comparison(c, b, o, p, q) for (c, b, o, p), q in zip(raw, adjusted, strict=True)]
    for column in result.data.columns:
        mine = [c for c in result.comparisons if c.column == column.label]
        if not mine:
            continue
        best = result.cells[(mine[0].best, column.label)]
        # A row that could not be compared (no shared seeds) is no tie, and the best cannot be
        # shown significantly better than it: no bold then.
        ties = [c.other for c in mine if c.paired is not None and not _significant(c, result.options.alpha)]
        best.bold = all(_significant(c, result.options.alpha) for c in mine)
        best.tie = bool(ties)
        for other in ties:
            result.cells[(other, column.label)].tie = True


def _significant(comparison: Comparison, alpha: float) -> bool:
    paired = comparison.paired
    return paired is not None and paired.diff > 0 and comparison.p_holm < alpha
