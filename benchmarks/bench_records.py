"""Reading records at scale: `bench report` and `bench run --dry-run` on a store of N eval runs.

A store is filled with the records of a generated suite (N evaluation runs under N/100 train
runs, written by the project's own recorder with synthetic per-episode accuracies, so tags,
params and artifacts are exactly what real runs write). Then, in fresh processes:

    read once  = reading every file of the store (the database and every artifact) once
    report     = `bench report SUITE --format md` (tables, comparisons, every record read)
    dry run    = `bench run SUITE --dry-run` (resume planning over the whole store)

and each is printed in seconds, per 1,000 runs and as a ratio to "read once" (measured in the
same run: these machines are noisy). Two sizes show whether the cost is linear in N.
Target (issue 12): 10,000 runs reported in at most 30 s on the 2-core development machine.
Run: ``python -m benchmarks.bench_records [--runs 2000 10000] [--keep DIR]`` (multiples of 1,000).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREATS_PER_JOB = 100
SUITE = """
name: records{runs}
seeds: {seeds}
datasets: [{{name: glyphs, way: 5, shot: 1, query: 15}}]
train: {{steps: 1}}
eval: {{episodes: 600}}
baselines: [protonet, maml, reptile, matchingnet, relationnet, r2d2, anil, promaml, mamlpp, finetune]
threats:
  - {{name: fgsm, params: {{eps: {radii}}}}}
  - {{name: pgd, params: {{eps: {radii}, steps: 10}}}}
"""


def write_suite(folder: Path, runs: int) -> Path:
    """A suite with ``runs`` eval jobs: 10 baselines x seeds x 100 threats."""
    seeds, rest = divmod(runs, 10 * THREATS_PER_JOB)
    if rest or not seeds:
        raise SystemExit(f"--runs {runs}: give a multiple of {10 * THREATS_PER_JOB}")
    radii = "[" + ", ".join(f"{i}/255" for i in range(1, THREATS_PER_JOB // 2 + 1)) + "]"
    path = folder / f"records{runs}.yaml"
    path.write_text(SUITE.format(runs=runs, seeds=list(range(seeds)), radii=radii))
    return path


def fill_store(suite_path: Path, uri: str) -> int:
    """Record every job of the suite with synthetic results; returns the eval runs written."""
    from bench.plan.jobs import make_plan
    from bench.run.runner import EvalResult, TrainResult
    from bench.suite.load import load_suite
    from bench.tracking import Tracker
    from bench.tracking.recording import record_eval, record_train

    suite = load_suite(str(suite_path))
    plan, tracker = make_plan(suite), Tracker(uri, suite.name)
    rng = random.Random(0)
    written = 0
    for job in plan.train_jobs:
        curve = [{"loss": 1.0}]
        parent = record_train(tracker, suite, job, TrainResult(job.key, curve, b"weights", 1.0, "cpu:bench", "d"))
        for ev in plan.eval_jobs[job.key]:
            accuracies = [rng.randrange(76) / 75 for _ in range(suite.eval.episodes)]
            result = EvalResult(ev.key, accuracies, 1.0, "cpu:bench", "d", "e", "attack")
            record_eval(tracker, suite, ev, parent, result)
            written += 1
    return written


def read_once(folder: Path) -> float:
    """Seconds to read every file of the store (database and artifacts) once."""
    start = time.perf_counter()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            path.read_bytes()
    return time.perf_counter() - start


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def measure(folder: Path, runs: int) -> dict[str, float]:
    suite = write_suite(folder, runs)
    store = folder / f"store{runs}"
    store.mkdir(exist_ok=True)
    uri = f"sqlite:///{store}/mlflow.db"
    if not (store / "mlflow.db").exists():
        start = time.perf_counter()
        written = fill_store(suite, uri)
        print(f"wrote {written} eval runs in {time.perf_counter() - start:.0f} s", flush=True)
    bench = [sys.executable, "-m", "bench"]
    figures = {"read once": read_once(store)}
    figures["report"] = timed([*bench, "report", str(suite), "--format", "md", "--tracking-uri", uri,
                               "--out", str(folder / "reports")], folder)
    figures["dry run"] = timed([*bench, "run", str(suite), "--dry-run", "--tracking-uri", uri], folder)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--keep", default=None, help="folder to keep the generated stores in (reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for runs in args.runs:
            figures = measure(folder, runs)
            base = figures["read once"]
            print(f"{runs} eval runs:")
            for name, seconds in figures.items():
                print(f"  {name:10} {seconds:7.2f} s  {1000 * seconds / runs:6.3f} s per 1,000 runs  "
                      f"{seconds / base:7.1f}x read once")


if __name__ == "__main__":
    main()
