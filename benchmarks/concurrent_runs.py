"""Several `bench run` of one suite on one store at once (issue 27 targets).

For N in ``--runs`` (default 2 and 4) on a fresh SQLite store (and, with ``--server URI``, on
that `mlflow server`, e.g. one backed by PostgreSQL): N processes with one slot each, started
together, against one process with N slots on another fresh store (the reference, same total
slots, same machine, same moment). Prints, per N: duplicated FINISHED runs (job keys with more
than one), runs left RUNNING, and the wall time of the N processes over the reference's.
``--kill`` adds the takeover figure: one process SIGKILLed while it holds a claim, and the
seconds until another driver holds that job's claim.
Run: ``python -m benchmarks.concurrent_runs [--suite PATH] [--runs 2 4] [--server URI] [--kill]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.suite.load import load_suite
from bench.tracking import Tracker
from bench.tracking.claims import ClaimBoard
from bench.tracking.records import JOB_KEY, TAG

TWELVE_JOBS = """name: {name}
seeds: [{seed}, {next_seed}]
datasets: [{{name: glyphs, way: 5, shot: 1, query: 5}}]
train: {{steps: 150, meta_batch: 2}}
eval: {{episodes: 50}}
baselines: [protonet, maml]
threats: [clean, {{name: fgsm, params: {{eps: 4/255}}}}]
"""


def start(suite: Path, uri: str, workers: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", "run", str(suite), "--tracking-uri", uri, "--workers",
                             str(workers), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def finish(processes: list[subprocess.Popen]) -> list[int]:
    return [process.wait(timeout=3600) for process in processes]


def timed(suite: Path, uri: str, processes: int, workers: int) -> float:
    began = time.perf_counter()
    codes = finish([start(suite, uri, workers) for _ in range(processes)])
    assert set(codes) == {0}, codes
    return time.perf_counter() - began


def counts(uri: str, name: str) -> tuple[int, int, int]:
    """(jobs, job keys with more than one FINISHED run, runs left RUNNING)."""
    runs = Tracker(uri, name, create=False).runs()
    finished = Counter(r.data.tags[TAG + JOB_KEY] for r in runs if r.info.status == "FINISHED")
    return len(finished), sum(n > 1 for n in finished.values()), sum(r.info.status == "RUNNING" for r in runs)


def takeover_seconds(suite: Path, uri: str) -> float:
    """Seconds from the SIGKILL of a claimant to another driver's claim on its job."""
    victim, survivor = start(suite, uri, 1), start(suite, uri, 1)
    board = ClaimBoard(uri)
    while not (held := [c for c in board.holders().values() if f":{victim.pid}:" in c.holder]):
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    killed = time.perf_counter()
    while not any(c.key == held[0].key and f":{survivor.pid}:" in c.holder for c in board.holders().values()):
        if survivor.poll() is not None:  # it finished the job meanwhile
            break
        time.sleep(0.05)
    taken = time.perf_counter() - killed
    finish([survivor])
    victim.wait()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=None, help="a suite file (default: a 12-job glyphs suite)")
    parser.add_argument("--runs", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--server", default=None, help="also on this mlflow server (its store is shared)")
    parser.add_argument("--kill", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores = [("sqlite", "")] + ([("server", args.server)] if args.server else [])
        for index, (n, (kind, server)) in enumerate((n, store) for n in args.runs for store in stores):
            # Seeds of their own: a shared server store must not hold these jobs already.
            name = f"conc{n}-{kind}-{uuid.uuid4().hex[:6]}"
            suite = Path(args.suite) if args.suite else Path(folder) / f"{name}.yaml"
            if not args.suite:
                suite.write_text(TWELVE_JOBS.format(name=name, seed=2 * index + 100, next_seed=2 * index + 101))
            name = load_suite(str(suite)).name
            uri = server or f"sqlite:///{Path(folder) / f'{name}.db'}"
            reference = timed(suite, f"sqlite:///{Path(folder) / f'{name}-one.db'}", 1, n)
            Tracker(uri, name)  # the schema first
            wall = timed(suite, uri, n, 1)
            jobs, duplicated, running = counts(uri, name)
            print(f"{n} runs at once, {kind}: {jobs} jobs, {duplicated} duplicated, {running} RUNNING; wall "
                  f"{wall:.1f} s against {reference:.1f} s for one run on {n} slots, ratio {wall / reference:.3f}")
        if args.kill:
            name = f"kill-{uuid.uuid4().hex[:6]}"
            suite = Path(folder) / f"{name}.yaml"
            suite.write_text(TWELVE_JOBS.format(name=name, seed=0, next_seed=1))
            uri = f"sqlite:///{Path(folder) / 'kill.db'}"
            Tracker(uri, name)
            taken = takeover_seconds(suite, uri)
            jobs, duplicated, running = counts(uri, name)
            print(f"kill -9 of a claimant: its job claimed by the other after {taken:.2f} s; {jobs} jobs, "
                  f"{duplicated} duplicated, {running} RUNNING")


if __name__ == "__main__":
    main()
