"""The single writer: turns job results into MLflow runs (through `bench.tracking`).

Only the scheduler's driver process calls these functions, so concurrent workers never write
to the tracking store and cannot lose or corrupt a record, whatever the store (SQLite file or
remote server). A run is created when its job's result arrives and terminated right after
its last artifact, so a run is RUNNING only for the few milliseconds of writing; a run left
RUNNING by a killed driver is a partial record and is deleted on the next start.
"""

from __future__ import annotations

import json
from typing import Any

from bench.environment import code_version, package_versions
from bench.plan.fingerprint import Fingerprint, eval_fingerprint, train_fingerprint
from bench.plan.jobs import EvalJob, Plan, TrainJob
from bench.registry import THREATS
from bench.run.runner import EvalResult, TrainResult
from bench.stats import mean_ci
from bench.suite.load import Component, Suite
from bench.tracking import CHECKPOINT, PER_EPISODE, Tracker
from bench.tracking.records import (
    ATTEMPT,
    CODE_FILES,
    CODE_VERSION,
    DATA_HASH,
    DEVICE,
    EPISODES_HASH,
    FINGERPRINT,
    PACKAGES,
    SELECTED_STEP,
    SELECTION,
    STOPPED_EARLY,
    THREAT_KIND,
)
from bench.tracking.tags import accuracy_metric, identity_tags, job_params


def fingerprint_tags(fingerprint: Fingerprint) -> dict[str, str]:
    """The code fingerprint and the per-file hashes behind it (so a stale run can say what changed)."""
    return {FINGERPRINT: fingerprint.digest, CODE_FILES: fingerprint.encoded()}


def train_tags(suite: Suite, job: TrainJob) -> dict[str, str]:
    """`bench.tracking.tags.identity_tags` plus the code and packages the job is run with."""
    return {**identity_tags(suite.name, job), CODE_VERSION: code_version(), PACKAGES: package_versions(),
            **fingerprint_tags(train_fingerprint(job))}


def eval_tags(suite: Suite, job: EvalJob) -> dict[str, str]:
    return {**identity_tags(suite.name, job), CODE_VERSION: code_version(), PACKAGES: package_versions(),
            **fingerprint_tags(eval_fingerprint(job))}


Times = tuple[int, int] | None  # the job's real (start, end) in ms, as MLflow shows a run's duration


VALIDATION_METRIC = "val_accuracy_pct"  # the validation curve, by meta-update


def record_train(tracker: Tracker, suite: Suite, job: TrainJob, result: TrainResult, times: Times = None) -> str:
    """A FINISHED train run with params, curve, checkpoint and resolved config."""
    tags = {**train_tags(suite, job), DEVICE: result.device, DATA_HASH: result.data_hash,
            SELECTION: result.selection, SELECTED_STEP: str(result.selected_step),
            STOPPED_EARLY: "" if result.stopped_early is None else str(result.stopped_early)}
    run_id = tracker.start(job.name, tags, start_time=times[0] if times else None)
    tracker.log(run_id, params=job_params(job), metrics={"device_seconds": result.seconds,
                                                         "selected_step": result.selected_step,
                                                         "validation_seconds": result.validation_seconds})
    tracker.log_curve(run_id, result.curve)
    tracker.log_points(run_id, VALIDATION_METRIC, [(step, 100 * acc) for step, acc in result.validation])
    tracker.log_file(run_id, CHECKPOINT, result.checkpoint)
    tracker.log_file(run_id, "config.json", json.dumps(job.identity, indent=1, sort_keys=True).encode())
    tracker.end(run_id, end_time=times[1] if times else None)
    return run_id


def record_eval(tracker: Tracker, suite: Suite, job: EvalJob, parent: str, result: EvalResult,
                times: Times = None) -> tuple[float, float]:
    """A FINISHED nested eval run: accuracy, CI, per-episode accuracies; returns (mean, CI)."""
    mean, half = mean_ci(result.accuracies)
    tags = {**eval_tags(suite, job), DEVICE: result.device, DATA_HASH: result.data_hash,
            EPISODES_HASH: result.episodes_hash, THREAT_KIND: result.threat_kind}
    run_id = tracker.start(job.name, tags, parent=parent, start_time=times[0] if times else None)
    tracker.log(run_id, params=job_params(job),
                metrics={"accuracy": mean, "ci95": half, "accuracy_pct": 100 * mean, "ci95_pct": 100 * half,
                         "episodes": len(result.accuracies), "device_seconds": result.seconds})
    stored = {"accuracy": result.accuracies, "correct": list(result.correct), "queries": list(result.queries)}
    tracker.log_file(run_id, PER_EPISODE, json.dumps(stored).encode())
    tracker.end(run_id, end_time=times[1] if times else None)
    # the train run shows every evaluation's accuracy, so MLflow's runs table shows results
    # without expanding the nested runs
    tracker.log(parent, metrics={headline_metric(job.threat): round(100 * mean, 2)})
    return mean, half


def headline_metric(threat: Component) -> str:
    """The train run's metric for one evaluation's accuracy (% to 0.01 point, for reading)."""
    return accuracy_metric(THREATS.get(threat.name).display(threat.config))


def results_columns(plan: Plan) -> list[str]:
    """The train-run metrics a plan writes, in suite order: the MLflow results view's columns."""
    return list(dict.fromkeys(headline_metric(job.threat) for job in plan.all_eval_jobs()))


def record_failure(tracker: Tracker, suite: Suite, job: TrainJob | EvalJob, error: str,
                   parent: str | None = None, attempt: int = 1, times: Times = None) -> str:
    """A FAILED run carrying the error (tag) and the traceback (artifact); returns its run id."""
    tags: dict[str, Any] = train_tags(suite, job) if isinstance(job, TrainJob) else eval_tags(suite, job)
    run_id = tracker.start(job.name, {**tags, ATTEMPT: str(attempt)}, parent=parent,
                           start_time=times[0] if times else None)
    tracker.log(run_id, params=job_params(job))
    tracker.end(run_id, "FAILED", error, end_time=times[1] if times else None)
    return run_id
