"""Declared evaluation modes (issue 25): a baseline's adaptation is stochastic or not, its task
models transductive or not (batch-statistics batch norm); attacks on stochastic adaptation use
expectation over transformation (EoT) with ``eot_draws`` draws; every eval run records all three."""

from __future__ import annotations

import torch

from baselines.protonet import ProtoNet, PrototypeClassifier
from bench.baseline import TaskModel
from bench.plan.jobs import make_plan
from bench.registry import BASELINES, THREATS
from bench.seeding import torch_rng
from bench.suite.load import load_suite
from bench.threats.base import Adaptation, Expectation, attacked_model, draws_for
from bench.tracking.records import EOT_DRAWS, STOCHASTIC, TRANSDUCTIVE
from bench.tracking.tags import identity_tags
from tests.helpers import make_episode, tiny

NOISE = 0.05  # of the prototypes' spread


class NoisyPrototypes(ProtoNet):
    """ProtoNet whose adaptation jitters each prototype (a stand-in for sampled weights)."""

    name = "noisy_protonet_test"
    stochastic = True

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        prototypes = super().adapt(support_x, support_y).prototypes
        noise = torch.randn_like(prototypes) * prototypes.std() * NOISE
        return PrototypeClassifier(self.backbone, prototypes + noise)


def _counting(adapt):
    calls = []

    def counted(x: torch.Tensor, y: torch.Tensor) -> TaskModel:
        calls.append(1)
        return adapt(x, y)
    return counted, calls


def _pgd(**params: object):
    cls = THREATS.get("pgd")
    return cls(cls.Config(**{"eps": 0.1, "alpha": 0.03, "steps": 3, **params}))


def test_a_deterministic_adaptation_is_attacked_through_its_one_model_whatever_eot_draws_says():
    protonet, episode = tiny("protonet"), make_episode(3)
    results = []
    for draws in (1, 5):
        counted, calls = _counting(protonet.adapt)
        results.append(_pgd(eot_draws=draws).evaluate(Adaptation(counted), episode, 7))
        assert len(calls) == 1
    assert torch.equal(results[0], results[1])


def test_a_stochastic_adaptation_is_attacked_through_eot_draws_fresh_draws_besides_the_one_that_classifies():
    noisy, episode = _noisy(), make_episode(3)
    for draws, expected_calls in ((1, 2), (4, 5)):
        counted, calls = _counting(noisy.adapt)
        with torch_rng(0):
            _pgd(eot_draws=draws).evaluate(Adaptation(counted, stochastic=True), episode, 7)
        assert len(calls) == expected_calls


def test_the_support_attack_averages_draws_at_every_step():
    noisy, episode = _noisy(), make_episode(3)
    threat = THREATS.get("support_pgd")(THREATS.get("support_pgd").Config(eps=0.1, steps=2, eot_draws=3))
    counted, calls = _counting(noisy.adapt)
    with torch_rng(0):
        threat.evaluate(Adaptation(counted, stochastic=True), episode, 5)
    assert len(calls) == 2 * 3 + 1  # 3 draws per step, then the draw that classifies


def test_expectation_is_the_log_of_the_mean_softmax_of_its_draws():
    noisy, episode = _noisy(), make_episode(4)
    with torch_rng(1):
        models = [noisy.adapt(episode.support_x, episode.support_y) for _ in range(3)]
    with torch.no_grad():
        mean = torch.stack([m(episode.query_x).softmax(-1) for m in models]).mean(0)
        assert torch.allclose(Expectation(models)(episode.query_x).exp(), mean, atol=1e-6)
    one = attacked_model(Adaptation(noisy.adapt, stochastic=True), episode.support_x, episode.support_y,
                         _pgd(eot_draws=1).config)
    assert not isinstance(one, Expectation)


def test_eot_attacks_a_stochastic_model_harder_than_one_other_draw():
    """Without EoT the attack meets the classifying draw only through another draw: robust
    accuracy is inflated (AutoAttack issues #15, #104). Here 8 draws halve it (14% -> 7%)."""
    noisy = _noisy()
    episodes = [make_episode(s, shot=1, query=6) for s in range(6)]

    def robust(draws: int) -> float:
        right = 0
        for i, e in enumerate(episodes):
            with torch_rng(100 + i):
                attack = _pgd(eot_draws=draws, eps=0.02, alpha=0.02 / 3)
                right += int(attack.evaluate(Adaptation(noisy.adapt, True), e, i).sum())
        return right / sum(e.query_y.numel() for e in episodes)

    assert robust(8) < robust(1) - 0.03


