"""The per-query worst case against the per-episode minimum, cell by cell (issue 25).

A worst case over the attacks at one threat model counts a query as robust only if every
attack failed on it (Croce & Hein 2020); the minimum over attacks of per-episode accuracies,
what reports printed before per-query records, is an upper bound on it: a query fooled by FGSM
only and another fooled by PGD only both count as robust in one of the two. This prints both,
and their difference, for every worst-case cell of a suite whose runs carry per-query records.

Run: ``python -m benchmarks.worst_case_gap robust-glyphs --tracking-uri sqlite:///PATH``.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.report.cells import collect
from bench.report.command import gather
from bench.report.model import ColumnRole, SettingData
from bench.suite.load import load_suite
from bench.tracking import Tracker


def gap_rows(table: SettingData) -> list[tuple[str, str, float, float]]:
    """(row, worst-case column, per-query %, per-episode-minimum %) for each cell whose
    members all carry per-query records, means over seeds and episodes."""
    out = []
    for column in (c for c in table.columns if c.role is ColumnRole.WORST_CASE):
        for row, _ in table.rows:
            members = [table.cells[(row, m)] for m in column.members]
            seeds = [s for s in table.seeds if all(s in m.per_query for m in members)]
            if not seeds:
                continue
            per_query = np.mean([table.cells[(row, column.label)].per_seed[s].mean() for s in seeds])
            minimum = np.mean([np.min(np.stack([m.per_seed[s] for m in members]), axis=0).mean() for s in seeds])
            out.append((row, column.label, 100 * float(per_query), 100 * float(minimum)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    suite = load_suite(args.suite)
    tracker = Tracker(args.tracking_uri, suite.name, create=False)
    print(f"{'setting':<28} {'baseline':<14} {'column':<18} {'per query':>9} {'per-episode min':>15} {'gap':>6}")
    for table in collect(suite, gather(tracker)).settings:
        for row, column, per_query, minimum in gap_rows(table):
            print(f"{table.setting.label:<28} {row:<14} {column:<18} {per_query:9.2f} {minimum:15.2f} "
                  f"{minimum - per_query:6.2f}")


if __name__ == "__main__":
    main()
