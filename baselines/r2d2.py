"""R2-D2 (Bertinetto, Henriques, Torr & Vedaldi, ICLR 2019, "Meta-learning with differentiable
closed-form solvers", arXiv:1805.08136).

The base learner is ridge regression from support features to one-hot labels, solved in closed
form with the Woodbury identity (an ``N x N`` system for ``N`` support samples, eq. 6), so the
meta-learner back-propagates through the solver. A learned scale and bias (the "adjust" layer)
map the regression outputs to logits for the cross-entropy loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import episode_mean, minimise
from baselines._metric import ridge_woodbury, with_bias_column
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import count


@dataclass(frozen=True)
class R2D2Config:
    """Attributes:
        lr: Adam learning rate (reference code: 5e-3).
        lr_halve_every: halve the learning rate every this many meta-updates (reference: 2000).
        init_lambda: initial ridge penalty per support sample (reference code: 50).
        learn_lambda: meta-learn the penalty, parameterised by its logarithm.
        init_scale: initial scale of the adjust layer (reference code: 1e-4; its Omniglot
            scripts use 10).
    """

    lr: float = 5e-3
    lr_halve_every: int = count(2000)
    init_lambda: float = 50.0
    learn_lambda: bool = True
    init_scale: float = 1e-4

    def __post_init__(self) -> None:
        if self.init_lambda <= 0:
            raise ValueError(f"init_lambda must be > 0, got {self.init_lambda}")


class RidgeHead(nn.Module):
    """The closed-form base learner and the adjust layer; holds ``log_lambda``, ``scale``, ``bias``.

    Shapes: support features ``(N, D)``, one-hot targets ``(N, W)`` -> weights ``(D + 1, W)``
    (bias row last); queries ``(M, D)`` -> logits ``(M, W)``.
    """

    def __init__(self, config: R2D2Config) -> None:
        super().__init__()
        log_lambda = torch.tensor(math.log(config.init_lambda))
        self.log_lambda = nn.Parameter(log_lambda, requires_grad=config.learn_lambda)
        self.scale = nn.Parameter(torch.tensor(config.init_scale))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def solve(self, support: torch.Tensor, support_y: torch.Tensor, way: int) -> torch.Tensor:
        """Ridge weights ``(D + 1, W)`` for ``support (N, D)`` and labels ``(N,)``.

        The reference code divides features and targets by ``sqrt(N)``, which is ridge regression
        with penalty ``N * lambda``: lambda is a per-sample penalty, comparable across shots.
        """
        x = with_bias_column(support)
        y = F.one_hot(support_y, way).to(x.dtype)
        return ridge_woodbury(x, y, x.shape[0] * self.log_lambda.exp())

    def logits(self, queries: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``scale * [X_q, 1] W + bias`` (the adjust layer), ``(M, D) -> (M, W)``."""
        return self.scale * (with_bias_column(queries) @ weights) + self.bias


class RidgeClassifier(TaskModel):
    """Query ``(M, C, H, W)`` -> adjusted ridge-regression outputs ``(M, way)``."""

    def __init__(self, backbone: nn.Module, head: RidgeHead, weights: torch.Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.weights = weights
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.logits(self.backbone(x), self.weights)


class R2D2(Baseline):
    """R2-D2: ridge regression on backbone features as a differentiable base learner.

    ``W = X^T (X X^T + N lambda I)^-1 Y`` with ``X = [f(support), 1]`` ``(N, D + 1)`` and one-hot
    ``Y (N, W)``; logits ``alpha [f(query), 1] W + beta``. Meta-training minimises the query
    cross-entropy with Adam over the backbone, ``log lambda``, ``alpha`` and ``beta``.

    Deviations: the features are the backbone's output, not the paper's concatenation of the
    third and fourth conv blocks of its own 96-192-384-512 network (choose the backbone in the
    suite). Lambda is learned by default (the paper meta-learns it; the reference code's default
    configuration keeps it fixed at 50). The scalar bias ``beta`` is kept for fidelity, but it
    shifts every logit equally, so softmax ignores it and it receives no gradient. The paper's
    training-time way (16-way miniImageNet) is the suite's ``train.way``.
    """

    name = "r2d2"
    title = "R2-D2"
    paper = "Bertinetto et al. 2019, Meta-learning with differentiable closed-form solvers"
    Config = R2D2Config
    any_way = True  # the ridge head is solved from the support set: any way

    def __init__(self, config: R2D2Config, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.backbone = backbone.to(device)
        self.head = RidgeHead(config).to(device)
        params = [*self.backbone.parameters(), *(p for p in self.head.parameters() if p.requires_grad)]
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.schedule = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_halve_every, gamma=0.5)

    def episode_loss(self, episode: Episode) -> torch.Tensor:
        n_support = episode.support_x.shape[0]
        features = self.backbone(torch.cat([episode.support_x, episode.query_x]))
        weights = self.head.solve(features[:n_support], episode.support_y, episode.way)
        return F.cross_entropy(self.head.logits(features[n_support:], weights), episode.query_y)

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.backbone.train()
        return minimise(episode_mean([self.episode_loss(e) for e in episodes]), self.optimizer, self.schedule)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.backbone.eval()
        with torch.set_grad_enabled(support_x.requires_grad):
            weights = self.head.solve(self.backbone(support_x), support_y, self.n_way)
        return RidgeClassifier(self.backbone, self.head, weights)
