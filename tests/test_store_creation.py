"""A new SQLite store appears complete or not at all, wherever its creation is killed.

Before, SIGKILL about 3.8 s into the first `bench run` on a new path left a half-migrated
file on which every later run failed (``table ... already exists``). The child below creates
a store the way `bench run` does; it is killed at 10 moments spread over the migration (the
moments are measured from an uninterrupted creation, then counted from the moment the
temporary file appears: an observable state). After each kill the store is absent or usable,
and the next creation succeeds and leaves no temporary file behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHILD = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
from bench.tracking import Tracker
print("ready", flush=True)
sys.stdin.readline()
Tracker(sys.argv[1], "created")
print("created", flush=True)
"""
MOMENTS = 10


def _start(uri: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def _go(child: subprocess.Popen) -> None:
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()


def _wait_for_temporary(folder: Path, child: subprocess.Popen, timeout: float = 60) -> bool:
    """True once the temporary store exists; False if the child finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(folder.glob(".mlflow.db.*.creating")):
            return True
        if child.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the child never started creating the store")


def _creation_seconds(folder: Path) -> float:
    child = _start(f"sqlite:///{folder}/mlflow.db")
    _go(child)
    assert _wait_for_temporary(folder, child)
    start = time.monotonic()
    assert child.stdout is not None and child.stdout.readline().strip() == "created"
    child.wait(timeout=60)
    return time.monotonic() - start


def _usable(uri: str) -> None:
    from bench.tracking import Tracker

    tracker = Tracker(uri, "after")
    run_id = tracker.start("probe", {"job_key": "k", "kind": "train"})
    tracker.end(run_id)
    assert tracker.finished() == {"k": run_id}


def test_killed_store_creation_leaves_no_store_or_a_usable_one(tmp_path: Path) -> None:
    seconds = _creation_seconds(tmp_path / "reference")
    outcomes = []
    for moment in range(MOMENTS):
        folder = tmp_path / f"kill-{moment}"
        folder.mkdir()
        uri = f"sqlite:///{folder}/mlflow.db"
        child = _start(uri)
        _go(child)
        started = _wait_for_temporary(folder, child)
        time.sleep(seconds * moment / MOMENTS * 1.1)  # when to kill; the assertions hold for any moment
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        exists = (folder / "mlflow.db").exists()
        outcomes.append("complete" if exists else "absent")
        if exists:
            _usable(uri)
        _usable(uri)  # creating again after a kill works
        assert started and not list(folder.glob(".mlflow.db.*"))
    print(f"store after a kill at {MOMENTS} moments: {outcomes}")
    assert "absent" in outcomes  # the kills did land inside the creation
