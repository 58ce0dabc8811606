"""One train job: meta-train (or reload the checkpoint), then evaluate each pending threat.

All threats of a train job are evaluated with the same trained weights on the same fixed
test episodes. Resume is by job key: a train job with a FINISHED run is not retrained (its
checkpoint is read back from MLflow) and an eval job with a FINISHED run is not repeated.
"""

from __future__ import annotations

import io
import json
import time
import traceback
from dataclasses import dataclass, field

import torch

from bench.backbones import build_backbone
from bench.baseline import Baseline
from bench.config import Suite
from bench.data.dataset import ImageDataset
from bench.data.episodes import EpisodeSampler, EpisodeSet, fixed_episodes
from bench.environment import run_tags
from bench.errors import BenchError
from bench.evaluate import evaluate_threat, threat_seeds
from bench.plan import EvalJob, TrainJob, component_identity, episode_seed, stable_key
from bench.progress import Progress
from bench.registry import BASELINES, THREATS
from bench.report.stats import mean_ci
from bench.seeding import generator, torch_rng
from bench.threats.base import Threat
from bench.tracking import CHECKPOINT, PER_EPISODE, Tracker


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class JobOutcome:
    """What happened to one train job and its eval jobs (for the summary line)."""

    job: TrainJob
    trained: bool = False
    seconds: float = 0.0
    accuracies: dict[str, tuple[float, float]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    skipped: int = 0


@dataclass
class Context:
    """What every job of a suite run shares."""

    tracker: Tracker
    device: torch.device
    datasets: dict[tuple[str, int], ImageDataset]
    episode_sets: dict[tuple[str, int], EpisodeSet]
    suite: Suite
    progress: Progress

    def dataset(self, job: TrainJob) -> ImageDataset:
        return self.datasets[(job.data.name, job.data.image_size)]

    def episode_set(self, job: TrainJob) -> EpisodeSet:
        """The fixed test episodes of ``job``'s data setting and seed (drawn once, shared)."""
        key = (job.data, job.seed)
        if key not in self.episode_sets:
            d, settings = job.data, self.suite.eval
            seed = episode_seed(self.suite, d, job.seed)
            self.episode_sets[key] = fixed_episodes(self.dataset(job), settings.split, d.way, d.shot,
                                                    d.query, settings.episodes, seed)
        return self.episode_sets[key]


def run_job(ctx: Context, job: TrainJob, evals: tuple[EvalJob, ...], finished: dict[str, str]) -> JobOutcome:
    """Train (or restore) one job and run its pending evaluations; failures are recorded, not raised."""
    outcome = JobOutcome(job)
    pending = [e for e in evals if e.key not in finished]
    outcome.skipped = len(evals) - len(pending)
    if not pending and job.key in finished:
        return outcome
    try:
        baseline, run_id = train_or_restore(ctx, job, finished, outcome)
    except (KeyboardInterrupt, BenchError):
        raise
    except Exception as exc:  # noqa: BLE001 - a failing job must not stop the others
        outcome.failed.append(f"training: {type(exc).__name__}: {exc}")
        return outcome
    episodes = ctx.episode_set(job)
    for eval_job in pending:
        run_eval(ctx, eval_job, baseline, run_id, episodes, outcome)
    return outcome


def build_baseline(job: TrainJob, dataset: ImageDataset, device: torch.device) -> Baseline:
    """A freshly initialised baseline; initial weights come from the job's ``init`` seed."""
    cls = BASELINES.get(job.variant.baseline.name)
    backbone_spec = job.variant.backbone
    with torch_rng(job.seed_for("init"), device):
        backbone = build_backbone(backbone_spec.name, backbone_spec.resolved(), dataset.channels,
                                  dataset.image_size)
        return cls(job.variant.baseline.config, backbone, job.data.way, device)


def train(baseline: Baseline, job: TrainJob, dataset: ImageDataset, progress: Progress) -> list[dict]:
    """Meta-train for ``job.variant.train.steps`` updates; returns the per-step scalars."""
    budget = job.variant.train
    sampler = EpisodeSampler(dataset, "train", budget.way or job.data.way, job.data.shot, job.data.query)
    episode_stream = generator(job.seed_for("train-episodes"))
    curve = []
    with progress.bar(budget.steps, f"train {job.name}") as tick:
        for step in range(budget.steps):
            scalars = baseline.train_step(sampler.sample(episode_stream, budget.meta_batch))
            if any(v != v or abs(v) == float("inf") for v in scalars.values()):
                raise TrainingDiverged(f"step {step}: {scalars} (lower the learning rate)")
            curve.append(scalars)
            tick(scalars)
    return curve


def checkpoint_bytes(baseline: Baseline, job: TrainJob) -> bytes:
    buffer = io.BytesIO()
    torch.save({"identity": json.dumps(job.identity, sort_keys=True), "state": baseline.state_dict()}, buffer)
    return buffer.getvalue()


def load_checkpoint(baseline: Baseline, job: TrainJob, content: bytes) -> None:
    """Restore weights; a checkpoint written for another job identity is refused."""
    state = torch.load(io.BytesIO(content), map_location=baseline.device, weights_only=True)
    if state.get("identity") != json.dumps(job.identity, sort_keys=True):
        raise BenchError(f"the checkpoint for {job.name} was written for another configuration; delete "
                         f"that MLflow run (or use a fresh --tracking-uri) and run again.")
    baseline.load_state_dict(state["state"])


def flatten(prefix: str, value: object) -> dict[str, object]:
    """Nested dicts -> ``{"a.b": value}`` (MLflow params are flat)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, object] = {}
    for key, inner in value.items():
        out.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
    return out


def train_tags(ctx: Context, job: TrainJob, dataset: ImageDataset) -> dict[str, str]:
    d = job.data
    return {**run_tags(ctx.device), "suite": ctx.suite.name, "job_key": job.key, "kind": "train",
            "baseline": job.variant.baseline.name, "label": job.variant.baseline.label,
            "dataset": d.name, "image_size": str(d.image_size), "way": str(d.way), "shot": str(d.shot),
            "query": str(d.query), "seed": str(job.seed), "data_hash": dataset.content_hash}


def eval_tags(ctx: Context, job: EvalJob, threat: Threat, episodes: EpisodeSet) -> dict[str, str]:
    shared = ("baseline", "label", "dataset", "way", "shot", "query", "seed", "image_size", "data_hash")
    inherited = {k: v for k, v in train_tags(ctx, job.train, ctx.dataset(job.train)).items() if k in shared}
    return {**run_tags(ctx.device), **inherited, "suite": ctx.suite.name, "job_key": job.key, "kind": "eval",
            "train_key": job.train.key, "threat": job.threat.name, "threat_label": job.threat.label,
            "threat_kind": threat.kind, "episodes_hash": episodes.hash}


def train_or_restore(ctx: Context, job: TrainJob, finished: dict[str, str],
                     outcome: JobOutcome) -> tuple[Baseline, str]:
    """Train and record the job, or rebuild it from its finished run's checkpoint."""
    dataset = ctx.dataset(job)
    baseline = build_baseline(job, dataset, ctx.device)
    if job.key in finished:
        load_checkpoint(baseline, job, ctx.tracker.read_file(finished[job.key], CHECKPOINT))
        return baseline, finished[job.key]
    run_id = ctx.tracker.start(job.name, train_tags(ctx, job, dataset))
    try:
        ctx.tracker.log(run_id, params=flatten("", job.identity))
        start = time.perf_counter()
        curve = train(baseline, job, dataset, ctx.progress)
        outcome.seconds, outcome.trained = time.perf_counter() - start, True
        ctx.tracker.log_curve(run_id, curve)
        ctx.tracker.log(run_id, metrics={"device_seconds": outcome.seconds})
        ctx.tracker.log_file(run_id, CHECKPOINT, checkpoint_bytes(baseline, job))
        ctx.tracker.log_file(run_id, "config.json", json.dumps(job.identity, indent=1, sort_keys=True).encode())
        ctx.tracker.end(run_id)
    except BaseException as exc:
        ctx.tracker.end(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                        traceback.format_exc())
        raise
    return baseline, run_id


def run_eval(ctx: Context, job: EvalJob, baseline: Baseline, parent: str, episodes: EpisodeSet,
             outcome: JobOutcome) -> None:
    """Evaluate one threat and record it as a nested run."""
    threat_spec = job.threat
    threat = THREATS.get(threat_spec.name)(threat_spec.config)
    run_id = ctx.tracker.start(job.name, eval_tags(ctx, job, threat, episodes), parent=parent)
    try:
        ctx.tracker.log(run_id, params=flatten("", job.identity))
        seeds = threat_seeds(job.train.seed, episodes, stable_key(component_identity(threat_spec)))
        start = time.perf_counter()
        with ctx.progress.bar(len(episodes), f"eval {threat_spec.label}") as tick:
            accuracies = evaluate_threat(baseline, episodes, threat, seeds, lambda: tick({}))
        seconds = time.perf_counter() - start
        mean, half = mean_ci(accuracies)
        ctx.tracker.log(run_id, metrics={"accuracy": mean, "ci95": half, "episodes": len(accuracies),
                                         "device_seconds": seconds})
        ctx.tracker.log_file(run_id, PER_EPISODE, json.dumps({"accuracy": accuracies}).encode())
        ctx.tracker.end(run_id)
        outcome.accuracies[threat_spec.label] = (mean, half)
    except BaseException as exc:
        ctx.tracker.end(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                        traceback.format_exc())
        if isinstance(exc, (KeyboardInterrupt, BenchError)):
            raise
        outcome.failed.append(f"{threat_spec.label}: {type(exc).__name__}: {exc}")
