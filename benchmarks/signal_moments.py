"""SIGTERM and SIGINT to the whole process group at ten moments of a run (issue 27 target).

Times one uninterrupted `bench run` of a suite with two workers (the reference), then, for
ten moments spread over that time (start-up, training, evaluation, recording, as they fall),
starts the same run on a fresh store, sends SIGTERM or SIGINT (alternately) to its process
group at that moment, and reruns it to the end. Prints per moment: the exit code, FAILED and
RUNNING runs after the stop, the phase the signal hit (from what the store and resume states
held), and whether the finished per-episode accuracies equal the reference's bitwise.
Run: ``python -m benchmarks.signal_moments [--moments 10]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.tracking import Tracker
from bench.tracking.records import LABEL, SEED, THREAT_LABEL

SUITE = """name: moments
seeds: [0]
datasets: [{name: glyphs, way: 5, shot: 1, query: 5}]
train: {steps: 200, meta_batch: 2, checkpoint_every: 10}
eval: {episodes: 50}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: 4/255}}, {name: pgd, params: {eps: 4/255, steps: 10}}]
"""


def command(suite: Path, uri: str) -> list[str]:
    return [sys.executable, "-m", "bench", "run", str(suite), "--tracking-uri", uri, "--workers", "2", "--no-progress"]


def per_episode(uri: str) -> dict[tuple[str, str, str], list[float]]:
    return {(r.tags[LABEL], r.tags[THREAT_LABEL], r.tags[SEED]): r.per_episode
            for r in Tracker(uri, "moments", create=False).records() if r.status == "FINISHED"}


def phase(uri: str, states: Path) -> str:
    """What the run had reached when it stopped, from what it left behind."""
    runs = Tracker(uri, "moments", create=False).runs() if Path(uri.removeprefix("sqlite:///")).exists() else []
    kinds = Counter(r.data.tags.get("bench.kind") for r in runs if r.info.status == "FINISHED")
    if kinds["eval"]:
        return f"evaluation ({kinds['train']} trained, {kinds['eval']} evaluated)"
    if kinds["train"]:
        return f"evaluation ({kinds['train']} trained)"
    return "training" if list(states.glob("*.pt")) else "start-up"


def one_moment(folder: Path, suite: Path, at: float, signum: int) -> tuple[int, Counter, str, dict]:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    process = subprocess.Popen(command(suite, uri), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    time.sleep(at)  # a moment of the run's life, not a wait for a state: the point is any moment
    os.killpg(process.pid, signum)
    code = process.wait(timeout=600)
    after = Counter(r.info.status for r in Tracker(uri, "moments", create=False).runs()) \
        if (folder / "mlflow.db").exists() else Counter()
    hit = phase(uri, folder / "bench-resume")
    subprocess.run(command(suite, uri), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return code, after, hit, per_episode(uri)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moments", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        suite = Path(root) / "moments.yaml"
        suite.write_text(SUITE)
        began = time.perf_counter()
        subprocess.run(command(suite, f"sqlite:///{Path(root) / 'reference.db'}"), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total = time.perf_counter() - began
        reference = per_episode(f"sqlite:///{Path(root) / 'reference.db'}")
        print(f"reference run: {total:.1f} s, {len(reference)} evaluations")
        clean = 0
        for i in range(args.moments):
            at = total * (i + 0.5) / args.moments
            signum = (signal.SIGTERM, signal.SIGINT)[i % 2]
            folder = Path(root) / f"moment{i}"
            folder.mkdir()
            code, after, hit, final = one_moment(folder, suite, at, signum)
            good = code == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum] and not after["FAILED"] \
                and not after["RUNNING"] and final == reference
            clean += good
            print(f"{at:6.1f} s {signal.Signals(signum).name:7} exit {code}, FAILED {after['FAILED']}, RUNNING "
                  f"{after['RUNNING']}, hit {hit}; resumed equal to the reference: {final == reference}")
        print(f"{clean}/{args.moments} moments stopped cleanly and resumed to the reference's numbers")


if __name__ == "__main__":
    main()
