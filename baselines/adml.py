"""ADML: Adversarial Meta-Learner (Yin, Tang, Xu & Wang 2018, arXiv:1806.03316, Algorithm 1).

MAML trained with adversarial samples in the inner AND the outer loop, crossed: per task, one
adaptation on the clean support set and one on the adversarial support set; the meta-loss is
the loss of the adversarially adapted weights on the CLEAN queries plus the loss of the
cleanly adapted weights on the ADVERSARIAL queries (the paper's "adversarial manner").
Test-time adaptation is MAML's (clean support, ``test_inner_steps`` SGD steps).

Adversarial samples come from the evaluation threat code (`QueryAttack.perturb`): support
images are attacked against the meta-model (as in the paper), queries against the model adapted
on the clean support (the model they are scored on). Defaults: MAML's Omniglot settings and the
paper's training attack, FGSM with eps = 2 (of 255). Deviation: the paper attacked a fixed
pre-trained model offline; here attacks are regenerated against the current weights every step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines._common import Params, episode_mean, inner_loop, minimise, named_params
from baselines.maml import MAML, FastWeightClassifier
from bench.baseline import Baseline
from bench.data.episodes import Episode
from bench.registry import THREATS
from bench.seeding import derive_seed
from bench.threats.attacks import QueryAttack


@dataclass(frozen=True)
class ADMLConfig:
    """Attributes:
        inner_lr, inner_steps, test_inner_steps, meta_lr, first_order: as `MAMLConfig`.
        attack: training attack, a registered query attack (paper: FGSM).
        attack_eps: its L-inf radius (paper: 2 on the 0-255 scale).
        attack_alpha, attack_steps: PGD's step size and iterations (ignored by FGSM).
    """

    inner_lr: float = 0.4
    inner_steps: int = 1
    test_inner_steps: int = 3
    meta_lr: float = 1e-3
    first_order: bool = False
    attack: Literal["fgsm", "pgd"] = "fgsm"
    attack_eps: float = 2 / 255
    attack_alpha: float = 1 / 255
    attack_steps: int = 3


def training_attack(name: str, eps: float, alpha: float, steps: int) -> QueryAttack:
    """The registered threat ``name`` configured with whichever of eps/alpha/steps it takes."""
    cls = THREATS.get(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    given = {"eps": eps, "alpha": alpha, "steps": steps}
    return cls(cls.Config(**{k: v for k, v in given.items() if k in fields}))


def attacked_model(net: nn.Module, params: Params) -> FastWeightClassifier:
    """A task model on detached copies of ``params``: the attacker needs input gradients only."""
    return FastWeightClassifier(net, {k: v.detach() for k, v in params.items()}, {})


def logits(net: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    return functional_call(net, params, (x,))


class ADML(Baseline):
    """ADML: MAML with clean/adversarial crossed inner and outer losses (Yin et al. 2018).

    Network ``backbone -> Linear(D, W)`` as MAML. Per episode and meta-update: 2 adaptations
    and 2 attacks (the attack costs ``attack_steps`` forward/backward passes each; FGSM one).
    """

    name = "adml"
    paper = "Yin et al. 2018, Adversarial Meta-Learning"
    Config = ADMLConfig
    backbone_defaults = {"bn_stats": "batch"}
    adapt = MAML.adapt  # test-time adaptation is MAML's (reads self.net and self.config)

    def __init__(self, config: ADMLConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.net = nn.Sequential(backbone, nn.Linear(backbone.out_features, n_way)).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.meta_lr)
        self.attack = training_attack(config.attack, config.attack_eps, config.attack_alpha, config.attack_steps)
        self.updates = 0  # seeds the training attacks' random starts

    def inner(self, params: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
        cfg = self.config
        return inner_loop(self.net, params, {}, x, y, cfg.inner_steps, cfg.inner_lr, not cfg.first_order)

    def episode_loss(self, episode: Episode, index: int) -> torch.Tensor:
        """``L(theta_adv; clean queries) + L(theta_clean; adversarial queries)`` (Algorithm 1)."""
        e, seed = episode, derive_seed(self.updates, index)
        theta = named_params(self.net)
        fast_clean = self.inner(theta, e.support_x, e.support_y)
        support_adv = self.attack.perturb(attacked_model(self.net, theta), e.support_x, e.support_y, e.way,
                                          derive_seed(seed, "support"))
        query_adv = self.attack.perturb(attacked_model(self.net, fast_clean), e.query_x, e.query_y, e.way,
                                        derive_seed(seed, "query"))
        self.net.train()  # building a task model put the shared network in eval mode
        fast_adv = self.inner(theta, support_adv, e.support_y)
        return (F.cross_entropy(logits(self.net, fast_adv, e.query_x), e.query_y)
                + F.cross_entropy(logits(self.net, fast_clean, query_adv), e.query_y))

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.net.train()
        loss = episode_mean([self.episode_loss(e, i) for i, e in enumerate(episodes)])
        self.updates += 1
        return minimise(loss, self.optimizer)