def test_draws_recorded_are_one_for_deterministic_baselines_and_non_attacks():
    assert draws_for(False, _pgd(eot_draws=8).config) == 1
    assert draws_for(True, _pgd(eot_draws=8).config) == 8
    assert draws_for(True, THREATS.get("gaussian_noise").Config()) == 1


def _plan(tmp_path, body: str):
    """The plan of a one-setting glyphs suite with ``body`` (its baselines and threats)."""
    path = tmp_path / "modes.yaml"
    path.write_text("name: modes\nseeds: [0]\ndatasets: [{name: glyphs, way: 5, shot: 1}]\n" + body)
    return make_plan(load_suite(str(path)))


def test_every_run_records_the_declared_modes(tmp_path):
    plan = _plan(tmp_path, """
baselines:
  - protonet
  - maml
  - {name: protonet, label: protonet-bn, backbone: {name: conv4, params: {bn_stats: batch}}}
threats: [clean, {name: pgd, params: {eot_draws: 4}}]
""")
    tags = {(j.train.variant.baseline.label, j.threat.name): identity_tags("modes", j) for j in plan.all_eval_jobs()}
    assert tags[("protonet", "pgd")][TRANSDUCTIVE] == "false"
    assert tags[("maml", "pgd")][TRANSDUCTIVE] == "true"  # MAML's paper default: batch statistics
    assert tags[("protonet-bn", "clean")][TRANSDUCTIVE] == "true"
    assert {t[STOCHASTIC] for t in tags.values()} == {"false"}
    assert tags[("protonet", "pgd")][EOT_DRAWS] == "1"  # deterministic: one model, whatever was asked
    assert plan.suite.threats[1].label == "pgd[eot_draws=4]"


def _noisy() -> NoisyPrototypes:
    base = tiny("protonet")
    return NoisyPrototypes(base.config, base.backbone, 5, torch.device("cpu"))


def test_the_report_marks_transductive_rows_and_stochastic_rows_attacked_with_one_draw(tmp_path):
    from bench.report.cells import row_modes

    with BASELINES.temporarily():
        BASELINES.add_class(NoisyPrototypes)
        plan = _plan(tmp_path, """
baselines: [protonet, maml, noisy_protonet_test]
threats: [clean, {name: pgd, params: {eot_draws: 1}}, {name: pgd, label: pgd-eot, params: {eot_draws: 8}},
          gaussian_noise]
""")
        modes = row_modes(plan.all_eval_jobs())
        tags = {(j.train.variant.baseline.label, j.threat.label): identity_tags("marks", j)
                for j in plan.all_eval_jobs()}
        eot_only = row_modes([j for j in plan.all_eval_jobs() if j.threat.label != "pgd[eot_draws=1]"])
    assert modes["maml"].marks() == ["transductive"] and modes["protonet"].marks() == []
    assert modes["noisy_protonet_test"].marks() == ["stochastic, no EoT"]  # the pgd column drew once
    assert tags[("noisy_protonet_test", "pgd-eot")][EOT_DRAWS] == "8"
    assert tags[("noisy_protonet_test", "pgd-eot")][STOCHASTIC] == "true"
    assert eot_only["noisy_protonet_test"].marks() == []


def test_autoattack_records_that_its_targeted_attacks_try_every_other_class(tmp_path):
    from bench.tracking.records import TARGET_CLASSES

    path = tmp_path / "aa.yaml"
    path.write_text("name: aa\nseeds: [0]\ndatasets: [{name: glyphs, way: [5, 20], shot: 1}]\n"
                    "baselines: [protonet]\nthreats: [autoattack, pgd]\n")
    jobs = make_plan(load_suite(str(path))).all_eval_jobs()
    targets = {(j.setting.way, j.threat.name): identity_tags("aa", j).get(TARGET_CLASSES) for j in jobs}
    assert targets == {(5, "autoattack"): "4", (20, "autoattack"): "19", (5, "pgd"): None, (20, "pgd"): None}
