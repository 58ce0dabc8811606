"""Evaluate a model trained elsewhere on a suite's fixed test episodes and threats (issue 26).

The model becomes one added ``baselines:`` entry (`bench.suite.added`) and runs through the
same planner, scheduler, recorder and report as the suite's own baselines: the same test
episodes (same episode-set hash), the same attack seeds, paired tests against every row.
Before anything is recorded, `preflight` builds the model on one test episode and refuses
what cannot be evaluated, naming the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from bench.errors import BenchError
from bench.plan.jobs import Plan, TrainJob, make_plan
from bench.plan.selection import Selection, select
from bench.registry import THREATS
from bench.suite.added import Additions, check_label
from bench.suite.load import Component, Suite, load_suite
from bench.threats.base import EoTConfig


@dataclass(frozen=True)
class ModelRun:
    """What to evaluate: suite, the model's entry, and the options of the run."""

    suite: str
    entry: dict[str, Any]
    overrides: tuple[str, ...] = ()
    skip_gradient_threats: bool = False


def model_plan(request: ModelRun, stored: Additions = Additions()) -> Plan:
    """The plan of the model's jobs alone: the suite with the entry added (beside the entries
    stored before, whose labels it may not take, and the threats `bench eval` added), restricted
    to the model's label; checked first."""
    label = request.entry["label"]
    own = load_suite(request.suite, request.overrides)
    check_label([v.baseline.label for v in own.baselines], label)
    others = tuple(e for e in stored.baselines if e.get("label") != label)
    suite = load_suite(request.suite, request.overrides, Additions((*others, request.entry), stored.threats))
    blocked = preflight(suite, label)
    if blocked and not request.skip_gradient_threats:
        raise BenchError(not_differentiable(label, blocked, "or pass --skip-gradient-threats to run the other "
                                                            "threats only"))
    if blocked:
        suite = dataclasses.replace(suite, threats=tuple(t for t in suite.threats if t not in blocked))
    return select(make_plan(suite), Selection.from_text(label, None, None, None))


def gradient_threats(threats: tuple[Component, ...]) -> list[Component]:
    """The threats that differentiate the task model (attacks other than gradient-free ones)."""
    return [t for t in threats if isinstance(t.config, EoTConfig) and not THREATS.get(t.name).gradient_free]


def preflight(suite: Suite, label: str) -> list[Component]:
    """Build the model as a worker would and classify one test episode; raise `BenchError`
    for a model that cannot be built, loaded or run, or gives logits of the wrong shape.
    Returns the gradient threats it cannot face (logits not differentiable in the images)."""
    from bench.data.episodes import fixed_episodes
    from bench.run.runner import load_dataset

    job = next(j for j in make_plan(suite).train_jobs if j.variant.baseline.label == label)
    setting = next(d for d in suite.datasets if job.variant.runs_on(d))
    dataset = load_dataset(setting.name, setting.image_size, "cpu")
    reference = job.variant.backbone.config.factory
    baseline = _built(job, dataset, setting.way, reference)
    _check_declared_modes(baseline.backbone, job.variant.backbone.config.transductive, label, reference)
    episode = fixed_episodes(dataset, suite.eval.split, setting.way, setting.shot, setting.query, 1, 0)[0]
    images = episode.query_x.clone().requires_grad_(True)
    if getattr(baseline, "own_adapt", None) is None:
        _check_features(baseline.backbone, episode.support_x, label, reference)
    try:
        logits = baseline.adapt(episode.support_x, episode.support_y)(images)
    except Exception as exc:  # noqa: BLE001 - the researcher's code: any failure is reported as such
        raise BenchError(f"{label}: classifying a {setting.label} test episode with {reference} raised "
                         f"{type(exc).__name__}: {exc}") from exc
    expected = (images.shape[0], setting.way)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise BenchError(f"{label}: on a {setting.label} episode the task model returned {shape}; expected logits "
                         f"of shape {expected} (queries x way). An embedding must return (N, D) features; a "
                         f"model's own adapt() must return a module giving (N, way) logits.")
    return [] if _differentiable(logits, images) else gradient_threats(suite.threats)


def _check_declared_modes(backbone: torch.nn.Module, declared: bool, label: str, reference: str) -> None:
    """Batch norm without running statistics normalises each test batch by itself: the model is
    transductive, and its row must say so (reports mark it; issue 25's declared modes)."""
    batch_stats = [name for name, m in backbone.named_modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not m.track_running_stats]
    if batch_stats and not declared:
        raise BenchError(f"{label}: {reference} normalises with the statistics of each batch at test time "
                         f"({', '.join(batch_stats[:3])} keep no running statistics), so its prediction for a "
                         f"query depends on the other queries. Declare it: --transductive (in a suite: "
                         f"backbone.params.transductive: true).")


def _check_features(backbone: torch.nn.Module, images: torch.Tensor, label: str, reference: str) -> None:
    """An embedding must map ``(N, C, H, W)`` to ``(N, D)``."""
    with torch.no_grad():
        try:
            features = backbone.eval()(images)
        except Exception as exc:  # noqa: BLE001 - the researcher's code
            raise BenchError(f"{label}: {reference}'s forward on test images {tuple(images.shape)} raised "
                             f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] != images.shape[0]:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise BenchError(f"{label}: {reference} maps images {tuple(images.shape)} to {shape}; an embedding must "
                         f"return features (N, D) (flatten them), or give the module an adapt(support_x, "
                         f"support_y) that returns a task model.")


def _built(job: TrainJob, dataset: Any, way: int, reference: str) -> Any:
    from bench.run.runner import build_baseline

    try:
        return build_baseline(job, dataset, torch.device("cpu"), way)
    except BenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - the factory is the researcher's code
        raise BenchError(f"building the model with {reference}() raised {type(exc).__name__}: {exc}") from exc


def _differentiable(logits: torch.Tensor, images: torch.Tensor) -> bool:
    if not logits.requires_grad:
        return False
    (grad,) = torch.autograd.grad(logits.logsumexp(-1).sum() - logits[:, 0].sum(), images, allow_unused=True)
    return grad is not None and bool(torch.isfinite(grad).all()) and bool(grad.abs().sum() > 0)



def check_user_models(suite: Suite, plan: Plan | None) -> None:
    """Every variant on a researcher's own network (`bench.model_backbone`) is built and run on
    one test episode before anything is recorded (`preflight`)."""
    from bench.registry import BACKBONES

    variants = plan.suite.baselines if plan is not None else suite.baselines
    for variant in variants:
        if getattr(BACKBONES.get(variant.backbone.name), "user_code", False):
            blocked = preflight(suite, variant.baseline.label)
            if blocked:
                raise BenchError(not_differentiable(variant.baseline.label, blocked, "or leave those threats out "
                                                                                     "of the suite"))


def not_differentiable(label: str, blocked: list[Component], remedy: str) -> str:
    """The refusal of a model whose logits have no gradient in the images, naming the threats."""
    return (f"{label}: the model's logits are not differentiable in its input images, so "
            f"{', '.join(t.label for t in blocked)} cannot run (they need gradients). Make the forward pass "
            f"differentiable, {remedy}.")
