"""The MLflow tag schema of job runs: the one definition the recorder writes, the report
filters match and the golden test's fixture uses (DESIGN.md "MLflow").

`identity_tags` are the tags that follow from the plan alone (what a job is); the recorder adds
the environment (`bench.recording`: code version, packages, fingerprint, device, hashes).
Parameters are the job identity, flattened to dotted keys (`flatten`).
"""

from __future__ import annotations

from typing import Any

from bench.plan import EvalJob, TrainJob
from bench.registry import THREATS


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """Nested dicts -> ``{"a.b": str(value)}``: MLflow params are flat strings."""
    if not isinstance(value, dict):
        return {prefix: str(value)}
    out: dict[str, str] = {}
    for key, inner in value.items():
        out.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
    return out


def identity_tags(suite_name: str, job: TrainJob | EvalJob) -> dict[str, str]:
    """What a job is, as tags: suite, key, kind, baseline, label, data setting, seed (and, for an
    evaluation, its train job and threat)."""
    train = job if isinstance(job, TrainJob) else job.train
    d = train.data
    tags = {"suite": suite_name, "job_key": job.key, "kind": "train", "baseline": train.variant.baseline.name,
            "label": train.variant.baseline.label, "dataset": d.name, "image_size": str(d.image_size),
            "way": str(d.way), "shot": str(d.shot), "query": str(d.query), "seed": str(train.seed)}
    if isinstance(job, EvalJob):
        tags.update(kind="eval", train_key=train.key, threat=job.threat.name, threat_label=job.threat.label,
                    threat_kind=THREATS.get(job.threat.name).kind)
    return tags


def job_params(job: TrainJob | EvalJob) -> dict[str, str]:
    """The run's params: its identity, flattened."""
    return flatten("", job.identity)
