"""Feature extractors registered by name; all usable with fast weights (`functional_call`).

A backbone maps images ``(N, C, H, W)`` to features ``(N, out_features)``. It holds no
classifier: heads belong to the baselines. Batch-norm behaviour at test time is an explicit
option (``bn_stats``) because published MAML numbers used batch statistics (transductive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from bench.registry import BACKBONES

BnStats = Literal["running", "batch"]


def conv_block(in_channels: int, out_channels: int, bn_stats: BnStats, pool: bool = True) -> nn.Sequential:
    """3x3 conv -> batch norm -> ReLU -> 2x2 max-pool (Vinyals et al. 2016)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels, track_running_stats=bn_stats == "running"),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Conv4Config:
    """Hyperparameters of `Conv4`.

    Attributes:
        hidden: filters per layer; 64 (Snell et al. 2017; Finn et al. 2017 on Omniglot) or 32
            (Finn et al. 2017 on miniImageNet).
        bn_stats: ``"running"`` uses running statistics in eval mode (inductive);
            ``"batch"`` always normalises with the current batch's statistics, as MAML's
            reference code does (transductive at test time).
    """

    hidden: int = 64
    bn_stats: BnStats = "running"


@BACKBONES.register("conv4")
class Conv4(nn.Module):
    """Four conv blocks (Vinyals et al. 2016; Snell et al. 2017; Finn et al. 2017).

    Shapes: ``(N, C, S, S)`` -> ``(N, hidden * (S // 16) ** 2)``; 28 px -> 64 features with
    64 filters, 84 px -> 1600 (64 filters) or 800 (32 filters).
    """

    Config = Conv4Config

    def __init__(self, config: Conv4Config, in_channels: int, image_size: int) -> None:
        super().__init__()
        h = config.hidden
        self.blocks = nn.Sequential(*(conv_block(c, h, config.bn_stats) for c in (in_channels, h, h, h)))
        self.out_features = h * max(image_size // 16, 1) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x).flatten(1)


def build_backbone(name: str, params: dict, in_channels: int, image_size: int) -> nn.Module:
    """Instantiate a registered backbone from its name and (already validated) params."""
    cls = BACKBONES.get(name)
    return cls(cls.Config(**params), in_channels, image_size)
