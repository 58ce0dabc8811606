"""What the adversarially meta-trained MAML variants (ADML, R-MAML) share.

Both keep MAML's network ``backbone -> Linear(D, W)``, MAML's test-time adaptation and Adam
on the meta-parameters, and attack images during meta-training with the SAME code that
evaluates query attacks (`bench.threats.attacks.QueryAttack.perturb`). They differ only in
the per-episode meta-loss (`AdversarialMAML.episode_loss`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from baselines._common import Params, episode_mean, linear_head_net, minimise
from baselines.maml import FastWeightClassifier, maml_adapt
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.threats.attacks import training_attack


def attacked_model(net: nn.Module, params: Params) -> FastWeightClassifier:
    """A task model on detached copies of ``params``: the attacker needs input gradients only."""
    return FastWeightClassifier(net, {k: v.detach() for k, v in params.items()}, {})


def logits(net: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    """``net`` with fast weights ``params`` on ``x``: logits ``(N, W)``."""
    return functional_call(net, params, (x,))


class AdversarialMAML(Baseline):
    """MAML's network, optimiser and test-time adaptation, with a training attack.

    The config must carry MAML's fields (``inner_lr``, ``inner_steps``, ``test_inner_steps``,
    ``meta_lr``, ``first_order``) and ``attack``, ``attack_eps``, ``attack_alpha``,
    ``attack_steps``. ``updates`` counts meta-updates; it seeds the attacks' random starts.
    """

    backbone_defaults = {"bn_stats": "batch"}
    counters = ("updates",)  # seeds the training attacks: part of the resumable state

    def __init__(self, config: Any, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.net = linear_head_net(backbone, n_way, device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.meta_lr)
        self.attack = training_attack(config.attack, config.attack_eps, config.attack_alpha, config.attack_steps)
        self.updates = 0

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        """MAML's test-time adaptation (`maml_adapt`), on the clean support set."""
        return maml_adapt(self.net, self.config.inner_lr, self.config.test_inner_steps, support_x, support_y)

    @abstractmethod
    def episode_loss(self, episode: Episode, index: int) -> torch.Tensor:
        """The meta-loss of the ``index``-th episode of the current meta-batch (a scalar)."""

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.net.train()
        loss = episode_mean([self.episode_loss(e, i) for i, e in enumerate(episodes)])
        self.updates += 1
        return minimise(loss, self.optimizer)
