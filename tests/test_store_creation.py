"""A new SQLite store appears complete or not at all, wherever its creation is killed.

Before, SIGKILL about 3.8 s into the first `bench run` on a new path left a half-migrated
file on which every later run failed (``table ... already exists``). The child below creates
a store the way `bench run` does; it is killed at 10 moments spread over the migration. Each
moment is an observable state, not a time: the temporary file has grown to k/10 of the size of
a store created without interruption (the migrations only add tables and rows, so the file
grows steadily from empty to that size). After each kill the store is absent or usable, and the
next creation succeeds and leaves no temporary file behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import LineReader

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


def _start(uri: str) -> tuple[subprocess.Popen, LineReader]:
    """The child, in its own session (SIGINT restored to default in it, whatever this process
    inherited), once it is ready to create the store."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    reader = LineReader(child)
    reader.wait_for("ready", timeout=120)
    return child, reader


def _go(child: subprocess.Popen) -> None:
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()


def _temporaries(folder: Path) -> list[Path]:
    return list(folder.glob(".mlflow.db.*.creating"))


def _wait_for_temporary(folder: Path, child: subprocess.Popen, at_least: int = 0, timeout: float = 60) -> bool:
    """True once the temporary store exists with ``at_least`` bytes; False if it is gone (renamed
    into place) or the child finished first."""
    deadline = time.monotonic() + timeout
    seen = False
    while time.monotonic() < deadline:
        for path in _temporaries(folder):
            seen = True
            try:
                if path.stat().st_size >= at_least:
                    return True
            except FileNotFoundError:  # renamed between the glob and the stat
                pass
        if child.poll() is not None or (seen and not _temporaries(folder)):
            return False
        time.sleep(0.002)  # a poll interval; the deadline above bounds the wait
    raise AssertionError(f"the child never wrote {at_least} bytes of the temporary store")


def _created_size(folder: Path) -> int:
    """The size of a store created without interruption."""
    child, reader = _start(f"sqlite:///{folder}/mlflow.db")
    _go(child)
    assert _wait_for_temporary(folder, child)
    reader.wait_for("created", timeout=120)
    child.wait(timeout=60)
    return (folder / "mlflow.db").stat().st_size


def _usable(uri: str) -> None:
    from bench.tracking import Tracker
    from bench.tracking.records import JOB_KEY, KIND

    tracker = Tracker(uri, "after")
    run_id = tracker.start("probe", {JOB_KEY: "k", KIND: "train"})
    tracker.end(run_id)
    assert tracker.finished() == {"k": run_id}


def test_killed_store_creation_leaves_no_store_or_a_usable_one(tmp_path: Path) -> None:
    (tmp_path / "reference").mkdir()
    size = _created_size(tmp_path / "reference")
    assert size > 0
    outcomes = []
    for moment in range(MOMENTS):
        folder = tmp_path / f"kill-{moment}"
        folder.mkdir()
        uri = f"sqlite:///{folder}/mlflow.db"
        child, _ = _start(uri)
        _go(child)
        # The kill lands once the migration has written moment/MOMENTS of the store (moment 0:
        # as soon as the temporary file exists); the assertions below hold for any moment.
        started = _wait_for_temporary(folder, child, at_least=size * moment // MOMENTS)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        exists = (folder / "mlflow.db").exists()
        outcomes.append("complete" if exists else "absent")
        if exists:
            _usable(uri)
        _usable(uri)  # creating again after a kill works
        assert (started or exists) and not list(folder.glob(".mlflow.db.*"))
    print(f"store after a kill at {MOMENTS} moments: {outcomes}")
    assert "absent" in outcomes  # the kills did land inside the creation
