"""MLflow records: the ONLY module that imports mlflow (DESIGN.md "MLflow").

Experiment = suite. One run per train job (params: resolved config; tags: suite, job key,
code and package versions, device, data hash; artifacts: checkpoint, resolved config,
training curve) and one nested run per threat evaluation (metrics: accuracy, CI half-width,
episodes, device seconds; artifact: per-episode accuracies). Runs are written through
`MlflowClient` with explicit run ids, never the fluent API's global "active run", so several
jobs can be recorded from one process without interfering.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# MLflow's per-download progress bars and table-creation notices would drown the job lines.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402

# After the import: mlflow configures its own loggers when imported.
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from bench.errors import BenchError  # noqa: E402

DEFAULT_URI = "sqlite:///mlflow.db"
RETRIES = 8
TRANSIENT = ("locked", "busy", "connection", "timed out", "temporarily", "503", "502")
TAG = "bench."
PER_EPISODE = "per_episode.json"
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class RunRecord:
    """One evaluation (or failed) run as the report sees it: plain data, no mlflow types."""

    run_id: str
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    per_episode: list[float] = field(default_factory=list)


def resolve_uri(uri: str | None) -> str:
    """The tracking URI: the argument, else ``$MLFLOW_TRACKING_URI``, else ./mlflow.db (SQLite)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def absolute_uri(uri: str) -> str:
    """A relative SQLite path made absolute: MLflow caches stores by URI string, so a relative
    path would keep pointing at the first working directory's file within one process."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def retried(method: Callable[..., Any]) -> Callable[..., Any]:
    """Retry a store call on transient errors (a SQLite file locked by another process, a
    server briefly unreachable), with exponential backoff; the last error propagates."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(RETRIES):
            try:
                return method(*args, **kwargs)
            except (mlflow.exceptions.MlflowException, OSError) as exc:
                transient = any(word in str(exc).lower() for word in TRANSIENT)
                if not transient or attempt == RETRIES - 1:
                    raise
                time.sleep(min(0.05 * 2**attempt, 2.0))
        raise AssertionError("unreachable")

    return wrapper


class Tracker:
    """Reads and writes the runs of one suite's experiment."""

    def __init__(self, uri: str | None, experiment: str, create: bool = True) -> None:
        self.uri = resolve_uri(uri)  # as the user gave it (shown in reports)
        self.client = MlflowClient(tracking_uri=absolute_uri(self.uri))
        self.experiment_name = experiment
        self.experiment_id = self._experiment(create)

    def _experiment(self, create: bool) -> str | None:
        try:
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is not None:
                return str(found.experiment_id)
            if not create:
                return None
            return str(self.client.create_experiment(self.experiment_name, artifact_location=self._artifacts()))
        except mlflow.exceptions.MlflowException as exc:
            raise BenchError(f"cannot use the MLflow tracking store {self.uri!r}: {exc}. Check "
                             f"--tracking-uri (e.g. sqlite:///mlflow.db or http://127.0.0.1:5000).") from exc

    def _artifacts(self) -> str | None:
        """Artifacts of a SQLite store live beside the database file (``mlruns/``), whatever the
        working directory; other stores use their server's default."""
        resolved = absolute_uri(self.uri)
        if not resolved.startswith("sqlite:///"):
            return None
        return (Path(resolved[len("sqlite:///"):]).parent / "mlruns" / self.experiment_name).as_uri()

    @retried
    def runs(self) -> list[Any]:
        """Every run of the experiment (all statuses), oldest first."""
        if self.experiment_id is None:
            return []
        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], max_results=1000, page_token=token,
                                           order_by=["attributes.start_time ASC"])
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    @retried
    def finished(self) -> dict[str, str]:
        """Job key -> run id of its FINISHED run."""
        return {r.data.tags[TAG + "job_key"]: r.info.run_id for r in self.runs()
                if r.info.status == "FINISHED" and TAG + "job_key" in r.data.tags}

    @retried
    def delete_partial(self) -> int:
        """Delete runs left RUNNING by a killed driver (partial records); returns how many.

        The driver writes a run in one go after its job finished, so a RUNNING run of ours is
        never live unless two drivers share one experiment, which `bench run` does not support.
        """
        partial = [r.info.run_id for r in self.runs()
                   if r.info.status == "RUNNING" and TAG + "job_key" in r.data.tags]
        for run_id in partial:
            self.client.delete_run(run_id)
        return len(partial)

    @retried
    def start(self, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        all_tags = {TAG + k: str(v) for k, v in tags.items()}
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        assert self.experiment_id is not None, "writing needs a Tracker created with create=True"
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        return str(run.info.run_id)

    @retried
    def log(self, run_id: str, params: dict[str, Any] | None = None,
            metrics: dict[str, float] | None = None, step: int = 0) -> None:
        params_list = [Param(k, str(v)[:6000]) for k, v in sorted((params or {}).items())]
        metric_list = [Metric(k, float(v), 0, step) for k, v in sorted((metrics or {}).items())]
        for i in range(0, max(len(params_list), 1), 100):
            self.client.log_batch(run_id, params=params_list[i:i + 100],
                                  metrics=metric_list if i == 0 else [])

    @retried
    def log_curve(self, run_id: str, curve: list[dict[str, float]]) -> None:
        """Per-step training scalars as MLflow metric histories (batched, 1000 per call)."""
        metrics = [Metric(k, float(v), 0, step) for step, row in enumerate(curve) for k, v in row.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i:i + 1000])

    @retried
    def log_file(self, run_id: str, name: str, content: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(content)
            self.client.log_artifact(run_id, str(path))

    @retried
    def read_file(self, run_id: str, name: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.client.download_artifacts(run_id, name, tmp)).read_bytes()

    @retried
    def end(self, run_id: str, status: str = "FINISHED", error: str | None = None) -> None:
        if error is not None:
            self.client.set_tag(run_id, TAG + "error", error[:5000])
            self.log_file(run_id, "traceback.txt", error.encode())
        self.client.set_terminated(run_id, status)

    def records(self) -> list[RunRecord]:
        """Every evaluation run with its per-episode accuracies: the FINISHED one of each job,
        else its latest FAILED attempt (so a failure that was retried successfully is gone)."""
        chosen: dict[str, Any] = {}
        for run in self.runs():  # oldest first: later attempts replace earlier failures
            tags = run.data.tags
            if tags.get(TAG + "kind") != "eval" or run.info.status not in ("FINISHED", "FAILED"):
                continue
            key = tags.get(TAG + "job_key", run.info.run_id)
            if chosen.get(key) is None or chosen[key].info.status != "FINISHED":
                chosen[key] = run
        out = []
        for run in chosen.values():
            tags = dict(run.data.tags)
            per_episode = []
            if run.info.status == "FINISHED":
                per_episode = json.loads(self.read_file(run.info.run_id, PER_EPISODE))["accuracy"]
            short = {k[len(TAG):]: v for k, v in tags.items() if k.startswith(TAG)}
            out.append(RunRecord(run.info.run_id, run.info.status, short, dict(run.data.params),
                                 dict(run.data.metrics), per_episode))
        return out
