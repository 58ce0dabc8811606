"""What recording per-query results adds to an evaluation job (issue 25: at most 5%).

One evaluation job, timed in parts in the same run (these machines are noisy):

    evaluate = `evaluate_queries` on N fixed 5-way 1-shot 15-query glyphs episodes (the
               threat's forward and backward passes; the per-episode accuracies come from it)
    record   = what per-query results add: keeping each episode's bits (one concatenation and
               split of the result tensors), packing them (`packed_bits`), the query counts and
               their share of the ``per_episode.json`` artifact (JSON text)

and prints ``record / evaluate`` per threat. A cheap threat (clean) is the worst case for the
ratio; an attack (PGD-10) is what robust suites spend their time on.
Run: ``python -m benchmarks.per_query_cost [--episodes 200] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bench.data.episodes import fixed_episodes
from bench.registry import DATASETS, THREATS
from bench.run.evaluate import evaluate_queries, threat_seeds
from bench.run.runner import packed_bits
from bench.testing import make_baseline

THREATS_TIMED = {"clean": None, "pgd-10": {"eps": 8 / 255, "alpha": 2 / 255, "steps": 10}}


def _threat(name: str, params: dict | None):
    cls = THREATS.get("pgd" if params else "clean")
    return cls(cls.Config(**params) if params else None)


def _record_seconds(outcome, accuracies_only: bool) -> float:
    start = time.perf_counter()
    stored: dict = {"accuracy": outcome.accuracies}
    if not accuracies_only:
        # what `evaluate_queries` does beyond the per-episode sums: one concatenation and split
        kept = torch.cat(outcome.correct).to(torch.bool).split([c.numel() for c in outcome.correct])
        stored |= {"correct": list(packed_bits(list(kept))), "queries": [c.numel() for c in outcome.correct]}
    json.dumps(stored).encode()
    return time.perf_counter() - start


def measure(episodes: int, repeats: int) -> None:
    torch.set_num_threads(1)
    source = DATASETS.get("glyphs")()
    dataset = source.ensure(None, 28)
    episode_set = fixed_episodes(dataset, "test", 5, 1, 15, episodes, seed=0)
    baseline = make_baseline("protonet")
    for label, params in THREATS_TIMED.items():
        threat = _threat(label, params)
        seeds = threat_seeds(0, episode_set, label)
        evaluate, extra = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            outcome = evaluate_queries(baseline, episode_set, threat, seeds)
            evaluate.append(time.perf_counter() - start)
            extra.append(_record_seconds(outcome, False) - _record_seconds(outcome, True))
        best, added = min(evaluate), min(extra)
        print(f"{label:7} evaluate {best:8.3f} s  per-query recording {1000 * added:7.2f} ms  "
              f"ratio {added / best:.4f} ({100 * added / best:.2f}% of the evaluation)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    measure(args.episodes, args.repeats)


if __name__ == "__main__":
    main()
