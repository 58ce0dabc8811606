"""Noise corruptions of Hendrycks & Dietterich 2019: per-pixel, so nothing is rescaled.

Each maps float ``(N, C, H, W)`` in [0, 1], a severity 1..5 and int64 seeds ``(N,)`` to an
unclamped ``(N, C, H, W)``; image ``i`` depends only on its pixels and ``seeds[i]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bench.threats.corruptions import random_fields as rf


def gaussian_noise(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Additive white Gaussian noise, std 0.08-0.38 (Hendrycks & Dietterich 2019).

    Args:
        x: float ``(N, C, H, W)`` in [0, 1].
        severity: 1..5.
        seeds: int64 ``(N,)``.

    Returns:
        ``(N, C, H, W)``, clamped by :func:`corrupt`.
    """
    std = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    return x + std * rf.normal(seeds, tuple(x.shape[1:]), "gaussian_noise").to(x)


def shot_noise(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Poisson photon noise ``Poisson(c x) / c``, c = 60..3 (Hendrycks & Dietterich 2019).

    Exact Poisson by table inversion on the 8-bit levels of ``x`` (ImageNet-C's input is
    8-bit). Shapes as :func:`gaussian_noise`.
    """
    rate = (60, 25, 12, 5, 3)[severity - 1]
    return (rf.poisson_8bit(x, rate, seeds, "shot_noise") / rate).to(x)


def impulse_noise(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Salt-and-pepper noise on a fraction 0.03-0.27 of the values, half 0 and half 1.

    As skimage's ``random_noise(mode="s&p")`` used by Hendrycks & Dietterich 2019: every
    channel value independently. Shapes as :func:`gaussian_noise`.
    """
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    u = rf.uniform(seeds, tuple(x.shape[1:]), "impulse_noise").to(x)
    out = torch.where(u < amount / 2, torch.zeros_like(x), x)
    return torch.where((u >= amount / 2) & (u < amount), torch.ones_like(x), out)


def speckle_noise(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Multiplicative noise ``x + x n``, n ~ N(0, 0.15..0.6) (Hendrycks & Dietterich 2019)."""
    std = (0.15, 0.2, 0.35, 0.45, 0.6)[severity - 1]
    return x + x * (std * rf.normal(seeds, tuple(x.shape[1:]), "speckle_noise").to(x))
