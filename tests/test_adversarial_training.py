"""Adversarial meta-training baselines: ADML (Yin et al. 2018) and R-MAML (Wang et al. 2021).

Their conformance (adapt, gradients, checkpoints, overfitting one episode) is checked by
``tests/test_contract.py``; here: they reuse the evaluation threats, reduce to MAML where they
should, and make the adapted model more robust than natural MAML on the episodes they train on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from bench.baseline import Baseline
from bench.data.episodes import Episode
from bench.registry import THREATS
from tests.helpers import make_episode, tiny

EPS = 0.1  # synthetic patterns differ by much more than 8/255; a radius that breaks natural MAML


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: two spin-wait on each other on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train(baseline: Baseline, episodes: list[Episode], steps: int) -> Baseline:
    for _ in range(steps):
        scalars = baseline.train_step(episodes)
        assert torch.isfinite(torch.tensor(scalars["loss"]))
    return baseline


def adversarial_loss(baseline: Baseline, episodes: list[Episode]) -> float:
    """Mean query cross-entropy under PGD-10 at ``EPS`` after clean adaptation."""
    pgd = THREATS.get("pgd")(THREATS.get("pgd").Config(eps=EPS, alpha=EPS / 4, steps=10))
    losses = []
    for i, e in enumerate(episodes):
        model = baseline.adapt(e.support_x, e.support_y)
        adversarial = pgd.perturb(model, e.query_x, e.query_y, e.way, seed=i)
        with torch.no_grad():
            losses.append(F.cross_entropy(model(adversarial), e.query_y).item())
    return sum(losses) / len(losses)


def test_training_attacks_are_the_registered_threats() -> None:
    assert isinstance(tiny("adml").attack, THREATS.get("fgsm"))
    rmaml = tiny("rmaml", attack_steps=4)
    assert isinstance(rmaml.attack, THREATS.get("pgd")) and rmaml.attack.config.steps == 4
    assert rmaml.beta == 0.2 and tiny("rmaml", outer_loss="trades").beta == 5.0


def test_rmaml_with_beta_zero_is_maml() -> None:
    episodes = [make_episode(1, shot=1, query=3), make_episode(2, shot=1, query=3)]
    maml, rmaml = tiny("maml"), tiny("rmaml", beta=0.0)
    # Same maths, not the same float program (MAML back-propagates task by task), hence tolerances.
    assert maml.train_step(episodes)["loss"] == pytest.approx(rmaml.train_step(episodes)["loss"], rel=1e-5)
    # Compare meta-gradients, not Adam's first step: it maps the ~0 gradient of a conv bias
    # before batch norm (rounding noise) to a full +-lr step.
    pairs = [(a.grad, b.grad) for a, b in zip(maml.net.parameters(), rmaml.net.parameters(), strict=True)]
    scale = max(float(a.abs().max()) for a, _ in pairs)
    assert max(float((a - b).abs().max()) for a, b in pairs) <= 1e-4 * scale


def test_robust_terms_add_to_the_clean_loss() -> None:
    episodes = [make_episode(3, shot=1, query=3)]
    clean = tiny("maml").train_step(episodes)["loss"]
    assert tiny("rmaml", outer_loss="trades", attack_eps=EPS).train_step(episodes)["loss"] > clean
    assert tiny("rmaml", attack_eps=EPS).train_step(episodes)["loss"] > clean


@pytest.mark.parametrize("name", ["adml", "rmaml"])
def test_train_steps_keep_train_mode_and_running_statistics(name: str) -> None:
    baseline = tiny(name, seed=1, bn_stats="running")  # attacks run the shared network in eval mode
    baseline.train_step([make_episode(4, shot=1, query=3)])
    assert all(m.training for m in baseline.net.modules())
    assert int(baseline.net[0].blocks[0][1].num_batches_tracked) > 0


def test_rmaml_is_more_robust_than_maml_on_its_training_episodes() -> None:
    episodes = [make_episode(700 + i, shot=1, query=3) for i in range(2)]
    natural = adversarial_loss(train(tiny("maml", seed=1), episodes, 40), episodes)
    robust = adversarial_loss(train(tiny("rmaml", seed=1, attack_eps=EPS, attack_alpha=EPS / 2, beta=1.0),
                                    episodes, 40), episodes)
    assert robust < natural - 0.2, (natural, robust)


@pytest.mark.slow
def test_adml_is_more_robust_than_maml_on_its_training_episodes() -> None:
    episodes = [make_episode(700 + i, shot=1, query=3) for i in range(2)]
    for seed in (1, 2):
        natural = adversarial_loss(train(tiny("maml", seed=seed), episodes, 60), episodes)
        robust = adversarial_loss(train(tiny("adml", seed=seed, attack_eps=EPS), episodes, 60), episodes)
        assert robust < natural - 0.2, (seed, natural, robust)
