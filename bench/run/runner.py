"""Job execution, free of tracking: meta-train one job, or evaluate one threat on a checkpoint.

These functions run wherever the scheduler puts them (this process, a local worker process,
a Ray task) and return plain, picklable results; the scheduler's single writer records them
in MLflow (`bench.tracking.recording`). Nothing here depends on which worker or GPU runs the job:
every random stream is derived from the job's identity.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bench.backbones import build_backbone
from bench.baseline import Baseline
from bench.data.dataset import ImageDataset
from bench.data.episodes import Episode, EpisodeSet, fixed_episodes
from bench.data.transform import match_format
from bench.environment import device_name
from bench.errors import BenchError
from bench.model_backbone import load_weights
from bench.plan.jobs import EvalJob, TrainJob, component_identity, episode_seed, setting_identity, stable_key
from bench.registry import BASELINES, DATASETS, THREATS
from bench.run.evaluate import evaluate_queries, threat_seeds
from bench.run.resume_state import ResumeFile
from bench.run.training import Trainer
from bench.seeding import derive_seed, torch_rng
from bench.suite.load import Suite
from bench.threats.attacks import training_attack
from bench.threats.base import target_dataset

UNTRAINED = "none"  # `TrainResult.selection` of a baseline that does not train (`Baseline.trains`)


@dataclass(frozen=True)
class TrainResult:
    """What a finished train job hands to the recorder."""

    key: str
    curve: list[dict[str, float]]
    checkpoint: bytes
    seconds: float
    device: str
    data_hash: str
    validation: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    selected_step: int = 0
    selection: str = "last"
    stopped_early: int | None = None
    validation_seconds: float = 0.0


@dataclass(frozen=True)
class EvalResult:
    """What a finished eval job hands to the recorder."""

    key: str
    accuracies: list[float]
    seconds: float
    device: str
    data_hash: str
    episodes_hash: str
    threat_kind: str
    correct: tuple[str, ...] = ()  # per episode: its queries' right (1) / wrong (0) bits, packed, hex
    queries: tuple[int, ...] = ()  # per episode: how many of those bits are queries


def packed_bits(correct: list[torch.Tensor]) -> tuple[str, ...]:
    """Each episode's per-query results as hex of ``numpy.packbits`` (MSB first; the episode's
    query count, ``way * query``, says how many bits of the last byte are used)."""
    return tuple(np.packbits(c.numpy()).tobytes().hex() for c in correct)


@functools.lru_cache(maxsize=8)
def load_dataset(name: str, image_size: int, device: str) -> ImageDataset:
    """A data set on ``device`` with its class groupings, loaded once per process (workers
    reuse it across jobs)."""
    source = DATASETS.get(name)()
    return source.with_groups(source.ensure(None, image_size)).to(device)


def build_baseline(job: TrainJob, dataset: ImageDataset, device: torch.device, way: int | None = None) -> Baseline:
    """A freshly initialised baseline for ``way`` classes (default: the training way); initial
    weights come from the job's ``init`` seed. An any-way baseline (`Baseline.any_way`) built
    for a test way takes the trained weights of its training way unchanged."""
    cls = BASELINES.get(job.variant.baseline.name)
    backbone_spec = job.variant.backbone
    with torch_rng(job.seed_for("init"), device):
        backbone = build_backbone(backbone_spec.name, backbone_spec.resolved(), dataset.channels,
                                  dataset.image_size)
        if backbone_spec.weights:
            load_weights(backbone, backbone_spec.weights)
        return cls(job.variant.baseline.config, backbone, way or job.data.way, device)


def adversarial_queries(baseline: Baseline, episodes: list[Episode], job: TrainJob, step: int) -> list[Episode]:
    """Adversarial querying (Goldblum et al. 2020): queries attacked against the current
    model adapted on the clean support set, with the SAME attack code used for evaluation."""
    budget = job.variant.train
    attack = training_attack(budget.adversarial, budget.adv_eps, budget.adv_alpha, budget.adv_steps)
    out = []
    for i, e in enumerate(episodes):
        model = baseline.adapt(e.support_x, e.support_y)
        seed = derive_seed(job.seed, job.key, "adversarial-querying", step, i)
        query = attack.perturb(model, e.query_x, e.query_y, job.data.way, seed).detach()
        out.append(Episode(e.support_x, e.support_y, query, e.query_y, e.classes))
    return out


def training_attack_for(job: TrainJob) -> Callable[[Baseline, list[Episode], int], list[Episode]] | None:
    """Adversarial querying's query attack for ``job``, or None for natural training."""
    if job.variant.train.adversarial == "none":
        return None
    return lambda baseline, episodes, step: adversarial_queries(baseline, episodes, job, step)


