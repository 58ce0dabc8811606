"""The threat catalogue: query attacks, support threats (sanity checks: test_sanity.py).

Models are tiny (Conv4 with 8 filters on the 28 px synthetic episodes of the conformance
battery) so that every attack runs on a 2-core CPU in seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from bench.baseline import Baseline
from bench.data.episodes import Episode
from bench.registry import THREATS
from bench.seeding import torch_rng
from bench.threats.support import balanced_choice, inject_outliers, poison_support, swap_count, swap_labels
from tests.helpers import make_episode, tiny

CPU = torch.device("cpu")
CHEAP = {  # attack parameters small enough for a unit test; eps is set per test
    "fgsm": {}, "pgd": {"steps": 5}, "pgd_l2": {"steps": 5}, "mifgsm": {"steps": 5},
    "cw": {"steps": 10, "c": 10.0}, "apgd_ce": {"steps": 5}, "apgd_dlr": {"steps": 5},
    "square": {"n_queries": 20}, "autoattack": {"steps": 3, "n_queries": 10},
}
L2 = ("pgd_l2", "cw")


def attack(name: str, **params: object):
    cls = THREATS.get(name)
    return cls(cls.Config(**{**CHEAP[name], **params}))


def accuracy(results: list[torch.Tensor]) -> float:
    return float(torch.cat(results).float().mean())


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine two OpenMP threads spin-wait on each
    other and tiny models run many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def protonet() -> Baseline:
    """ProtoNet after 30 meta-updates on synthetic 5-way 1-shot episodes (clean accuracy ~1)."""
    baseline = tiny("protonet", lr=3e-3)
    for step in range(30):
        baseline.train_step([make_episode(1000 + 2 * step, shot=1, query=3),
                             make_episode(1001 + 2 * step, shot=1, query=3)])
    return baseline


@pytest.fixture(scope="module")
def episodes() -> list[Episode]:
    return [make_episode(i, shot=1, query=3) for i in range(3)]


@pytest.mark.parametrize("name", sorted(CHEAP))
def test_eps_zero_equals_clean(name: str, protonet: Baseline, episodes: list[Episode]) -> None:
    clean = THREATS.get("clean")(None)
    for i, e in enumerate(episodes):
        expected = clean.evaluate(protonet.adapt, e, i)
        assert torch.equal(attack(name, eps=0.0).evaluate(protonet.adapt, e, i), expected), i


@pytest.mark.parametrize("name", sorted(CHEAP))
def test_attacks_stay_in_the_eps_ball_and_in_range(name: str, protonet: Baseline) -> None:
    e = make_episode(5, shot=1, query=3)
    model = protonet.adapt(e.support_x, e.support_y)
    eps = 0.5 if name in L2 else 8 / 255
    adv = attack(name, eps=eps).perturb(model, e.query_x, e.query_y, 5, seed=1)
    delta = (adv - e.query_x).flatten(1)
    size = delta.norm(dim=1) if name in L2 else delta.abs().amax(dim=1)
    assert adv.shape == e.query_x.shape and adv.min() >= 0 and adv.max() <= 1
    assert size.max() <= eps + 1e-5
    assert not torch.equal(adv, e.query_x) or name in ("cw", "square")  # those may fail to move


@pytest.mark.parametrize("name", ["pgd", "pgd_l2", "apgd_ce", "square"])
def test_same_seed_same_adversarial_examples(name: str, protonet: Baseline) -> None:
    e = make_episode(6, shot=1, query=3)
    model = protonet.adapt(e.support_x, e.support_y)
    threat = attack(name)
    first = threat.perturb(model, e.query_x, e.query_y, 5, seed=11)
    assert torch.equal(first, threat.perturb(model, e.query_x, e.query_y, 5, seed=11))
    if name in ("pgd", "pgd_l2"):  # the random start depends on the seed
        assert not torch.equal(first, threat.perturb(model, e.query_x, e.query_y, 5, seed=12))


@pytest.mark.parametrize("name", ["pgd_l2", "mifgsm"])
def test_the_ports_are_torchattacks_step_for_step(name: str, protonet: Baseline) -> None:
    """Where torchattacks does not divide by zero, its attack and our port give the same bits."""
    import torchattacks

    from bench.threats.attacks.query import InputOnly, attack_arguments
    e = make_episode(8, shot=1, query=3)
    model = InputOnly(protonet.adapt(e.support_x, e.support_y))
    threat = attack(name, eps=0.5 if name == "pgd_l2" else 0.1)
    reference = {"pgd_l2": torchattacks.PGDL2, "mifgsm": torchattacks.MIFGSM}[name](
        model, **attack_arguments(threat.config))
    ours = threat.build(model, 5, 0)
    outputs = []
    for made in (reference, ours):
        with torch_rng(4, CPU):  # both draw the random start from the global RNG
            outputs.append(made(e.query_x, e.query_y))
    assert torch.equal(*outputs) and not torch.equal(outputs[0], e.query_x)


def test_attacks_reduce_accuracy_of_a_trained_model(protonet: Baseline, episodes: list[Episode]) -> None:
    clean = accuracy([THREATS.get("clean")(None).evaluate(protonet.adapt, e, 0) for e in episodes])
    pgd = accuracy([attack("pgd", eps=0.2, alpha=0.05).evaluate(protonet.adapt, e, 0) for e in episodes])
    assert clean >= 0.8 and pgd <= clean - 0.3, (clean, pgd)


def test_autoattack_uses_the_episode_way(protonet: Baseline) -> None:
    threat = attack("autoattack")
    e = make_episode(7, shot=1, query=3)
    model = protonet.adapt(e.support_x, e.support_y)
    parts = {type(a).__name__: a for a in threat.build(model, 5, 0).attacks}
    assert parts["APGDT"].n_target_classes == 4 and parts["FAB"].n_target_classes == 4
    assert "APGDT" not in {type(a).__name__ for a in threat.build(model, 3, 0).attacks}
    correct = threat.evaluate(protonet.adapt, e, 3)
    assert correct.shape == (15,) and correct.dtype == torch.bool


@pytest.mark.parametrize("name", ["support_pgd", "support_query_pgd"])
def test_support_attacks_reduce_accuracy(name: str, protonet: Baseline, episodes: list[Episode]) -> None:
    cls = THREATS.get(name)
    threat = cls(cls.Config(eps=0.2, alpha=0.05, steps=5))
    clean = accuracy([THREATS.get("clean")(None).evaluate(protonet.adapt, e, 0) for e in episodes])
    poisoned = accuracy([threat.evaluate(protonet.adapt, e, i) for i, e in enumerate(episodes)])
    assert poisoned <= clean - 0.2, (clean, poisoned)
    zero = cls(cls.Config(eps=0.0, steps=2))
    assert all(torch.equal(zero.evaluate(protonet.adapt, e, 0),
                           THREATS.get("clean")(None).evaluate(protonet.adapt, e, 0)) for e in episodes)


def test_support_attack_differentiates_through_maml_inner_loop() -> None:
    maml, e = tiny("maml"), make_episode(8, shot=1, query=3)
    for _ in range(10):
        maml.train_step([e])
    cls = THREATS.get("support_pgd")
    poisoned = poison_support(maml.adapt, e, cls.Config(eps=0.1, alpha=0.03, steps=3), seed=0)

    def loss_and_accuracy(support: torch.Tensor) -> tuple[float, float]:
        with torch.no_grad():
            logits = maml.adapt(support, e.support_y)(e.query_x)
        return F.cross_entropy(logits, e.query_y).item(), accuracy([logits.argmax(-1) == e.query_y])

    (clean_loss, clean_acc), (loss, acc) = loss_and_accuracy(e.support_x), loss_and_accuracy(poisoned)
    assert loss > clean_loss + 0.1 and acc < clean_acc, (clean_loss, loss, clean_acc, acc)
    assert (poisoned - e.support_x).abs().max() <= 0.1 + 1e-6


@pytest.mark.parametrize(("way", "shot", "fraction", "flipped"), [
    (5, 5, 0.2, 5), (5, 1, 0.4, 2), (5, 1, 0.2, 2), (2, 3, 0.5, 4), (5, 2, 1.0, 10), (5, 5, 0.0, 0)])
def test_label_noise_swaps_exactly_the_stated_count(way: int, shot: int, fraction: float, flipped: int) -> None:
    labels = torch.arange(way).repeat_interleave(shot)
    assert swap_count(way * shot, way, fraction) == flipped
    for seed in range(5):
        noisy = swap_labels(labels, fraction, torch.Generator().manual_seed(seed))
        assert int((noisy != labels).sum()) == flipped
        assert torch.equal(torch.bincount(noisy, minlength=way), torch.bincount(labels, minlength=way))
    same = [swap_labels(labels, fraction, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(same[0], same[1])


def test_balanced_choice_spreads_over_classes() -> None:
    labels = torch.arange(5).repeat_interleave(4)
    picked = balanced_choice(labels, 7, torch.Generator().manual_seed(0))
    assert len(set(picked.tolist())) == 7 and torch.bincount(labels[picked], minlength=5).max() == 2


def test_outliers_come_from_outside_the_episode(protonet: Baseline) -> None:
    e = make_episode(9, shot=2, query=3)
    outside = make_episode(99, way=5, shot=2, query=1).support_x  # other random classes
    support, positions = inject_outliers(e.support_x, e.support_y, outside, 0.3,
                                         torch.Generator().manual_seed(0))
    assert len(positions) == 3
    changed = [i for i in range(10) if not torch.equal(support[i], e.support_x[i])]
    assert sorted(changed) == sorted(positions.tolist())
    for i in changed:
        assert any(torch.equal(support[i], o) for o in outside)
        assert not any(torch.equal(support[i], s) for s in torch.cat([e.support_x, e.query_x]))
    threat = THREATS.get("support_outliers")(THREATS.get("support_outliers").Config(fraction=0.5))
    with_pool = dataclasses.replace(e, outliers=outside)
    assert threat.evaluate(protonet.adapt, with_pool, 1).shape == (15,)
    with pytest.warns(UserWarning, match="Episode.outliers"):
        threat.evaluate(protonet.adapt, e, 1)


def test_the_evaluation_loop_gives_support_outliers_images_of_the_splits_other_classes(
        protonet: Baseline) -> None:
    import warnings

    from bench.data.episodes import fixed_episodes
    from bench.registry import DATASETS
    from bench.run.evaluate import evaluate_threat

    data = DATASETS.get("glyphs")().ensure(None, 28)
    episodes = fixed_episodes(data, "test", 5, 1, 3, 4, seed=0)
    e = episodes.with_outliers(2, seed=5)
    assert e.outliers is not None and e.outliers.shape == e.support_x.shape
    assert torch.equal(e.outliers, episodes.with_outliers(2, seed=5).outliers)  # seeded
    pixels = (data.images.float() / 255).flatten(1)
    rows = [int((pixels == o.flatten()).all(1).nonzero()[0]) for o in e.outliers]
    test_classes = set(data.splits["test"].tolist())
    assert {int(data.labels[r]) for r in rows} <= test_classes - set(e.classes.tolist())
    threat = THREATS.get("support_outliers")(THREATS.get("support_outliers").Config(fraction=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to scrambled images
        assert len(evaluate_threat(protonet, episodes, threat, [1, 2, 3, 4])) == 4
