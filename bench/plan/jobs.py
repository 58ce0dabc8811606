"""Grid expansion: a suite becomes train jobs and, per train job, one eval job per threat.

Every job has a stable content key: a hash of everything that determines its result (the
baseline's resolved config, backbone, training budget, data setting, seed; for an eval job,
its train job, threat config and evaluation settings). Keys name MLflow runs, drive resume
(a key with a FINISHED run is skipped) and seed every random stream of the job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bench.fields import identity_fields
from bench.seeding import derive_seed
from bench.suite.load import BaselineVariant, Component, DataSetting, Suite


def stable_key(identity: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``identity``."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainJob:
    """Meta-train one baseline variant on one data setting with one seed."""

    key: str
    name: str
    variant: BaselineVariant
    data: DataSetting
    seed: int
    identity: dict[str, Any]

    def seed_for(self, purpose: str) -> int:
        return derive_seed(self.seed, self.key, purpose)


@dataclass(frozen=True)
class EvalJob:
    """Evaluate one threat on the fixed test episodes with the train job's checkpoint."""

    key: str
    name: str
    train: TrainJob
    threat: Component
    identity: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    suite: Suite
    train_jobs: tuple[TrainJob, ...]
    eval_jobs: dict[str, tuple[EvalJob, ...]]  # train key -> its eval jobs

    def all_eval_jobs(self) -> list[EvalJob]:
        return [e for t in self.train_jobs for e in self.eval_jobs[t.key]]


def component_identity(component: Component) -> dict[str, Any]:
    return {"name": component.name, "config": component.resolved()}


def train_identity(variant: BaselineVariant, data: DataSetting, seed: int) -> dict[str, Any]:
    return {
        # The label is a display name, not a cause of the result: leaving it out lets a suite
        # that names the same variant differently reuse its runs.
        "baseline": component_identity(variant.baseline),
        "backbone": component_identity(variant.backbone),
        "train": identity_fields(variant.train),
        "data": dataclasses.asdict(data),
        "seed": seed,
    }


def make_plan(suite: Suite) -> Plan:
    """Expand the grid (order: data setting, seed, baseline variant; threats in suite order)."""
    train_jobs, eval_jobs = [], {}
    for data in suite.datasets:
        for seed in suite.seeds:
            for variant in suite.baselines:
                identity = train_identity(variant, data, seed)
                key = stable_key(identity)
                name = f"{variant.baseline.label} · {data.label} · seed {seed}"
                job = TrainJob(key, name, variant, data, seed, identity)
                train_jobs.append(job)
                eval_jobs[key] = tuple(_eval_job(job, threat, suite) for threat in suite.threats)
    return Plan(suite, tuple(train_jobs), eval_jobs)


def _eval_job(train: TrainJob, threat: Component, suite: Suite) -> EvalJob:
    identity = {"train": train.key, "threat": component_identity(threat),
                "eval": dataclasses.asdict(suite.eval)}
    return EvalJob(stable_key(identity), f"{threat.label} · {train.name}", train, threat, identity)


def episode_seed(suite: Suite, data: DataSetting, seed: int) -> int:
    """The test-episode seed: depends on the data setting and suite seed, never the baseline."""
    return derive_seed(seed, "test-episodes", *dataclasses.astuple(data), suite.eval.episodes,
                       suite.eval.split)
