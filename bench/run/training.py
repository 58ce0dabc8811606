"""One train job's loop: meta-updates, validation-based selection, resumable state.

The protocol (DESIGN.md "Training protocol"): every ``validate_every`` meta-updates the model is
evaluated, clean, on fixed validation episodes (the val split, drawn and hashed like the test
episodes, so never of a test class); the best-validation weights are kept (``select:
best_val``, as Snell et al. 2017 select on validation and Antoniou et al. 2019 keep the best
validation models), and ``patience`` validations without improvement stop training early.

Every ``checkpoint_every`` meta-updates, and when the job is asked to stop, the loop writes a
resumable state (`bench.run.resume_state`): weights and optimisers (`Baseline.state_dict`), the
episode stream's and the global RNG's states, the step, the curve and the validation history
with the best weights. A job started again from that state performs exactly the meta-updates
the uninterrupted job would have, so its checkpoint, and every accuracy computed from it, are
bitwise equal on the same machine.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.baseline import Baseline
from bench.data.dataset import ImageDataset
from bench.data.episodes import Episode, EpisodeSampler, EpisodeSet, fixed_episodes
from bench.plan.jobs import TrainJob
from bench.registry import THREATS
from bench.run.evaluate import evaluate_threat
from bench.run.resume_state import ResumeFile
from bench.seeding import derive_seed, generator

StepHook = Callable[[int, int], None]
Attack = Callable[[Baseline, list[Episode], int], list[Episode]]


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class Progress:
    """What a train job has done so far (all of it goes into the resumable state).

    Attributes:
        step: meta-updates done. curve: per-update scalars. validation: ``(step, accuracy)``
            pairs. best_step, best_accuracy, best_state: the best validation so far (state on
            the CPU). since_best: validations since it. stopped_early: the step training stopped
            at for lack of improvement, else None. validation_seconds: time spent validating
            (its share of the job is the cost of selection; never part of a result).
            seconds: training time up to the last saved state, summed over every process that
            worked on the job (a resumed job's device time is all of it, not its last part).
    """

    step: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    best_accuracy: float = -1.0
    best_state: dict[str, Any] | None = None
    since_best: int = 0
    stopped_early: int | None = None
    validation_seconds: float = 0.0
    seconds: float = 0.0


def validation_episodes(job: TrainJob, dataset: ImageDataset) -> EpisodeSet | None:
    """The job's fixed validation episodes (``train.val_way``, else the training way; the
    training shot and query), or None when it does not validate (``validate_every`` 0, or a
    data set without a val split; a val split narrower than the way is refused by validation)."""
    budget, d = job.variant.train, job.data
    way = budget.val_way or d.way
    if budget.validate_every == 0 or dataset.num_classes("val") < way:
        return None
    seed = derive_seed(job.seed, "val-episodes", d.name, way, d.shot, d.query, budget.val_episodes)
    return fixed_episodes(dataset, "val", way, d.shot, d.query, budget.val_episodes, seed)


def validate(baseline: Baseline, episodes: EpisodeSet) -> float:
    """Mean clean accuracy over the validation episodes (the same code as a clean evaluation)."""
    clean = THREATS.get("clean")(None)
    accuracies = evaluate_threat(baseline, episodes, clean, [0] * len(episodes))
    return sum(accuracies) / len(accuracies)


class Trainer:
    """Runs one job's meta-training to its end, from scratch or from its resumable state."""

    def __init__(self, baseline: Baseline, job: TrainJob, dataset: ImageDataset, attack: Attack | None,
                 resume: ResumeFile | None = None, on_step: StepHook | None = None,
                 should_stop: Callable[[], None] = lambda: None,
                 for_way: Callable[[int], Baseline] | None = None) -> None:
        """``for_way(way)``: a fresh baseline of this job built for ``way`` classes, to validate
        an any-way baseline at a ``train.val_way`` other than its training way."""
        budget = job.variant.train
        self.baseline, self.job, self.budget, self.attack = baseline, job, budget, attack
        d = job.data
        self.sampler = EpisodeSampler(dataset, "train", d.way, d.shot, d.query, d.within)
        self.stream = generator(job.seed_for("train-episodes"))
        self.val = validation_episodes(job, dataset)
        self.resume, self.on_step, self.should_stop = resume, on_step, should_stop
        self.progress = Progress()
        self.began, self.resumed_seconds = time.perf_counter(), 0.0  # earlier processes' share
        self.for_way = for_way
        self._val_model: Baseline | None = None

    def run(self) -> Progress:
        """Train (resuming where a state exists); on return the baseline holds the selected weights."""
        if self.resume is not None and (saved := self.resume.load()) is not None:
            self._restore(saved)
        try:
            while self.progress.step < self.budget.steps and self.progress.stopped_early is None:
                self.should_stop()
                self._update()
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM (`Stopped`): keep what was done
            self._save()
            raise
        if self.budget.select == "best_val" and self.progress.best_state is not None:
            self.baseline.load_state_dict(self.progress.best_state)
        return self.progress

    def _update(self) -> None:
        p, budget = self.progress, self.budget
        episodes = self.sampler.sample(self.stream, budget.meta_batch)
        if self.attack is not None:
            episodes = self.attack(self.baseline, episodes, p.step)
        scalars = self.baseline.train_step(episodes)
        if any(v != v or abs(v) == float("inf") for v in scalars.values()):
            raise TrainingDiverged(f"step {p.step}: {scalars}; lower the learning rate")
        p.curve.append(scalars)
        p.step += 1
        if self.val is not None and (p.step % budget.validate_every == 0 or p.step == budget.steps):
            self._validate()
        if budget.checkpoint_every and p.step % budget.checkpoint_every == 0 and p.step < budget.steps:
            self._save()
        if self.on_step is not None:
            self.on_step(p.step, budget.steps)

    def _validate(self) -> None:
        p = self.progress
        assert self.val is not None
        start = time.perf_counter()
        accuracy = validate(self._validation_model(), self.val)
        p.validation_seconds += time.perf_counter() - start
        p.validation.append((p.step, accuracy))
        if accuracy > p.best_accuracy:
            p.best_step, p.best_accuracy, p.since_best = p.step, accuracy, 0
            p.best_state = _cpu_copy(self.baseline.state_dict())
        else:
            p.since_best += 1
            if self.budget.patience and p.since_best >= self.budget.patience:
                p.stopped_early = p.step

    def _validation_model(self) -> Baseline:
        """The baseline itself, or, where the validation way differs from the way it was built
        for, the same weights in a baseline built for that way: an any-way baseline sizes its
        task model by its ``n_way`` (ProtoNet's prototypes), not by the support labels."""
        assert self.val is not None
        way = int(self.val.key["way"])
        if way == self.baseline.n_way:
            return self.baseline
        if self.for_way is None:
            raise ValueError(f"validation at {way}-way needs a baseline built for it (Trainer.for_way)")
        if self._val_model is None:
            self._val_model = self.for_way(way)
        self._val_model.load_state_dict(self.baseline.state_dict())
        return self._val_model

    def _save(self) -> None:
        self.progress.seconds = self.resumed_seconds + time.perf_counter() - self.began
        if self.resume is not None:
            self.resume.save({"progress": dataclasses.asdict(self.progress), "baseline": self.baseline.state_dict(),
                              "stream": self.stream.get_state(), "rng": _global_rng()})

    def _restore(self, saved: dict[str, Any]) -> None:
        self.progress = Progress(**saved["progress"])
        self.resumed_seconds = self.progress.seconds
        self.baseline.load_state_dict(saved["baseline"])
        self.stream.set_state(saved["stream"])
        _set_global_rng(saved["rng"])


def _cpu_copy(state: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a state dict with every tensor on the CPU (the best weights, kept aside)."""
    return copy.deepcopy({k: _to_cpu(v) for k, v in state.items()})


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def _global_rng() -> dict[str, Any]:
    """The global torch RNG streams a baseline may draw from (CPU, and each CUDA device)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_global_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
