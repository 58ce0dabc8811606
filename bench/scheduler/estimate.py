"""What a plan will cost, from what finished runs of the same job shapes cost (issue 27, item 7).

A train job's cost is its meta-updates times the seconds per meta-update that finished train
runs of the same shape measured on this device kind (same baseline, backbone, training
setting and options; seed, step cap and patience left out, since they do not change the cost
of one update); an evaluation's is its episodes times the seconds per episode of finished
evaluations of the same train shape, test setting and threat. Early stopping can only make a
train job cheaper than its estimate. Jobs of a shape never run here are counted, not guessed.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.plan.jobs import EvalJob, Plan, TrainJob
from bench.tracking.records import DEVICE, JOB_KEY, KIND, STOPPED_EARLY
from bench.tracking.tags import TEXT_PREFIX, flatten

COSTLESS = ("seed", "train.steps", "train.patience")  # identity fields that do not change a step's cost


def device_kind(device: str) -> str:
    """``cpu:x86_64`` of ``cpu:x86_64 [cpu0]``: the machine type, not the slot."""
    return device.split(" [")[0].strip()


def _shape(params: dict[str, str]) -> str:
    return json.dumps({k: v for k, v in sorted(params.items()) if k not in COSTLESS and not k.startswith(TEXT_PREFIX)})


@dataclass
class Rates:
    """Seconds per meta-update by train shape, per episode by evaluation shape; ``runs``: how many
    finished runs they come from."""

    train: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, float] = field(default_factory=dict)
    runs: int = 0


def measured_rates(runs: list[Any], kind: str) -> Rates:
    """The median rates of the FINISHED runs (MLflow runs, any suite) on device ``kind``."""
    finished = [r for r in runs if r.info.status == "FINISHED"
                and device_kind(r.data.tags.get(f"bench.{DEVICE}", "")) == kind]
    train_shape, per_step, per_episode = {}, defaultdict(list), defaultdict(list)
    for run in (r for r in finished if r.data.tags.get(f"bench.{KIND}") == "train"):
        params, seconds = run.data.params, run.data.metrics.get("device_seconds")
        steps = int(run.data.tags.get(f"bench.{STOPPED_EARLY}") or params.get("train.steps", 0))
        train_shape[run.data.tags.get(f"bench.{JOB_KEY}", "")] = _shape(params)
        if seconds and steps:
            per_step[_shape(params)].append(seconds / steps)
    for run in (r for r in finished if r.data.tags.get(f"bench.{KIND}") == "eval"):
        seconds, episodes = run.data.metrics.get("device_seconds"), run.data.metrics.get("episodes")
        shape = train_shape.get(run.data.params.get("train", ""))
        if seconds and episodes and shape is not None:
            per_episode[_eval_shape(shape, run.data.params)].append(seconds / episodes)
    return Rates({k: statistics.median(v) for k, v in per_step.items()},
                 {k: statistics.median(v) for k, v in per_episode.items()}, len(finished))


def _eval_shape(train_shape: str, params: dict[str, str]) -> str:
    own = {k: v for k, v in params.items() if k.startswith(("setting.", "threat.")) and not k.startswith(TEXT_PREFIX)}
    return json.dumps([train_shape, sorted(own.items())])


def job_seconds(job: TrainJob | EvalJob, rates: Rates) -> float | None:
    """The estimated device seconds of one job, or None when no run of its shape was measured."""
    if isinstance(job, TrainJob):
        rate = rates.train.get(_shape(flatten("", job.identity)))
        return None if rate is None else rate * job.variant.train.steps
    own = flatten("", {"setting": job.identity["setting"], "threat": job.identity["threat"]})
    rate = rates.evaluation.get(_eval_shape(_shape(flatten("", job.train.identity)), own))
    return None if rate is None else rate * job.identity["eval"]["episodes"]


def estimate_lines(plan: Plan, to_run: set[str], rates: Rates, kind: str, slots: int) -> list[str]:
    """The dry run's closing lines: device-hours per baseline label and in total, the wall time
    on ``slots`` parallel slots, and how many jobs could not be estimated."""
    per_label: dict[str, float] = defaultdict(float)
    unknown = 0
    for train in plan.train_jobs:
        jobs: list[TrainJob | EvalJob] = [train, *plan.eval_jobs[train.key]]
        for job in jobs:
            if job.key not in to_run:
                continue
            seconds = job_seconds(job, rates)
            if seconds is None:
                unknown += 1
            else:
                per_label[train.variant.baseline.label] += seconds
    total = sum(per_label.values())
    if not per_label:
        return [f"estimate: none: no finished run of these job shapes on {kind} in this store "
                f"({unknown} job(s) to run); run one seed first and the dry run estimates the rest"]
    labels = ", ".join(f"{label} {duration(seconds)}" for label, seconds in per_label.items())
    lines = [f"estimate on {kind} (from {rates.runs} finished runs of the same job shapes): {duration(total)} of "
             f"device time ({labels}); about {duration(total / max(1, slots))} on {slots} slot(s), plus start-up"]
    if unknown:
        lines.append(f"  {unknown} job(s) to run have no measured shape here and are not counted")
    return lines


def duration(seconds: float) -> str:
    """``2 h 05 min``, ``14 min``, ``40 s``."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
