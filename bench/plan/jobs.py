"""Grid expansion: a suite becomes train jobs and, per train job, its eval jobs.

Every job has a stable content key: a hash of everything that determines its result. A train
job's key hashes what training uses: the baseline's resolved config, the backbone, the training
options and the *training* data setting (data set, image size, training way, shot and query:
`training_setting`) and the seed. Test way, shot, query and episode count are evaluation
settings, so one trained model serves every test setting it can classify, as in the papers
(Snell et al. 2017, Table 1: one 60-way 1-shot ProtoNet is tested at 5-way and 20-way 1-shot).
An eval job's key adds its test setting, threat and evaluation settings. Keys name MLflow runs,
drive resume (a key with a FINISHED run is skipped) and seed every random stream of the job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bench.fields import identity_fields
from bench.seeding import derive_seed
from bench.suite.values import BaselineVariant, Component, DataSetting, Suite, training_setting


def stable_key(identity: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``identity``."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainJob:
    """Meta-train one baseline variant with one seed; ``data`` is its training setting."""

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
    """Evaluate one threat on the fixed test episodes of ``setting`` with the train job's checkpoint."""

    key: str
    name: str
    train: TrainJob
    setting: DataSetting
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
    """Name and resolved config; a backbone's weights file only when it has one (keys of the
    components without one are as they always were)."""
    identity = {"name": component.name, "config": component.resolved()}
    return identity | {"weights": component.weights} if component.weights else identity


# Resolved into the training data setting (`training_setting`), so that ``train.way: 5`` on a
# 5-way setting and no ``train.way`` at all name the same job.
SHAPE_OPTIONS = ("way", "shot", "query", "within")


def train_identity(variant: BaselineVariant, data: DataSetting, seed: int) -> dict[str, Any]:
    """What a train job's result depends on; ``data`` is its training setting."""
    options = {k: v for k, v in identity_fields(variant.train).items() if k not in SHAPE_OPTIONS}
    return {
        # The label is a display name, not a cause of the result: leaving it out lets a suite
        # that names the same variant differently reuse its runs.
        "baseline": component_identity(variant.baseline),
        "backbone": component_identity(variant.backbone),
        "train": options,
        "data": setting_identity(data),
        "seed": seed,
    }


def setting_identity(data: DataSetting) -> dict[str, Any]:
    """A data setting as hashed and seeded: ``within`` appears only when set, so keys, seeds and
    episode sets of settings without it are the same as before the option existed."""
    fields = dataclasses.asdict(data)
    fields.pop("native_size")  # display only
    if fields.get("within") is None:
        fields.pop("within", None)
    return fields


def make_plan(suite: Suite) -> Plan:
    """Expand the grid (order: test setting, seed, baseline variant; threats in suite order).

    Train jobs are shared: the test settings a variant's training setting serves add eval jobs
    to one train job, listed in the order the settings first appear.
    """
    train_jobs: dict[str, TrainJob] = {}
    eval_jobs: dict[str, list[EvalJob]] = {}
    for data in suite.datasets:
        for seed in suite.seeds:
            for variant in (v for v in suite.baselines if v.runs_on(data)):
                job = _train_job(variant, training_setting(variant, data), seed)
                train_jobs.setdefault(job.key, job)
                evals = eval_jobs.setdefault(job.key, [])
                evals.extend(_eval_job(job, data, threat, suite) for threat in suite.threats)
    return Plan(suite, tuple(train_jobs.values()), {key: tuple(evals) for key, evals in eval_jobs.items()})


def _train_job(variant: BaselineVariant, data: DataSetting, seed: int) -> TrainJob:
    identity = train_identity(variant, data, seed)
    name = f"{variant.baseline.label} · {data.label} · seed {seed}"
    return TrainJob(stable_key(identity), name, variant, data, seed, identity)


def _eval_job(train: TrainJob, setting: DataSetting, threat: Component, suite: Suite) -> EvalJob:
    identity = {"train": train.key, "setting": setting_identity(setting), "threat": component_identity(threat),
                "eval": dataclasses.asdict(suite.eval)}
    name = f"{threat.label} · {train.variant.baseline.label} · {setting.label} · seed {train.seed}"
    return EvalJob(stable_key(identity), name, train, setting, threat, identity)


def episode_seed(suite: Suite, data: DataSetting, seed: int) -> int:
    """The test-episode seed: depends on the test setting and suite seed, never the baseline
    (``within``, when set, is part of it; unset it leaves the seed as it always was)."""
    return derive_seed(seed, "test-episodes", *setting_identity(data).values(), suite.eval.episodes,
                       suite.eval.split)
