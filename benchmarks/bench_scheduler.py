"""Scheduling efficiency and per-job overhead of the local backend, measured in one run.

N equal CPU jobs (ProtoNet train jobs, each followed by one clean evaluation) are run twice
into fresh SQLite stores: one after another in this process (1 slot), then on k worker
processes. From the device seconds every job records in MLflow:

    efficiency = wall(k slots) / (sum of job seconds run one after another / k)   target <= 1.1
    overhead   = (wall(1 slot) - sum of job seconds) / jobs   target < 0.5 s per job

Worker start-up (spawning k processes that import torch) is included in wall(k slots).
Run: ``python benchmarks/bench_scheduler.py [--jobs 8 --workers 2 --steps 60]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.scheduler import RunOptions, run_suite
from bench.scheduler.progress import Progress
from bench.suite.load import load_suite
from bench.tracking import Tracker

SUITE = """
name: schedbench
seeds: {seeds}
datasets: [{{name: glyphs, way: 5, shot: 1, query: 5}}]
train: {{steps: {steps}, meta_batch: 2}}
eval: {{episodes: 20}}
baselines: [protonet]
threats: [clean]
"""


def timed_run(folder: Path, jobs: int, steps: int, workers: int) -> tuple[float, float, int]:
    """Wall seconds, summed job device seconds, and number of recorded runs."""
    path = folder / "schedbench.yaml"
    path.write_text(SUITE.format(seeds=list(range(jobs)), steps=steps))
    suite = load_suite(str(path))
    uri = f"sqlite:///{folder}/store-{workers}.db"
    Tracker(uri, suite.name)  # create the store outside the timed region
    start = time.perf_counter()
    run_suite(suite, uri, RunOptions(device="cpu", workers=workers), Progress(False))
    wall = time.perf_counter() - start
    runs = Tracker(uri, suite.name, create=False).runs()
    busy = sum(r.data.metrics.get("device_seconds", 0.0) for r in runs)
    return wall, busy, len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wall_1, busy_1, runs_1 = timed_run(folder, args.jobs, args.steps, 1)
        wall_k, busy_k, runs_k = timed_run(folder, args.jobs, args.steps, args.workers)
    assert runs_1 == runs_k == 2 * args.jobs
    print(f"{args.jobs} train jobs + {args.jobs} evaluations, {args.workers} workers")
    print(f"1 slot : wall {wall_1:7.1f}s, job seconds {busy_1:7.1f}s, overhead "
          f"{(wall_1 - busy_1) / runs_1:.3f} s per job (target < 0.5)")
    print(f"{args.workers} slots: wall {wall_k:7.1f}s, job seconds {busy_k:7.1f}s (contention: x{busy_k / busy_1:.2f})")
    print(f"efficiency wall(k) / (sequential job seconds / k) = {wall_k / (busy_1 / args.workers):.3f} "
          f"(target <= 1.1); against the parallel run's own job seconds: {wall_k / (busy_k / args.workers):.3f}")


if __name__ == "__main__":
    main()
