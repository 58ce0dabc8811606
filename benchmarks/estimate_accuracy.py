"""How close the dry run's estimate comes to the time a run then takes (issue 27: within 25%).

Runs SUITE with seed 0 into a fresh store, estimates the same suite with seed 1 from those
runs (`bench.scheduler.estimate`, as `bench run --dry-run` does), runs seed 1, and prints the
estimated against the measured device time (the sum of the jobs' device seconds) and wall
time (the whole `bench run`, start-up included, on ``--workers`` slots).
Run: ``python -m benchmarks.estimate_accuracy smoke [--workers 2]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.plan.jobs import make_plan
from bench.scheduler.estimate import device_kind, job_seconds, measured_rates
from bench.suite.load import load_suite
from bench.tracking import Tracker
from bench.tracking.records import DEVICE


def run(suite: str, seed: int, uri: str, workers: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench", "run", suite, "--set", f"seeds=[{seed}]", "--tracking-uri", uri,
                    "--workers", str(workers), "--no-progress"], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{Path(folder) / 'estimate.db'}"
        run(args.suite, 0, uri, args.workers)
        name = load_suite(args.suite).name
        runs = Tracker(uri, name, create=False).runs()
        rates = measured_rates(runs, device_kind(runs[0].data.tags[f"bench.{DEVICE}"]))
        plan = make_plan(load_suite(args.suite, ("seeds=[1]",)))
        jobs = [job for t in plan.train_jobs for job in (t, *plan.eval_jobs[t.key])]
        estimated = sum(job_seconds(job, rates) or 0.0 for job in jobs)
        wall = run(args.suite, 1, uri, args.workers)
        after = [r for r in Tracker(uri, name, create=False).runs() if r.data.tags.get("bench.seed") == "1"]
        measured = sum(r.data.metrics.get("device_seconds", 0.0) for r in after)
    print(f"{args.suite}, seed 1 estimated from seed 0, {args.workers} slot(s), {len(jobs)} jobs")
    print(f"device time: estimated {estimated:.1f} s, measured {measured:.1f} s, ratio {estimated / measured:.3f}")
    print(f"wall time:   estimated {estimated / args.workers:.1f} s (device / slots), measured {wall:.1f} s "
          f"(whole command), ratio {estimated / args.workers / wall:.3f}")


if __name__ == "__main__":
    main()
