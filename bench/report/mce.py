"""Relative mean corruption error (Hendrycks & Dietterich 2019, Sec. 3).

For a model f, a corruption c run at severities s and the suite's reference baseline r
(``report.mce_reference``; the paper normalises by AlexNet)::

    relative CE_c(f) = sum_s (E_{s,c}(f) - E_clean(f)) / sum_s (E_{s,c}(r) - E_clean(r))
    relative mCE(f)  = mean over c of relative CE_c(f)       (in %, 100 for the reference)

with E the error rate (100 - accuracy) of a cell's mean over its seeds. It measures how much
accuracy a model loses to corruptions relative to the reference, independent of its clean
accuracy. Deviation: a point estimate without an interval (a ratio of differences of means),
and a corruption on which the reference loses nothing (denominator <= 0) or has no result is
left out and named in the notes under the table (`bench.report.views.mce_notes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.results import TableResult, clean_column
from bench.threats.base import ThreatKind


@dataclass(frozen=True)
class RelativeMCE:
    """Per row label the relative mCE in % (None where a needed cell has no result), and the
    corruptions (registry names) left out because the reference did not lose accuracy on them
    or has no result on them."""

    reference: str
    values: dict[str, float | None]
    left_out: tuple[str, ...]


def _error(table: TableResult, label: str, column: str) -> float | None:
    interval = table.cells[(label, column)].interval
    return None if interval is None else 100 * (1 - interval.mean)


def _loss(table: TableResult, label: str, columns: list[str], clean: str) -> float | None:
    """Summed error increase over ``columns`` (one corruption's severities), or None."""
    base = _error(table, label, clean)
    errors = [_error(table, label, c) for c in columns]
    if base is None or any(e is None for e in errors):
        return None
    return sum(e - base for e in errors if e is not None)


def relative_mce(table: TableResult, reference: str | None) -> RelativeMCE | None:
    """The relative mCE of every row against ``reference``; None without a reference, a
    clean column, or corruptions in the table."""
    clean = clean_column(table.data)
    by_corruption: dict[str, list[str]] = {}
    for column in table.data.columns:
        if column.kind is ThreatKind.CORRUPTION:
            by_corruption.setdefault(column.name, []).append(column.label)
    labels = [label for label, _ in table.data.rows]
    if reference is None or clean is None or not by_corruption or reference not in labels:
        return None
    denominators = {c: _loss(table, reference, cols, clean.label) for c, cols in by_corruption.items()}
    kept = {c: d for c, d in denominators.items() if d is not None and d > 0}
    values: dict[str, float | None] = {}
    for label in labels:
        ratios = [_loss(table, label, by_corruption[c], clean.label) for c in kept]
        values[label] = None if not kept or any(r is None for r in ratios) else \
            100 * sum(r / kept[c] for r, c in zip(ratios, kept, strict=True) if r is not None) / len(kept)
    return RelativeMCE(reference, values, tuple(c for c in by_corruption if c not in kept))
