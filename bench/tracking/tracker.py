"""Reading and writing one suite's runs (one MLflow experiment), and finding jobs store-wide.

Runs are written through `MlflowClient` with explicit run ids, never the fluent API's global
"active run", so several jobs can be recorded from one process without interfering.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param

from bench.errors import BenchError
from bench.suite.added import Additions
from bench.tracking.records import (
    COPIED_FROM,
    ERROR,
    JOB_KEY,
    TAG,
    FinishedRun,
    RunRecord,
    download_with,
    eval_records,
    finished_run,
    short_tags,
)
from bench.tracking.store import open_client, resolve_uri, retried, sqlite_path

# After the import: mlflow configures its own loggers when imported.
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)

ADDED_TAG = "bench.added."  # + label: a model added with `bench eval-model` (JSON of its entry)
NOTE = "mlflow.note.content"  # the experiment description the MLflow UI shows
# A view of the runs table stored on the experiment, as the UI's "Share" button stores one: the
# UI reads ``mlflow.sharedViewState.<key>`` when the runs URL carries ``viewStateShareKey=<key>``.
RESULTS_VIEW = "bench-results"
SHARED_VIEW_TAG = "mlflow.sharedViewState."
UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store
PAGE = 50_000  # MLflow's largest search page: one query per 50,000 runs


def now_ms() -> int:
    """Wall-clock milliseconds, as MLflow stores times (metric timestamps, run start and end)."""
    return int(time.time() * 1000)


class Tracker:
    """Reads and writes the runs of one suite's experiment.

    With ``create=False`` nothing is ever written: an absent SQLite store is not created and
    an absent experiment reads as empty.
    """

    def __init__(self, uri: str | None, experiment: str, create: bool = True, description: str = "") -> None:
        self.uri = resolve_uri(uri)  # absolute: messages name the store wherever they are read
        self.experiment_name = experiment
        self.description = description  # the suite's: the experiment's description in the MLflow UI
        try:
            self.client = open_client(self.uri, create)
            self.experiment_id = self._experiment(create) if self.client is not None else None
        except (mlflow.exceptions.MlflowException, OSError) as exc:
            raise BenchError(f"cannot use the MLflow tracking store {self.uri!r}: {exc}. Check "
                             f"--tracking-uri (e.g. sqlite:///mlflow.db or http://127.0.0.1:5000).") from exc

    def _experiment(self, create: bool) -> str | None:
        assert self.client is not None
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is None and not create:
            return None
        if found is None:
            experiment_id = str(self.client.create_experiment(self.experiment_name,
                                                              artifact_location=self._artifacts()))
        else:
            experiment_id = str(found.experiment_id)
        if create and self.description and (found is None or found.tags.get(NOTE) != self.description):
            self.client.set_experiment_tag(experiment_id, NOTE, self.description)
        return experiment_id

    @retried
    def publish_results_view(self, metrics: list[str]) -> None:
        """Store the runs-table view that shows ``metrics`` as columns (`results_url` opens it):
        MLflow 3 hides every metric column until one is picked by hand."""
        if self.client is None or self.experiment_id is None:
            return
        columns = [f"metrics.`{name}`" for name in dict.fromkeys(metrics)]
        state = json.dumps({"selectedColumns": ["attributes.`Duration`", *columns], "runsExpanded": {}})
        self.client.set_experiment_tag(self.experiment_id, SHARED_VIEW_TAG + RESULTS_VIEW, state)

    @retried
    def add_entry(self, section: str, name: str, entry: Any) -> None:
        """Store an entry added to the suite's ``section`` (``baselines`` or ``threats``) from
        outside its file (`bench.suite.added`), under ``name`` (a label, or `entry_tag`)."""
        assert self.client is not None and self.experiment_id is not None, "writing needs create=True"
        self.client.set_experiment_tag(self.experiment_id, f"{ADDED_TAG}{section}.{name}",
                                       json.dumps(entry, sort_keys=True))

    def additions(self) -> Additions:
        """The entries added to this suite (`add_entry`), per section in name order."""
        if self.client is None or self.experiment_id is None:
            return Additions()
        tags = self.client.get_experiment(self.experiment_id).tags
        found = {section: tuple(json.loads(tags[name]) for name in sorted(tags)
                                if name.startswith(f"{ADDED_TAG}{section}.")) for section in ("baselines", "threats")}
        return Additions(found["baselines"], found["threats"])

    def run_tags(self, run_id: str) -> dict[str, str]:
        """A run's tags without the ``bench.`` prefix (`records.short_tags`)."""
        assert self.client is not None
        return short_tags(self.client.get_run(run_id))

    def results_url(self) -> str:
        """The runs page with the results view: on this server, or on `mlflow ui` for a local store."""
        base = self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else UI
        return f"{base}/#/experiments/{self.experiment_id}/runs?viewStateShareKey={RESULTS_VIEW}"

    def _artifacts(self) -> str | None:
        """Artifacts of a SQLite store live beside the database file (``mlruns/``), whatever the
        working directory; other stores use their server's default."""
        path = sqlite_path(self.uri)
        return None if path is None else (path.parent / "mlruns" / self.experiment_name).as_uri()

    @retried
    def runs(self, everywhere: bool = False, key: str | None = None) -> list[Any]:
        """Every run of the experiment (or of every experiment of the store), oldest first;
        ``key``: only the runs of that job."""
        if self.client is None:
            return []
        if everywhere:
            ids = [str(e.experiment_id) for e in self.client.search_experiments()]
        else:
            ids = [] if self.experiment_id is None else [self.experiment_id]
        where = f"tags.`{TAG + JOB_KEY}` = '{key}'" if key else ""
        runs: list[Any] = []
        token = None
        while ids:
            page = self.client.search_runs(ids, filter_string=where, max_results=PAGE, page_token=token,
                                           order_by=["attributes.start_time ASC"])
            runs.extend(page)
            token = page.token
            if not token:
                break
        return runs

    def finished_runs(self, key: str | None = None) -> list[FinishedRun]:
        """Every FINISHED job run in the whole store (any suite), oldest first; ``key``: of that job."""
        found = (finished_run(run) for run in self.runs(everywhere=True, key=key))
        return [run for run in found if run is not None]

    def finished(self) -> dict[str, str]:
        """Job key -> run id of its FINISHED run in this experiment."""
        return {r.key: r.run_id for r in self.finished_runs() if r.experiment_id == self.experiment_id}

    @retried
    def delete_partial(self, claimed: Collection[str] = (), key: str | None = None) -> int:
        """Delete runs left RUNNING by a killed driver (partial records); returns how many.

        A driver writes a run in one go after its job finished, under the job's claim
        (`bench.tracking.claims`): a RUNNING run of a job ``claimed`` by a live driver (its key,
        or ``key@experiment`` for a copy) is being written now and is kept. ``key``: only that
        job's (whose claim the caller holds).
        """
        def live(key: str) -> bool:
            return key in claimed or f"{key}@{self.experiment_id}" in claimed

        partial = [r.info.run_id for r in self.runs(key=key)
                   if r.info.status == "RUNNING" and TAG + JOB_KEY in r.data.tags
                   and not live(r.data.tags[TAG + JOB_KEY])]
        for run_id in partial:
            self._writer().delete_run(run_id)
        return len(partial)

    def _writer(self) -> Any:
        assert self.client is not None and self.experiment_id is not None, "writing needs create=True"
        return self.client

    @retried
    def start(self, name: str, tags: dict[str, str], parent: str | None = None, start_time: int | None = None) -> str:
        """A new run; ``start_time`` (ms): when its job really started (the run is written after)."""
        all_tags = {TAG + k: str(v) for k, v in tags.items()}
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        run = self._writer().create_run(self.experiment_id, run_name=name, tags=all_tags, start_time=start_time)
        return str(run.info.run_id)

    @retried
    def log(self, run_id: str, params: dict[str, Any] | None = None,
            metrics: dict[str, float] | None = None, step: int = 0) -> None:
        params_list = [Param(k, str(v)[:6000]) for k, v in sorted((params or {}).items())]
        now = now_ms()
        metric_list = [Metric(k, float(v), now, step) for k, v in sorted((metrics or {}).items())]
        for i in range(0, max(len(params_list), 1), 100):
            self._writer().log_batch(run_id, params=params_list[i:i + 100],
                                     metrics=metric_list if i == 0 else [])

    @retried
    def log_curve(self, run_id: str, curve: list[dict[str, float]]) -> None:
        """Per-step training scalars as MLflow metric histories (batched, 1000 per call)."""
        now = now_ms()  # the workers do not time each step: the time the curve was recorded
        metrics = [Metric(k, float(v), now, step) for step, row in enumerate(curve) for k, v in row.items()]
        for i in range(0, len(metrics), 1000):
            self._writer().log_batch(run_id, metrics=metrics[i:i + 1000])

    @retried
    def log_points(self, run_id: str, key: str, points: list[tuple[int, float]]) -> None:
        """One metric's history at the given steps (the validation curve)."""
        now = now_ms()
        metrics = [Metric(key, float(value), now, step) for step, value in points]
        for i in range(0, len(metrics), 1000):
            self._writer().log_batch(run_id, metrics=metrics[i:i + 1000])

    @retried
    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """One metric's recorded ``(step, value)`` points, in step order (the validation curve)."""
        assert self.client is not None
        return sorted((int(m.step), float(m.value)) for m in self.client.get_metric_history(run_id, key))

    @retried
    def log_file(self, run_id: str, name: str, content: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(content)
            self._writer().log_artifact(run_id, str(path))

    @retried
    def read_file(self, run_id: str, name: str) -> bytes:
        assert self.client is not None
        return download_with(self.client)(run_id, name)

    @retried
    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._writer().set_tag(run_id, TAG + key, value)

    @retried
    def end(self, run_id: str, status: str = "FINISHED", error: str | None = None, end_time: int | None = None) -> None:
        if error is not None:
            self._writer().set_tag(run_id, TAG + ERROR, error[:5000])
            self.log_file(run_id, "traceback.txt", error.encode())
        self._writer().set_terminated(run_id, status, end_time=end_time)

    def records(self, runs: list[Any] | None = None) -> list[RunRecord]:
        """Every evaluation run with its per-episode accuracies: the FINISHED one of each job,
        else its latest FAILED attempt (so a failure that was retried successfully is gone).
        ``runs``: this experiment's runs when the caller has already read them."""
        if self.client is None:
            return []
        return eval_records(self.runs() if runs is None else runs, download_with(self.client))

    @retried
    def copy_run(self, run_id: str, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        """Copy a finished run of another suite into this experiment (params, tags, metric
        histories, artifacts), tagged ``copied_from``; ``tags`` override this suite's tags."""
        client = self._writer()
        source = client.get_run(run_id)
        copied = {k[len(TAG):]: v for k, v in source.data.tags.items() if k.startswith(TAG)}
        new_id = self.start(name, {**copied, **tags, COPIED_FROM: run_id}, parent)
        params = [Param(k, v) for k, v in sorted(source.data.params.items())]
        metrics = [m for key in sorted(source.data.metrics) for m in client.get_metric_history(run_id, key)]
        for i in range(0, max(len(params), len(metrics), 1), 100):
            client.log_batch(new_id, params=params[i:i + 100], metrics=metrics[i:i + 100])
        with tempfile.TemporaryDirectory() as tmp:
            folder = client.download_artifacts(run_id, "", tmp)
            client.log_artifacts(new_id, folder)
        client.set_terminated(new_id, "FINISHED")
        return new_id
