"""The conformance battery every registered baseline must pass (DESIGN.md, baseline contract).

Parametrised over the registry: a new file in ``baselines/`` is picked up with no edit here.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from bench.baseline import Baseline, TaskModel
from bench.registry import BASELINES, THREATS
from bench.run.runner import checkpoint_bytes, load_checkpoint
from bench.testing import make_baseline as shared_make_baseline
from bench.threats.attacks import PGDConfig
from tests.helpers import QUERY, SIZE, WAY, make_episode

CPU = torch.device("cpu")


def make_baseline(name: str, seed: int = 0) -> Baseline:
    return shared_make_baseline(name, seed, WAY, SIZE, 1, CPU)


def state_copy(baseline: Baseline) -> dict:
    return copy.deepcopy(baseline.state_dict())


def assert_states_equal(a: dict, b: dict) -> None:
    flat_a, flat_b = _flatten(a), _flatten(b)
    assert flat_a.keys() == flat_b.keys()
    for key in flat_a:
        value_a, value_b = flat_a[key], flat_b[key]
        if isinstance(value_a, torch.Tensor):
            assert torch.equal(value_a, value_b), key
        else:
            assert value_a == value_b, key


def _flatten(value: object, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out: dict = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(value, (list, tuple)):
        return _flatten(dict(enumerate(value)), prefix)
    return {prefix: value}


NAMES = BASELINES.names()
TRAINABLE = [name for name in NAMES if BASELINES.get(name).trains]  # `pretrained` is evaluated as given


def meta_update(baseline: Baseline, episodes: list) -> None:
    """One meta-update, as the runner does it: none for a baseline that does not train."""
    if type(baseline).trains:
        baseline.train_step(episodes)


@pytest.fixture(params=NAMES)
def trained(request: pytest.FixtureRequest) -> Baseline:
    """A baseline after three meta-updates (so optimiser state and BN statistics exist)."""
    baseline = make_baseline(request.param)
    for step in range(3):
        meta_update(baseline, [make_episode(10 + step), make_episode(20 + step)])
    return baseline


def test_class_attributes(trained: Baseline) -> None:
    cls = type(trained)
    assert cls.name and cls.paper and cls.__doc__
    assert cls.Config.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_adapt_returns_a_task_model_with_logits_of_the_right_shape(trained: Baseline) -> None:
    episode = make_episode(1)
    model = trained.adapt(episode.support_x, episode.support_y)
    assert isinstance(model, TaskModel)
    assert any(True for _ in model.parameters())
    logits = model(episode.query_x)
    assert logits.shape == (WAY * QUERY, WAY) and torch.isfinite(logits).all()


def test_gradient_wrt_query_is_finite_and_nonzero(trained: Baseline) -> None:
    episode = make_episode(2)
    model = trained.adapt(episode.support_x, episode.support_y)
    x = episode.query_x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), episode.query_y), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_gradient_wrt_support_when_asked(trained: Baseline) -> None:
    episode = make_episode(3)
    support = episode.support_x.clone().requires_grad_()
    model = trained.adapt(support, episode.support_y)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(episode.query_x), episode.query_y), support)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_adapt_never_mutates_the_baseline(trained: Baseline) -> None:
    before = state_copy(trained)
    episode = make_episode(4)
    model = trained.adapt(episode.support_x, episode.support_y)
    model.train()  # even a task model put in train mode must not touch the baseline
    x = episode.query_x.clone().requires_grad_()
    torch.autograd.grad(model(x).sum(), x)
    model(episode.query_x)
    assert_states_equal(before, trained.state_dict())


def test_eval_logits_equal_the_runners(trained: Baseline) -> None:
    episode = make_episode(5)
    model = trained.adapt(episode.support_x, episode.support_y)
    with torch.no_grad():
        eval_logits = model.eval()(episode.query_x)
        train_logits = model.train()(episode.query_x)
    assert torch.equal(eval_logits, train_logits)
    correct = THREATS.get("clean")(THREATS.get("clean").Config()).evaluate(trained.adapt, episode, 0)
    assert torch.equal(correct, eval_logits.argmax(-1) == episode.query_y)


def test_pgd_with_zero_eps_leaves_accuracy_unchanged(trained: Baseline) -> None:
    episode = make_episode(6)
    clean = THREATS.get("clean")(None).evaluate(trained.adapt, episode, 0)
    pgd = THREATS.get("pgd")(PGDConfig(eps=0.0, alpha=2 / 255, steps=3)).evaluate(trained.adapt, episode, 0)
    assert torch.equal(clean, pgd)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_same_logits(name: str) -> None:
    episode = make_episode(7)
    logits = []
    for _ in range(2):
        baseline = make_baseline(name, seed=3)
        meta_update(baseline, [episode])
        logits.append(baseline.adapt(episode.support_x, episode.support_y)(episode.query_x))
    assert torch.equal(logits[0], logits[1]), name


def test_checkpoint_round_trip(trained: Baseline) -> None:
    from bench.plan.jobs import make_plan
    from bench.suite.load import load_suite

    job = make_plan(load_suite("smoke")).train_jobs[0]
    restored = make_baseline(type(trained).name, seed=99)
    load_checkpoint(restored, job, checkpoint_bytes(trained, job))
    assert_states_equal(trained.state_dict(), restored.state_dict())
    episode = make_episode(8)
    expected = trained.adapt(episode.support_x, episode.support_y)(episode.query_x)
    assert torch.equal(expected, restored.adapt(episode.support_x, episode.support_y)(episode.query_x))


@pytest.mark.parametrize("name", TRAINABLE)
def test_overfits_one_episode(name: str) -> None:
    baseline = make_baseline(name)
    episode = make_episode(9, shot=1, query=3)
    for _ in range(40):
        baseline.train_step([episode])
    model = baseline.adapt(episode.support_x, episode.support_y)
    with torch.no_grad():
        accuracy = (model(episode.query_x).argmax(-1) == episode.query_y).float().mean()
    assert accuracy >= 0.9, (name, float(accuracy))
