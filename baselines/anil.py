"""ANIL: Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals, ICLR 2020, arXiv:1909.09157).

MAML whose inner loop adapts the head only: the backbone is frozen during task adaptation but
still meta-learned by the outer loop, through the features the adapted head is trained and
evaluated on. Raghu et al. show this matches MAML, because MAML's adaptation is mostly
feature reuse. Defaults are MAML's Omniglot settings, which the paper reuses: inner lr 0.4,
one inner step in training, three at test time, Adam meta lr 1e-3, second order, batch
statistics in batch norm. Deviations: none in the method.

Shapes: features ``(N, D)`` from the backbone, head ``Linear(D, W)``; the support and query
features are separate backbone passes (each its own batch-norm batch), as in MAML.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import Params, buffers_copy, fast_forward, linear_head_net, named_params, needs_graph, sgd_step
from baselines.maml import FastWeightClassifier
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import count

HEAD = "1."  # the head's parameter-name prefix in ``Sequential(backbone, head)``


@dataclass(frozen=True)
class ANILConfig:
    """Attributes:
        inner_lr: head SGD step size (paper, as MAML: 0.4 Omniglot, 0.01 miniImageNet).
        inner_steps: head SGD steps in meta-training (1 Omniglot, 5 miniImageNet).
        test_inner_steps: head SGD steps at evaluation (3 Omniglot, 10 miniImageNet).
        meta_lr: Adam learning rate of the meta-update (1e-3).
        first_order: drop the second-order terms of the meta-gradient.
    """

    inner_lr: float = 0.4
    inner_steps: int = count(1)
    test_inner_steps: int = count(3)
    meta_lr: float = 1e-3
    first_order: bool = False


def head_inner_loop(head: Params, features: torch.Tensor, labels: torch.Tensor, steps: int, lr: float,
                    create_graph: bool) -> Params:
    """SGD on the head only: ``features (N, D)`` are fixed inputs of ``Linear(D, W)``."""
    for _ in range(steps):
        logits = F.linear(features, head[HEAD + "weight"], head[HEAD + "bias"])
        head = sgd_step(head, F.cross_entropy(logits, labels), lr, create_graph)
    return head


def split_head(params: Params) -> tuple[Params, Params]:
    """``(backbone params, head params)`` of the ``Sequential(backbone, head)`` network."""
    head = {k: v for k, v in params.items() if k.startswith(HEAD)}
    return {k: v for k, v in params.items() if k not in head}, head


class ANIL(Baseline):
    """ANIL: MAML with the inner loop restricted to the linear head (Raghu et al. 2020).

    Meta-training minimises the query loss of the head adapted on the support features,
    averaged over the meta-batch, with Adam over backbone and head initialisation.
    """

    name = "anil"
    title = "ANIL"
    paper = "Raghu et al. 2020, Rapid Learning or Feature Reuse? Towards Understanding the Effectiveness of MAML"
    Config = ANILConfig
    backbone_defaults = {"bn_stats": "batch"}

    def __init__(self, config: ANILConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.net = linear_head_net(backbone, n_way, device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.meta_lr)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return fast_forward(self.net[0], {}, x)

    def episode_loss(self, episode: Episode) -> torch.Tensor:
        cfg = self.config
        _, head = split_head(named_params(self.net))
        fast = head_inner_loop(head, self.features(episode.support_x), episode.support_y, cfg.inner_steps,
                               cfg.inner_lr, create_graph=not cfg.first_order)
        logits = F.linear(self.features(episode.query_x), fast[HEAD + "weight"], fast[HEAD + "bias"])
        return F.cross_entropy(logits, episode.query_y)

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for episode in episodes:  # one task's graph at a time
            loss = self.episode_loss(episode) / len(episodes)
            loss.backward()
            total += loss.item()
        self.optimizer.step()
        return {"loss": total}

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.net.eval()
        graph = needs_graph(support_x)
        backbone, head = split_head({k: v.detach() for k, v in named_params(self.net).items()})
        head = {k: v.requires_grad_() for k, v in head.items()}
        with torch.set_grad_enabled(graph):
            features = self.features(support_x)
        with torch.enable_grad():
            fast = head_inner_loop(head, features, support_y, self.config.test_inner_steps, self.config.inner_lr,
                                   create_graph=graph)
        if not graph:
            fast = {k: v.detach() for k, v in fast.items()}
        return FastWeightClassifier(self.net, {**backbone, **fast}, buffers_copy(self.net))
