"""A train job's resumable state on disk: one file, replaced atomically, read back on restart.

Where: a folder beside the tracking store (`state_folder`): ``<folder of mlflow.db>/bench-resume``
for a SQLite store, else ``$BENCH_DATA/resume/<hash of the URI>`` (default under
``~/.cache/fewshot-bench``). Not an MLflow artifact: the driver is the store's only writer and
records a job when it is done; a state written every few minutes by each worker, some hundreds
of megabytes for a ResNet with Adam moments, would need a RUNNING run per job and a transfer
per write through a tracking server. A file is written where the worker runs: local workers and
Ray on one machine share it; a multi-node Ray cluster needs that folder on a shared file system
(else a preempted job restarts from step 0, still with the same result).

The file name holds the job key and its code fingerprint, so a state written by other code is
never resumed; the driver deletes the file once the job's result is recorded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from bench.data.cache import data_root

# The entries of a state that say how far training got (`bench.run.training.Trainer` saves its
# `Progress` under "progress"; its field "step" counts the meta-updates done).
PROGRESS, STEP = "progress", "step"


def state_folder(tracking_uri: str) -> Path:
    """The folder holding the resumable states of jobs recorded in ``tracking_uri``."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "bench-resume"
    return data_root() / "resume" / hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]


class ResumeFile:
    """The resumable state of one job: `save` replaces it atomically, `load` reads it or None."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def for_job(cls, folder: Path, key: str, fingerprint: str) -> ResumeFile:
        return cls(folder / f"{key}-{fingerprint}.pt")

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("wb") as out:
            torch.save(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)  # a SIGKILL leaves the old state or the new one, never half

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def saved_step(self) -> int | None:
        """The meta-update a saved state resumes from, None without one (or an unreadable one).
        The file is memory-mapped: the progress entry is read, the weights are not."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True, mmap=True)
            return int(state[PROGRESS][STEP])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError):
            return None  # a file of another format: the run starts over and replaces it

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_name(self.path.name + ".partial").unlink(missing_ok=True)
