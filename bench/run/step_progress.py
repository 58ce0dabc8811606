"""Training progress from a worker to the driver's display: one small file per running train job.

A train job runs in the driver (one slot), in a local worker process or in a Ray task; all of
them can write a file, none of them shares memory or a queue with every other. The driver
makes a directory for the run (`StepFiles`), passes its path to each train job, and the job's
`StepReporter` replaces ``<dir>/<job key>`` with ``"<step> <total>"`` at most once a second
(and at the last step), by an atomic rename, so the display never reads half a file. A job
whose directory does not exist (a Ray node on another machine) reports nothing, and the
display shows its elapsed time only.

Bookkeeping only (`bench.plan.fingerprint.BOOKKEEPING`): what it writes never reaches a result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

INTERVAL = 1.0  # seconds between two writes of one job


class StepReporter:
    """``reporter(step, total)`` after each meta-update; writes when due (see the module doc)."""

    def __init__(self, directory: str | None, key: str, clock=time.monotonic) -> None:
        self.path = Path(directory) / key if directory and os.path.isdir(directory) else None
        self.clock = clock
        self.last = float("-inf")

    def __call__(self, step: int, total: int) -> None:
        now = self.clock()
        if self.path is None or (now - self.last < INTERVAL and step < total):
            return
        self.last = now
        partial = self.path.with_suffix(".partial")
        try:
            partial.write_text(f"{step} {total}", encoding="ascii")
            os.replace(partial, self.path)
        except OSError:  # the run ended and removed the directory: nobody is reading any more
            self.path = None


class StepFiles:
    """The driver's side: a private directory for one run (made by `open`), read by job key,
    removed by `close`."""

    def __init__(self) -> None:
        self.directory: str | None = None

    def open(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="bench-steps-")

    def read(self, key: str) -> tuple[int, int] | None:
        """(step, total) last reported by train job ``key``, or None before its first report."""
        if self.directory is None:
            return None
        try:
            step, total = (Path(self.directory) / key).read_text(encoding="ascii").split()
            return int(step), int(total)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
