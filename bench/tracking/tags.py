"""The MLflow tag schema of job runs: the one definition the recorder writes, the report
filters match and the golden test's fixture uses (DESIGN.md "MLflow").

`identity_tags` are the tags that follow from the plan alone (what a job is); the recorder adds
the environment (`bench.tracking.recording`: code version, packages, fingerprint, device, hashes).
Parameters are the job identity, flattened to dotted keys (`flatten`). The tag keys themselves
are declared in `bench.tracking.records` (`JOB_KEY`, ...), the lowest module of the package, so
that reading runs back needs neither this module nor the plan it imports.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from bench.fields import is_pixels
from bench.plan.jobs import EvalJob, TrainJob
from bench.registry import BACKBONES, BASELINES, THREATS
from bench.suite.labels import format_value
from bench.suite.values import BaselineVariant
from bench.threats.base import draws_for
from bench.tracking.records import (
    BASELINE,
    DATASET,
    EOT_DRAWS,
    IMAGE_SIZE,
    JOB_KEY,
    KIND,
    LABEL,
    QUERY,
    SEED,
    SHOT,
    STOCHASTIC,
    SUITE,
    TARGET_CLASSES,
    THREAT,
    THREAT_KIND,
    THREAT_LABEL,
    TRAIN_KEY,
    TRANSDUCTIVE,
    WAY,
)

TEXT_PREFIX = "text."  # human-readable copies of params (``text.threat.config.eps = 8/255``)
METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]+")  # MLflow metric names allow only these characters


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
    d = job.data if isinstance(job, TrainJob) else job.setting  # a train run: its training episodes' shape
    tags = {SUITE: suite_name, JOB_KEY: job.key, KIND: "train", BASELINE: train.variant.baseline.name,
            LABEL: train.variant.baseline.label, DATASET: d.name, IMAGE_SIZE: str(d.image_size),
            WAY: str(d.way), SHOT: str(d.shot), QUERY: str(d.query), SEED: str(train.seed)}
    modes = evaluation_modes(train.variant)
    tags.update({TRANSDUCTIVE: _flag(modes.transductive), STOCHASTIC: _flag(modes.stochastic)})
    if isinstance(job, EvalJob):
        tags.update({KIND: "eval", TRAIN_KEY: train.key, THREAT: job.threat.name, THREAT_LABEL: job.threat.label,
                     THREAT_KIND: THREATS.get(job.threat.name).kind,
                     EOT_DRAWS: str(draws_for(modes.stochastic, job.threat.config))})
        targets = THREATS.get(job.threat.name).target_classes(job.threat.config, job.setting.way)
        tags.update({TARGET_CLASSES: str(targets)} if targets is not None else {})
    return tags


@dataclass(frozen=True)
class EvaluationModes:
    """A baseline variant's declared evaluation modes (issue 25). transductive: a query's
    prediction depends on the other queries of its batch (`Baseline.transductive` of the
    backbone's batch-norm mode); stochastic: its adaptation draws random numbers."""

    transductive: bool
    stochastic: bool


def evaluation_modes(variant: BaselineVariant) -> EvaluationModes:
    baseline = BASELINES.get(variant.baseline.name)
    backbone = BACKBONES.get(variant.backbone.name)
    return EvaluationModes(baseline.transductive(backbone.transductive(variant.backbone.config)),
                           baseline.stochastic)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def job_params(job: TrainJob | EvalJob) -> dict[str, str]:
    """The run's params: its identity, flattened, and `human_params` beside the floats."""
    return flatten("", job.identity) | human_params(job)


def human_params(job: TrainJob | EvalJob) -> dict[str, str]:
    """``text.<param>``: each pixel quantity as papers write it (``8/255``) beside its float
    (``0.03137254901960784``), so the MLflow UI shows what the suite said."""
    parts = [("threat.config", job.threat.config)] if isinstance(job, EvalJob) else \
        [("baseline.config", job.variant.baseline.config), ("train", job.variant.train)]
    out = {}
    for prefix, config in parts:
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if isinstance(value, float) and is_pixels(config, field.name):
                out[f"{TEXT_PREFIX}{prefix}.{field.name}"] = format_value(config, field.name, value)
    return out


def accuracy_metric(display: str) -> str:
    """The train run's metric holding one evaluation's accuracy in %, named for a reader:
    ``accuracy_pct/PGD-20 eps 8/255`` (MLflow allows letters, digits and ``_-. /`` only)."""
    text = display.replace("ε₂ = ", "eps2 ").replace("ε = ", "eps ").replace("%", " pct")
    return "accuracy_pct/" + " ".join(METRIC_UNSAFE.sub(" ", text).split())
