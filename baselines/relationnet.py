"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, CVPR 2018, arXiv:1711.06025).

An embedding module turns images into feature MAPS; each class is the sum of its support maps;
each (class, query) pair of maps is concatenated along channels and scored in [0, 1] by a
learned relation module (two conv blocks, two fully connected layers, sigmoid), trained by
regressing the scores to the one-hot labels with a mean squared error (eq. 1-3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import episode_mean, minimise
from baselines._metric import class_sums
from bench.backbones import BnStats, conv_block, cpu_layout
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.errors import BenchError
from bench.fields import count

UNPOOLED_STAGES = 2  # the paper's embedding pools in its first two blocks only


@dataclass(frozen=True)
class RelationNetConfig:
    """Attributes:
        lr: Adam learning rate (paper code: 1e-3).
        lr_halve_every: halve the learning rate every this many meta-updates (paper code: 100000).
        hidden: channels of the relation module's conv blocks (paper: 64).
        fc_hidden: units of its first fully connected layer (paper: 8).
    """

    lr: float = 1e-3
    lr_halve_every: int = count(100000)
    hidden: int = count(64)
    fc_hidden: int = count(8)


def feature_maps(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``backbone.blocks`` with the max-pools of the last two stages skipped.

    ``(N, C, S, S) -> (N, C_last, S // 4, S // 4)`` for the four-stage backbones (`Conv4`,
    `ResNet12`): 28 px -> 7 x 7 maps, 84 px -> 21 x 21.
    """
    stages = list(backbone.blocks)
    x = cpu_layout(x)
    for i, stage in enumerate(stages):
        keep_pool = i < len(stages) - UNPOOLED_STAGES
        for layer in stage:
            if keep_pool or not isinstance(layer, nn.MaxPool2d):
                x = layer(x)
    return x


def map_shape(backbone: nn.Module) -> tuple[int, int]:
    """``(channels, area after two more 2x2 pools)`` of `feature_maps` for ``backbone``.

    Two stride-2 floors compose into one floor, so the relation module's two pools bring the
    ``S // 4`` maps to ``S // 16``: the backbone's own final map, whose area is
    ``out_features / channels``. This sizes the fully connected layer without knowing ``S``.
    """
    if not isinstance(getattr(backbone, "blocks", None), nn.Sequential):
        raise BenchError(f"relationnet needs a backbone with a `blocks` nn.Sequential of stages (conv4, "
                         f"resnet12); {type(backbone).__name__} has none. Choose one of those backbones.")
    channels = [m.out_channels for m in backbone.modules() if isinstance(m, nn.Conv2d)][-1]
    return channels, backbone.out_features // channels


class RelationModule(nn.Module):
    """``g_phi``: concatenated pair maps ``(P, 2C, h, w)`` -> relation logits ``(P,)``.

    Two blocks of 3x3 conv (padding 1) + batch norm + ReLU + 2x2 max-pool, then
    ``Linear(hidden * area, fc_hidden)`` + ReLU and ``Linear(fc_hidden, 1)``. The sigmoid of the
    output is the paper's relation score in [0, 1] (`scores`); `forward` returns the
    pre-sigmoid value.
    """

    def __init__(self, in_channels: int, area: int, config: RelationNetConfig, bn_stats: BnStats) -> None:
        super().__init__()
        self.convs = nn.Sequential(conv_block(in_channels, config.hidden, bn_stats),
                                   conv_block(config.hidden, config.hidden, bn_stats))
        self.fc1 = nn.Linear(config.hidden * area, config.fc_hidden)
        self.fc2 = nn.Linear(config.fc_hidden, 1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(self.convs(cpu_layout(pairs)).flatten(1)))).squeeze(-1)

    def scores(self, pairs: torch.Tensor) -> torch.Tensor:
        """Relation scores in [0, 1], ``(P,)``."""
        return torch.sigmoid(self(pairs))


def relation_logits(module: RelationModule, classes: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Pre-sigmoid relations of every (query, class) pair: ``(W, C, h, w), (M, C, h, w) -> (M, W)``."""
    way, m = classes.shape[0], queries.shape[0]
    pairs = torch.cat([classes[None].expand(m, *classes.shape), queries[:, None].expand(m, way, *queries.shape[1:])],
                      dim=2)  # (M, W, 2C, h, w): C(f(x_i), f(x_j)) with the class map first
    return module(pairs.flatten(0, 1)).view(m, way)


class RelationClassifier(TaskModel):
    """Query ``(M, C, H, W)`` -> pre-sigmoid relation logits ``(M, way)``."""

    def __init__(self, backbone: nn.Module, relation: RelationModule, classes: torch.Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.relation = relation
        self.classes = classes
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relation_logits(self.relation, self.classes, feature_maps(self.backbone, x))


class RelationNet(Baseline):
    """Relation Networks: a learned (not fixed) metric between feature maps.

    Shapes: support ``(W * K, C, H, W)`` -> maps ``(W * K, C', h, w)`` -> class maps (sums over
    the K shots) ``(W, C', h, w)``; queries ``(M, C, H, W)`` -> pairs ``(M * W, 2C', h, w)`` ->
    relations ``(M, W)``. Loss: MSE of ``sigmoid(relations)`` against one-hot labels (eq. 3).

    Embedding: the registered backbone (``conv4`` or ``resnet12``) run by `feature_maps`, i.e.
    without the max-pools of its last two stages, which is the paper's embedding (pooling in
    the first two of four conv blocks) for ``conv4``: 28 px -> 64 x 7 x 7 maps.

    Deviations: the task model's logits are the relation module's pre-sigmoid outputs, which
    order the classes exactly as the paper's scores do but do not saturate, so gradient-based
    attacks see no sigmoid-masked gradients. Conv padding is 1 everywhere (the paper's Omniglot
    code pads only the last two embedding convs and uses padding 0 in the miniImageNet relation
    module), so 28 px maps are 7 x 7 rather than 5 x 5. Batch norm in the relation module uses the
    backbone's ``bn_stats`` and PyTorch's default momentum (the reference code sets momentum 1).
    """

    name = "relationnet"
    title = "RelationNet"
    paper = "Sung et al. 2018, Learning to Compare: Relation Network for Few-Shot Learning"
    Config = RelationNetConfig
    any_way = True  # relation scores against support class maps: any way

    def __init__(self, config: RelationNetConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        channels, area = map_shape(backbone)
        batch_stats = any(isinstance(m, nn.BatchNorm2d) and not m.track_running_stats for m in backbone.modules())
        bn_stats: BnStats = "batch" if batch_stats else "running"
        self.backbone = backbone.to(device)
        self.relation = RelationModule(2 * channels, area, config, bn_stats).to(device)
        self.optimizer = torch.optim.Adam([*self.backbone.parameters(), *self.relation.parameters()], lr=config.lr)
        self.schedule = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_halve_every, gamma=0.5)

    def episode_loss(self, episode: Episode) -> torch.Tensor:
        n_support = episode.support_x.shape[0]
        maps = feature_maps(self.backbone, torch.cat([episode.support_x, episode.query_x]))
        classes = class_sums(maps[:n_support], episode.support_y, episode.way)
        scores = torch.sigmoid(relation_logits(self.relation, classes, maps[n_support:]))
        return F.mse_loss(scores, F.one_hot(episode.query_y, episode.way).to(scores.dtype))

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.backbone.train()
        self.relation.train()
        return minimise(episode_mean([self.episode_loss(e) for e in episodes]), self.optimizer, self.schedule)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.backbone.eval()
        self.relation.eval()
        with torch.set_grad_enabled(support_x.requires_grad):
            classes = class_sums(feature_maps(self.backbone, support_x), support_y, self.n_way)
        return RelationClassifier(self.backbone, self.relation, classes)
