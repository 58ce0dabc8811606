"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017, arXiv:1703.03400).

Fast weights are plain tensors threaded through `torch.func.functional_call`; the meta-gradient
differentiates through the inner SGD steps (second order) unless ``first_order`` is set, which
drops the second-derivative terms (the paper's "first-order approximation", Sec. 5.2).
Defaults are the paper's Omniglot 5-way settings: inner lr 0.4, one inner step in training,
three at test time, Adam meta lr 1e-3, batch statistics in batch norm (transductive, as in the
reference code). Deviation: none in the method; the head is one linear layer on the backbone's
flattened features, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines._common import Params, buffers_copy, episode_mean, inner_loop, named_params, needs_graph
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode


@dataclass(frozen=True)
class MAMLConfig:
    """Attributes:
        inner_lr: step size of the task-adaptation SGD (paper: 0.4 Omniglot, 0.01 miniImageNet).
        inner_steps: inner SGD steps during meta-training (paper: 1 Omniglot, 5 miniImageNet).
        test_inner_steps: inner SGD steps at evaluation (paper: 3 Omniglot, 10 miniImageNet).
        meta_lr: Adam learning rate of the meta-update (paper: 1e-3).
        first_order: ignore second derivatives in the meta-gradient (FOMAML).
    """

    inner_lr: float = 0.4
    inner_steps: int = 1
    test_inner_steps: int = 3
    meta_lr: float = 1e-3
    first_order: bool = False


class FastWeightClassifier(TaskModel):
    """Query ``(N, C, H, W)`` -> logits ``(N, W)`` of ``net`` run with the adapted ``params``."""

    def __init__(self, net: nn.Module, params: Params, buffers: Params) -> None:
        super().__init__()
        self.net = net
        self.params = params
        self.buffers_ = buffers
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.net, {**self.params, **self.buffers_}, (x,))


class MAML(Baseline):
    """MAML: a shared initialisation adapted to each task by a few SGD steps.

    The network is ``backbone -> Linear(D, W)``. Meta-training minimises the query loss of the
    adapted weights (Finn et al. 2017, Algorithm 2) averaged over the meta-batch, with Adam.
    """

    name = "maml"
    paper = "Finn et al. 2017, Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks"
    Config = MAMLConfig
    backbone_defaults = {"bn_stats": "batch"}

    def __init__(self, config: MAMLConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.net = nn.Sequential(backbone, nn.Linear(backbone.out_features, n_way)).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.meta_lr)

    def episode_loss(self, episode: Episode) -> torch.Tensor:
        """Query loss after adapting on the support set (the MAML objective, eq. 3)."""
        cfg = self.config
        fast = inner_loop(self.net, named_params(self.net), {}, episode.support_x, episode.support_y,
                          cfg.inner_steps, cfg.inner_lr, create_graph=not cfg.first_order)
        return F.cross_entropy(functional_call(self.net, fast, (episode.query_x,)), episode.query_y)

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.net.train()
        loss = episode_mean([self.episode_loss(e) for e in episodes])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.net.eval()
        buffers = buffers_copy(self.net)
        params = {k: v.detach().requires_grad_() for k, v in named_params(self.net).items()}
        with torch.enable_grad():
            fast = inner_loop(self.net, params, buffers, support_x, support_y,
                              self.config.test_inner_steps, self.config.inner_lr,
                              create_graph=needs_graph(support_x))
        if not needs_graph(support_x):
            fast = {k: v.detach() for k, v in fast.items()}
        return FastWeightClassifier(self.net, fast, buffers)
