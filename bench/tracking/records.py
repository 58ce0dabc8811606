"""MLflow runs -> plain records, read in bulk.

A report or a resume plan over thousands of runs must not pay one artifact download per run
(MLflow's ``download_artifacts`` costs about 14 ms a call): runs come from paged
``search_runs`` calls, and per-episode accuracies are read straight from the artifact folder
when the store keeps artifacts on this file system, else downloaded by a thread pool. The tag
keys every run carries are declared here (`JOB_KEY`, ...), below everything that writes or
reads them.
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

import numpy as np

TAG = "bench."  # the prefix of every key below on a run (``bench.job_key``); records drop it
# The tag keys of job runs, declared once for the writer (`bench.tracking.tags`, `.recording`,
# the scheduler) and every reader. They live in this lowest module of the package, which imports
# nothing of bench, so reading runs never imports the plan. Their texts name tags in existing
# stores: never change one.

# identity (`bench.tracking.tags.identity_tags`): what a job is
SUITE = "suite"
JOB_KEY = "job_key"
KIND = "kind"  # "train" or "eval"
BASELINE = "baseline"
LABEL = "label"
DATASET = "dataset"
IMAGE_SIZE = "image_size"
WAY = "way"
SHOT = "shot"
QUERY = "query"
SEED = "seed"
TRAIN_KEY = "train_key"  # eval runs: the train job whose checkpoint was evaluated
THREAT = "threat"
THREAT_LABEL = "threat_label"
THREAT_KIND = "threat_kind"  # a `ThreatKind`'s value
# declared evaluation modes (issue 25), "true"/"false"; absent on runs made before them
TRANSDUCTIVE = "transductive"  # a query's prediction depends on the other queries (batch-statistics BN)
STOCHASTIC = "stochastic"  # adaptation draws random numbers (`Baseline.stochastic`)
EOT_DRAWS = "eot_draws"  # eval runs: adaptation draws each attack step averaged (1: none)
TARGET_CLASSES = "target_classes"  # eval runs of targeted attacks: target classes tried (way - 1)
# environment (`bench.tracking.recording`): what made the result
CODE_VERSION = "code_version"
PACKAGES = "packages"
FINGERPRINT = "fingerprint"  # the code fingerprint's digest
CODE_FILES = "code_files"  # the per-file hashes behind it
DEVICE = "device"
DATA_HASH = "data_hash"
EPISODES_HASH = "episodes_hash"  # eval runs: the test episode set
SELECTION = "selection"  # train runs: which weights were kept (best_val, last)
SELECTED_STEP = "selected_step"
STOPPED_EARLY = "stopped_early"
ATTEMPT = "attempt"  # FAILED runs
ERROR = "error"  # FAILED runs: the exception
# set by the scheduler on runs it reuses
KEPT_STALE = "kept_stale"  # a run of older code kept by --reuse-stale: its fingerprint
COPIED_FROM = "copied_from"  # a run copied from another suite's experiment: the source run id

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
    per_query: tuple[np.ndarray, ...] | None = None  # per episode, bool (queries,); None: not recorded

    @staticmethod
    def unpack(stored: dict[str, Any]) -> tuple[np.ndarray, ...] | None:
        """``per_episode.json``'s ``correct`` (per episode, hex of its queries' packed bits) and
        ``queries`` (per episode, how many bits are queries) as bool arrays; None for records
        made before per-query results were recorded."""
        correct, counts = stored.get("correct"), stored.get("queries")
        if not correct or not counts or len(correct) != len(counts):
            return None
        return tuple(np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8), count=size).astype(bool)
                     for text, size in zip(correct, counts, strict=True))


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
    if run.info.status != "FINISHED" or JOB_KEY not in tags:
        return None
    return FinishedRun(tags[JOB_KEY], run.info.run_id, str(run.info.experiment_id),
                       tags.get(SUITE, ""), tags.get(KIND, ""),
                       tags.get(FINGERPRINT, ""), tags.get(CODE_FILES, ""),
                       run.data.metrics.get("accuracy"), int(run.info.start_time or 0))


def representative(runs: list[Any]) -> list[Any]:
    """The run that stands for each eval job: its latest FINISHED run, else its latest FAILED
    one (so a failure that was retried successfully is gone). ``runs`` oldest first."""
    chosen: dict[str, Any] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get(TAG + KIND) != "eval" or run.info.status not in ("FINISHED", "FAILED"):
            continue
        key = tags.get(TAG + JOB_KEY, run.info.run_id)
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
        stored = json.loads(content) if content is not None else {}
        per_episode = stored.get("accuracy", [])
        out.append(RunRecord(run.info.run_id, run.info.status, short_tags(run), dict(run.data.params),
                             dict(run.data.metrics), per_episode, RunRecord.unpack(stored)))
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
