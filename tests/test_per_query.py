"""Per-query records and the per-query worst case across attacks (issue 25, item 1)."""

from __future__ import annotations

import json

import numpy as np
import torch

from bench.report.aggregate import combine, per_query_worst
from bench.report.model import Cell
from bench.run.evaluate import evaluate_queries
from bench.run.runner import packed_bits
from bench.tracking.records import RunRecord
from tests.helpers import make_episode, tiny


def _cell(per_query: list[list[int]]) -> Cell:
    rows = tuple(np.array(q, dtype=bool) for q in per_query)
    return Cell((0,), per_seed={0: np.array([r.mean() for r in rows])}, hashes={0: "h"}, per_query={0: rows})


def test_the_per_query_worst_case_is_below_the_per_episode_minimum_when_attacks_fool_different_queries() -> None:
    """Two attacks each fool half of the queries, disjoint halves: each leaves 50% per episode,
    so the per-episode minimum says 50%, while no query survives both: 0%."""
    fgsm = _cell([[1, 1, 0, 0], [1, 0, 1, 1]])
    pgd = _cell([[0, 0, 1, 1], [1, 1, 1, 0]])
    worst = combine([fgsm, pgd], (0,), np.min, ("fgsm", "pgd"))
    assert worst.per_seed[0].tolist() == [0.0, 0.5] and not worst.bounded
    bound = np.minimum(fgsm.per_seed[0], pgd.per_seed[0])
    assert bound.tolist() == [0.5, 0.75] and (worst.per_seed[0] <= bound).all()
    old = Cell((0,), per_seed={0: fgsm.per_seed[0]}, hashes={0: "h"})  # a record made before per-query results
    fallback = combine([old, pgd], (0,), np.min, ("fgsm", "pgd"))
    assert fallback.per_seed[0].tolist() == bound.tolist() and fallback.bounded == {0}
    assert per_query_worst([fgsm.per_query[0], fgsm.per_query[0]]).tolist() == fgsm.per_seed[0].tolist()


def test_evaluation_records_which_queries_it_got_right_and_they_survive_the_store_format() -> None:
    from bench.registry import THREATS

    baseline = tiny("protonet")
    episodes = [make_episode(seed) for seed in range(3)]

    class Listed:
        def __len__(self) -> int:
            return len(episodes)

        def __getitem__(self, i: int):
            return episodes[i]

        def with_outliers(self, i: int, seed: int):
            return episodes[i]

    outcome = evaluate_queries(baseline, Listed(), THREATS.get("clean")(None), [0, 1, 2])
    assert [c.double().mean().item() for c in outcome.correct] == outcome.accuracies
    stored = json.loads(json.dumps({"accuracy": outcome.accuracies, "correct": list(packed_bits(outcome.correct)),
                                    "queries": [c.numel() for c in outcome.correct]}))
    unpacked = RunRecord.unpack(stored)
    assert unpacked is not None
    assert [u.tolist() for u in unpacked] == [c.tolist() for c in outcome.correct]
    assert RunRecord.unpack({"accuracy": outcome.accuracies}) is None
    odd = [torch.tensor([True] * 9 + [False])]  # 10 queries: 2 bytes, 6 padding bits
    assert RunRecord.unpack({"correct": list(packed_bits(odd)), "queries": [10]})[0].tolist() == odd[0].tolist()


def test_the_gap_script_prints_the_per_query_worst_case_beside_the_per_episode_minimum() -> None:
    """Two attacks at one radius fool different queries: 75% each, 50% robust to both."""
    from bench.registry import THREATS
    from bench.report.aggregate import add_aggregates
    from bench.report.model import Cell, Column, SettingData
    from bench.suite.load import DataSetting
    from benchmarks.worst_case_gap import gap_rows

    columns, cells = [], {}
    for name, correct in (("fgsm", [True, True, False, True]), ("pgd", [False, True, True, True])):
        cls = THREATS.get(name)
        columns.append(Column(name, cls.kind, (), name, (("eps", "0.1"),), cls.threat_model(cls.Config(eps=0.1))))
        cells[("model", name)] = Cell((0,), {0: np.asarray([0.75])}, {0: "h"},
                                      per_query={0: (np.asarray(correct),)})
    columns += add_aggregates(columns, cells, ["model"], (0,))
    table = SettingData(DataSetting("glyphs", 28, 4, 1), [("model", "protonet")], columns, cells, (0,), {})
    assert gap_rows(table) == [("model", "worst L∞ 0.1", 50.0, 75.0)]
