"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017, arXiv:1703.05175).

Each class is represented by the mean embedding of its support images (the prototype); a
query's logits are the negative squared Euclidean distances to the prototypes (eq. 1-2).
Deviations: none in the method. The paper trains Omniglot with 60-way episodes; here the
training way is the suite's ``way`` unless the suite sets ``train.way``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import class_means, episode_mean, minimise, squared_distances
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import count


@dataclass(frozen=True)
class ProtoNetConfig:
    """Attributes:
        lr: Adam learning rate (paper: 1e-3).
        lr_halve_every: halve the learning rate every this many meta-updates (paper: 2000).
    """

    lr: float = 1e-3
    lr_halve_every: int = count(2000)


class PrototypeClassifier(TaskModel):
    """Query ``(N, C, H, W)`` -> logits ``(N, W)``: minus squared distances to ``prototypes (W, D)``."""

    def __init__(self, backbone: nn.Module, prototypes: torch.Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.prototypes = prototypes
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -squared_distances(self.backbone(x), self.prototypes)


class ProtoNet(Baseline):
    """Prototypical Networks: nearest class mean in the backbone's embedding space.

    Training minimises the query cross-entropy of ``softmax(-||f(x) - c_k||^2)`` over the
    meta-batch with Adam. Shapes: support ``(W * K, C, H, W)`` -> prototypes ``(W, D)``.
    """

    name = "protonet"
    title = "ProtoNet"
    paper = "Snell et al. 2017, Prototypical Networks for Few-shot Learning"
    Config = ProtoNetConfig
    any_way = True  # prototypes are the support class means: any way

    def __init__(self, config: ProtoNetConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.backbone = backbone.to(device)
        self.optimizer = torch.optim.Adam(self.backbone.parameters(), lr=config.lr)
        self.schedule = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_halve_every, gamma=0.5)

    def episode_loss(self, episode: Episode) -> torch.Tensor:
        n_support = episode.support_x.shape[0]
        features = self.backbone(torch.cat([episode.support_x, episode.query_x]))
        way = int(episode.support_y.max()) + 1
        prototypes = class_means(features[:n_support], episode.support_y, way)
        logits = -squared_distances(features[n_support:], prototypes)
        return F.cross_entropy(logits, episode.query_y)

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.backbone.train()
        return minimise(episode_mean([self.episode_loss(e) for e in episodes]), self.optimizer, self.schedule)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        return prototype_classifier(self.backbone, support_x, support_y, self.n_way)


def prototype_classifier(backbone: nn.Module, support_x: torch.Tensor, support_y: torch.Tensor,
                         way: int) -> PrototypeClassifier:
    """The nearest-prototype task model of a support set ``(W * K, C, H, W)``, labels ``(W * K,)``;
    the backbone evaluated in eval mode (running statistics where it keeps them)."""
    backbone.eval()
    with torch.set_grad_enabled(support_x.requires_grad):
        prototypes = class_means(backbone(support_x), support_y, way)
    return PrototypeClassifier(backbone, prototypes)
