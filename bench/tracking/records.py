"""MLflow runs -> plain records, read in bulk.

A report or a resume plan over thousands of runs must not pay one artifact download per run
(MLflow's ``download_artifacts`` costs about 14 ms a call): runs come from paged
``search_runs`` calls, and per-episode accuracies are read straight from the artifact folder
when the store keeps artifacts on this file system, else downloaded by a thread pool.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

TAG = "bench."
PER_EPISODE = "per_episode.json"
CHECKPOINT = "checkpoint.pt"
DOWNLOAD_THREADS = 16


@dataclass(frozen=True)
class RunRecord:
    """One evaluation (or failed) run as the report sees it: plain data, no mlflow types."""

    run_id: str
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    per_episode: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class FinishedRun:
    """A FINISHED run of any suite in the store, as resume planning needs it.

    Attributes:
        key: the job key. run_id, experiment_id: where it is. kind: ``train`` or ``eval``.
        fingerprint: the code fingerprint it was made with ("" for runs older than fingerprints).
        files: the encoded per-file hashes behind it. accuracy: headline accuracy (eval runs).
        start_time: ms since the epoch (later runs of one key win). suite: the suite that ran it.
    """

    key: str
    run_id: str
    experiment_id: str
    suite: str
    kind: str
    fingerprint: str
    files: str
    accuracy: float | None
    start_time: int


def short_tags(run: Any) -> dict[str, str]:
    """The run's ``bench.*`` tags without the prefix."""
    return {k[len(TAG):]: v for k, v in run.data.tags.items() if k.startswith(TAG)}


def finished_run(run: Any) -> FinishedRun | None:
    tags = short_tags(run)
    if run.info.status != "FINISHED" or "job_key" not in tags:
        return None
    return FinishedRun(tags["job_key"], run.info.run_id, str(run.info.experiment_id),
                       tags.get("suite", ""), tags.get("kind", ""),
                       tags.get("fingerprint", ""), tags.get("code_files", ""),
                       run.data.metrics.get("accuracy"), int(run.info.start_time or 0))


def representative(runs: list[Any]) -> list[Any]:
    """The run that stands for each eval job: its latest FINISHED run, else its latest FAILED
    one (so a failure that was retried successfully is gone). ``runs`` oldest first."""
    chosen: dict[str, Any] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get(TAG + "kind") != "eval" or run.info.status not in ("FINISHED", "FAILED"):
            continue
        key = tags.get(TAG + "job_key", run.info.run_id)
        if run.info.status == "FINISHED" or chosen.get(key) is None or chosen[key].info.status != "FINISHED":
            chosen[key] = run
    return list(chosen.values())


def eval_records(runs: list[Any], download: Callable[[str, str], bytes]) -> list[RunRecord]:
    """Records of the representative eval runs with their per-episode accuracies."""
    chosen = representative(runs)
    finished = [run for run in chosen if run.info.status == "FINISHED"]
    contents = dict(zip((r.info.run_id for r in finished), read_artifacts(finished, PER_EPISODE, download),
                        strict=True))
    out = []
    for run in chosen:
        content = contents.get(run.info.run_id)
        per_episode = json.loads(content)["accuracy"] if content is not None else []
        out.append(RunRecord(run.info.run_id, run.info.status, short_tags(run), dict(run.data.params),
                             dict(run.data.metrics), per_episode))
    return out


def read_artifacts(runs: list[Any], name: str, download: Callable[[str, str], bytes]) -> list[bytes]:
    """The artifact ``name`` of each run: a file read where artifacts are local, else downloads
    spread over a thread pool (they are network-bound)."""
    local = [_local_artifact(run, name) for run in runs]
    remote = [run.info.run_id for run, path in zip(runs, local, strict=True) if path is None]
    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        fetched = dict(zip(remote, pool.map(lambda run_id: download(run_id, name), remote), strict=True))
    return [path.read_bytes() if path is not None else fetched[run.info.run_id]
            for run, path in zip(runs, local, strict=True)]


def _local_artifact(run: Any, name: str) -> Path | None:
    uri = run.info.artifact_uri or ""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return None
    path = Path(unquote(parsed.path)) / name
    return path if path.is_file() else None


def download_with(client: Any) -> Callable[[str, str], bytes]:
    """A ``(run_id, name) -> bytes`` reader through MLflow's artifact API."""

    def download(run_id: str, name: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            return Path(client.download_artifacts(run_id, name, tmp)).read_bytes()

    return download
