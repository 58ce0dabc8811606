"""Tie-aware ranks on the paired data, so a table's order can be read when nothing is bold.

Per column, every pair of rows with results is compared by the table's paired test (`pair`:
test episodes with one seed, seed means with several); the p-values of a column form one Holm
family. A row's rank is 1 + the number of rows significantly better than it, so rows that no
test separates share a rank (standard competition ranking over significant wins, as the average
ranks of Meta-Dataset, Triantafillou et al. 2020, summarise many columns; deviation: their
ranks order the means and share a rank only on exact ties, ours share it whenever the paired
test cannot separate the rows). A row that cannot be paired with another (no shared seeds) is
never counted better or worse than it. The mean rank of a row is over the columns where it has
a result.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from bench.report.model import SettingData
from bench.report.pairing import Options, pair
from bench.stats import holm

if TYPE_CHECKING:
    from bench.report.results import CellResult


def column_ranks(data: SettingData, finished: set[str], column: str, options: Options) -> dict[str, int]:
    """Row label -> rank in ``column`` (1 is best) over the rows in ``finished`` (with a result)."""
    labels = [label for label, _ in data.rows if label in finished]
    pairs = list(combinations(labels, 2))
    tests = [pair(data.cells[(a, column)], data.cells[(b, column)], options) for a, b in pairs]
    adjusted = holm([t.p if t is not None else 1.0 for t in tests]) if tests else []
    better = dict.fromkeys(labels, 0)
    for (a, b), test, p in zip(pairs, tests, adjusted, strict=True):
        if test is None or p >= options.alpha or test.diff == 0:
            continue
        better[b if test.diff > 0 else a] += 1  # the worse row counts one more row above it
    return {label: 1 + count for label, count in better.items()}


def table_ranks(data: SettingData, cells: dict[tuple[str, str], CellResult],
                options: Options) -> dict[tuple[str, str], int]:
    """``(row label, column label) -> rank`` for every column; ``cells`` are the shown
    `CellResult`s (a row has a rank where its cell has an interval)."""
    out: dict[tuple[str, str], int] = {}
    for column in data.columns:
        finished = {label for label, _ in data.rows if cells[(label, column.label)].interval is not None}
        out |= {(label, column.label): rank for label, rank in column_ranks(data, finished, column.label,
                                                                            options).items()}
    return out


def mean_rank(ranks: dict[tuple[str, str], int], label: str, columns: list[str]) -> float | None:
    """The mean of ``label``'s ranks over ``columns`` (those where it has one); None if none."""
    mine = [ranks[(label, c)] for c in columns if (label, c) in ranks]
    return float(np.mean(mine)) if mine else None
