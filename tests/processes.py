"""Child `bench run` processes for the tests of stopping, resuming and sharing a store: start one
with chosen signal dispositions, wait for an observable state (a resumable state file, finished
runs in the store), never a fixed sleep."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

from bench.tracking import Tracker
from bench.tracking.records import LABEL, SEED, THREAT_LABEL


def per_episode(uri: str, name: str) -> dict[tuple[str, str, str], list[float]]:
    """(baseline label, threat label, seed) -> per-episode accuracies of suite ``name``'s finished runs."""
    return {(r.tags[LABEL], r.tags[THREAT_LABEL], r.tags[SEED]): r.per_episode
            for r in Tracker(uri, name, create=False).records() if r.status == "FINISHED"}


def suite_in_workdir(tmp_path: Path, monkeypatch, filename: str, text: str) -> Path:
    """``text`` written to ``tmp_path/filename``, which becomes the working directory (no
    ``$MLFLOW_TRACKING_URI``, so the default store is there too)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / filename
    path.write_text(text)
    return path


def statuses(uri: str, name: str) -> Counter:
    """Run statuses of suite ``name`` in the store at ``uri``."""
    return Counter(r.info.status for r in Tracker(uri, name, create=False).runs())


def bench_process(*args: str, inherited: signal.Handlers = signal.SIG_DFL, stdout: int | IO = subprocess.DEVNULL,
                  stderr: int | IO = subprocess.DEVNULL) -> subprocess.Popen:
    """``python -m bench ARGS`` in its own session, with SIGINT and SIGTERM set by the test.

    The dispositions do not depend on how this test was started: ``inherited`` is what the
    child starts with (SIG_DFL as from an interactive shell, SIG_IGN as from ``cmd &`` in a
    background shell). Its own session keeps signals meant for the test away from it and lets
    `kill_group` reach every process it starts. Output goes to files or a reader, never to an
    unread pipe that could fill and stall the child.
    """
    def dispositions() -> None:
        signal.signal(signal.SIGINT, inherited)
        signal.signal(signal.SIGTERM, inherited)

    return subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=stdout, stderr=stderr, text=True,
                            start_new_session=True, preexec_fn=dispositions)


def wait_for_runs(uri: str, count: int, process: subprocess.Popen, timeout: float = 240, name: str = "sched") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if statuses(uri, name).get("FINISHED", 0) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} finished runs before the process ended or timed out")


def wait_for_state(folder: Path, process: subprocess.Popen, newer_than: float = 0.0, timeout: float = 240) -> None:
    """Until a resumable state newer than ``newer_than`` (mtime) exists in ``folder``."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if any(p.stat().st_mtime > newer_than for p in folder.glob("*.pt")):
            return
        time.sleep(0.05)
    raise AssertionError("no resumable state was written before the process ended or timed out")