def execute_train(job: TrainJob, device: str, on_step: Callable[[int, int], None] | None = None,
                  resume: ResumeFile | None = None, should_stop: Callable[[], None] = lambda: None) -> TrainResult:
    """Train one job (from its resumable state where ``resume`` holds one) and return its
    selected checkpoint, training curve and validation history."""
    dataset = load_dataset(job.data.name, job.data.image_size, device)
    start = time.perf_counter()
    baseline = build_baseline(job, dataset, torch.device(device))
    if not type(baseline).trains:  # evaluated as given: its checkpoint is the weights it was built with
        return TrainResult(job.key, [], checkpoint_bytes(baseline, job), time.perf_counter() - start,
                           device_name(torch.device(device)), dataset.content_hash, selection=UNTRAINED)
    trainer = Trainer(baseline, job, dataset, training_attack_for(job), resume, on_step, should_stop,
                      lambda way: build_baseline(job, dataset, torch.device(device), way))
    done = trainer.run()
    seconds = time.perf_counter() - start + trainer.resumed_seconds
    # best_val falls back to the last weights where no validation ran (validate_every: 0).
    best = done.best_step if job.variant.train.select == "best_val" else None
    return TrainResult(job.key, done.curve, checkpoint_bytes(baseline, job), seconds,
                       device_name(torch.device(device)), dataset.content_hash, done.validation,
                       done.step if best is None else best, "last" if best is None else "best_val",
                       done.stopped_early, done.validation_seconds)


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


def episode_set(suite: Suite, job: EvalJob, device: str) -> EpisodeSet:
    """The fixed test episodes of an eval job's test setting: the data set's, or, for a
    domain-shift threat, the target data set's, converted to the trained data's channels and
    size (drawn across the target's classes: its groupings are not the source's)."""
    d, settings, seed = job.setting, suite.eval, job.train.seed
    target = target_dataset(job.threat.config)
    if target is None:
        dataset = load_dataset(d.name, d.image_size, device)
        return _cached_episodes(dataset, settings.split, d.way, d.shot, d.query, settings.episodes,
                                episode_seed(suite, d, seed), d.within)
    source = load_dataset(target, DATASETS.get(target).default_size, device)
    dataset = match_format(source, load_dataset(d.name, d.image_size, device))
    shift_seed = derive_seed(seed, "shift-episodes", target, *setting_identity(d).values(), settings.episodes)
    return _cached_episodes(dataset, settings.split, d.way, d.shot, d.query, settings.episodes, shift_seed)


_EPISODE_CACHE: dict[tuple, EpisodeSet] = {}


def _cached_episodes(dataset: ImageDataset, *shape: object) -> EpisodeSet:
    key = (dataset.content_hash, str(dataset.images.device), *shape)
    if key not in _EPISODE_CACHE:
        _EPISODE_CACHE[key] = fixed_episodes(dataset, *shape)  # type: ignore[arg-type]
    return _EPISODE_CACHE[key]


def execute_eval(job: EvalJob, suite: Suite, checkpoint: bytes, device: str,
                 should_stop: Callable[[], None] = lambda: None) -> EvalResult:
    """Evaluate one threat with the train job's checkpoint on the fixed test episodes;
    ``should_stop`` is called after each episode (it raises to abandon the evaluation)."""
    train_job = job.train
    dataset = load_dataset(train_job.data.name, train_job.data.image_size, device)
    baseline = build_baseline(train_job, dataset, torch.device(device), job.setting.way)
    load_checkpoint(baseline, train_job, checkpoint)
    threat = THREATS.get(job.threat.name)(job.threat.config)
    episodes = episode_set(suite, job, device)
    seeds = threat_seeds(train_job.seed, episodes, stable_key(component_identity(job.threat)))
    start = time.perf_counter()
    outcome = evaluate_queries(baseline, episodes, threat, seeds, should_stop)
    return EvalResult(job.key, outcome.accuracies, time.perf_counter() - start, device_name(torch.device(device)),
                      dataset.content_hash, episodes.hash, threat.kind, packed_bits(outcome.correct),
                      tuple(c.numel() for c in outcome.correct))
