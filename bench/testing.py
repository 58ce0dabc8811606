"""Helpers shared by the tests and `benchmarks/` (so benchmarks never import test modules)."""

from __future__ import annotations

import torch

from bench.backbones import build_backbone
from bench.baseline import Baseline
from bench.registry import BASELINES
from bench.seeding import torch_rng


def make_baseline(name: str, seed: int = 0, way: int = 5, image_size: int = 28, channels: int = 1,
                  device: torch.device | None = None) -> Baseline:
    """A registered baseline with its default Config on a conv4 backbone, initialised from ``seed``."""
    cls = BASELINES.get(name)
    with torch_rng(seed):
        backbone = build_backbone("conv4", dict(cls.backbone_defaults), channels, image_size)
        return cls(cls.Config(), backbone, way, device or torch.device("cpu"))
