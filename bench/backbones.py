"""Feature extractors registered by name; all usable with fast weights (`functional_call`).

A backbone maps images ``(N, C, H, W)`` to features ``(N, out_features)``. It holds no
classifier: heads belong to the baselines. Batch-norm behaviour at test time is an explicit
option (``bn_stats``) because published MAML numbers used batch statistics (transductive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from bench.fields import count
from bench.registry import BACKBONES

BnStats = Literal["running", "batch"]


def cpu_layout(x: torch.Tensor) -> torch.Tensor:
    """Images ``(N, C, H, W)`` restrided channels-last when on the CPU, else ``x`` unchanged.

    oneDNN's channels-last convolutions run conv4 on 28 px glyphs 2.2x faster forward and 1.6x
    faster forward + backward than NCHW on one CPU thread (measured here, torch 2.14). ``.to``,
    not ``.contiguous``: a 1-channel NCHW tensor already counts as channels-last-contiguous, so
    ``.contiguous`` would keep its NCHW strides. Same values; the rounding differs from NCHW.
    """
    if x.device.type == "cpu" and x.dim() == 4 and not torch._C._functorch.is_batchedtensor(x):
        return x.to(memory_format=torch.channels_last)
    return x  # under `torch.vmap` the physical tensor is 5-D: no channels-last layout exists


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

    hidden: int = count(64)
    bn_stats: BnStats = "running"


class BatchNormModes:
    """The evaluation mode a backbone's batch norm gives its task models (issue 25's declared
    modes): with ``bn_stats: batch`` every query is normalised with its batch's statistics, so
    its prediction depends on the other queries (transductive, Bronskill et al. 2020)."""

    @classmethod
    def transductive(cls, config: Conv4Config | ResNet12Config) -> bool:
        return config.bn_stats == "batch"


@BACKBONES.register
class Conv4(BatchNormModes, nn.Module):
    """Four conv blocks (Vinyals et al. 2016; Snell et al. 2017; Finn et al. 2017).

    Shapes: ``(N, C, S, S)`` -> ``(N, hidden * (S // 16) ** 2)``; 28 px -> 64 features with
    64 filters, 84 px -> 1600 (64 filters) or 800 (32 filters).
    """

    name: ClassVar[str] = "conv4"
    Config = Conv4Config

    def __init__(self, config: Conv4Config, in_channels: int, image_size: int) -> None:
        super().__init__()
        h = config.hidden
        self.blocks = nn.Sequential(*(conv_block(c, h, config.bn_stats) for c in (in_channels, h, h, h)))
        self.out_features = h * max(image_size // 16, 1) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(cpu_layout(x)).flatten(1)



@dataclass(frozen=True)
class ResNet12Config:
    """Hyperparameters of `ResNet12`.

    Attributes:
        channels: output channels of the residual stages (Lee et al. 2019: 64, 160, 320, 640).
        negative_slope: slope of the LeakyReLU activations (Lee et al. 2019: 0.1).
        bn_stats: ``"running"`` (inductive) or ``"batch"`` (transductive), as for `Conv4`.
    """

    channels: tuple[int, ...] = count((64, 160, 320, 640))  # each >= 1
    negative_slope: float = 0.1
    bn_stats: BnStats = "running"

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive ints, got {self.channels}")


class ResidualBlock(nn.Module):
    """Three 3x3 conv + BN (+ LeakyReLU) with a 1x1 conv + BN shortcut (Lee et al. 2019, ResNet-12).

    Shapes: ``(N, C_in, S, S)`` -> ``(N, C_out, S, S)``; the 2x2 max-pool that follows each block
    is a separate module of the stage (see `ResNet12`).
    """

    def __init__(self, in_channels: int, out_channels: int, slope: float, bn_stats: BnStats) -> None:
        super().__init__()
        track = bn_stats == "running"
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels, track_running_stats=track)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, track_running_stats=track)
        self.conv3 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels, track_running_stats=track)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                      nn.BatchNorm2d(out_channels, track_running_stats=track))
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act(out + self.shortcut(x))


@BACKBONES.register
class ResNet12(BatchNormModes, nn.Module):
    """ResNet-12 of MetaOptNet (Lee et al., CVPR 2019, "Meta-Learning with Differentiable Convex
    Optimization"), the backbone of most post-2019 few-shot results.

    Four stages ``ResidualBlock -> MaxPool2d(2)`` with 64-160-320-640 channels; the final map is
    flattened, as in MetaOptNet (no global average pooling). Shapes: ``(N, C, S, S)`` ->
    ``(N, 640 * (S // 16) ** 2)``: 84 px -> 16000 features, 32 px -> 2560, 28 px -> 640.
    Like `Conv4`, ``blocks`` is an ``nn.Sequential`` of stages whose last module is the pool, so
    a method that needs feature maps (Relation Networks) can skip the last pools.

    Deviations: DropBlock (and the dropout MetaOptNet uses with it) is omitted, so there is no
    stochastic regulariser; weights use Kaiming-normal initialisation (fan-out, leaky ReLU) and
    batch-norm scale 1, bias 0, as the reference code does.
    """

    name: ClassVar[str] = "resnet12"
    Config = ResNet12Config

    def __init__(self, config: ResNet12Config, in_channels: int, image_size: int) -> None:
        super().__init__()
        widths = (in_channels, *config.channels)
        self.blocks = nn.Sequential(*(
            nn.Sequential(ResidualBlock(c_in, c_out, config.negative_slope, config.bn_stats), nn.MaxPool2d(2))
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)))
        self.out_features = config.channels[-1] * max(image_size // 2 ** len(config.channels), 1) ** 2
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu",
                                        a=config.negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(cpu_layout(x)).flatten(1)

def build_backbone(name: str, params: dict, in_channels: int, image_size: int) -> nn.Module:
    """Instantiate a registered backbone from its name and (already validated) params."""
    cls = BACKBONES.get(name)
    return cls(cls.Config(**params), in_channels, image_size)
