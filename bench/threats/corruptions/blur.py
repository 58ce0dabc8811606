"""Blur corruptions of Hendrycks & Dietterich 2019, lengths rescaled by :func:`scale_length`.

Each maps float ``(N, C, H, W)`` in [0, 1], a severity 1..5 and int64 seeds ``(N,)`` to an
unclamped ``(N, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.threats.corruptions import random_fields as rf
from bench.threats.corruptions._ops import (
    REFERENCE_SIZE,
    convolve,
    gaussian_filter,
    motion,
    pixel_grid,
    scale_length,
    side,
    zoom,
)


def gaussian_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Gaussian blur, sigma 1..6 px at 224 px, rescaled (Hendrycks & Dietterich 2019).

    Border "nearest" as skimage's default. Deterministic: ``seeds`` is unused.
    """
    sigma = (1, 2, 3, 4, 6)[severity - 1]
    return gaussian_filter(x, scale_length(sigma, side(x)))


def _disk_kernel(radius: float, alias_sigma: float) -> Tensor:
    """Area-weighted disk (8x8 supersampled), then ImageNet-C's 3x3 Gaussian anti-alias.

    The published disk thresholds integer offsets, which is empty below radius 1 and so
    cannot be rescaled to small images; pixel coverage is its continuous version.
    """
    half = math.ceil(radius + 0.5)
    sub = (torch.arange(8, dtype=torch.float64) + 0.5) / 8 - 0.5
    pos = (torch.arange(-half, half + 1, dtype=torch.float64).unsqueeze(1) + sub).reshape(-1)
    inside = (pos.unsqueeze(1) ** 2 + pos.unsqueeze(0) ** 2 <= radius**2).to(torch.float64)
    k = inside.reshape(2 * half + 1, 8, 2 * half + 1, 8).mean(dim=(1, 3))
    g = torch.exp(-0.5 * (torch.arange(-1.0, 2.0, dtype=torch.float64) / max(alias_sigma, 1e-6)) ** 2)
    g = (g / g.sum()).reshape(1, 1, 3, 1)
    k = F.conv2d(F.conv2d(k[None, None], g, padding=(1, 0)), g.transpose(2, 3), padding=(0, 1))[0, 0]
    return k / k.sum()


def defocus_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Defocus: convolution with a disk, radius 3..10 px at 224 px, rescaled.

    Hendrycks & Dietterich 2019; border REFLECT_101 as cv2.filter2D. ``seeds`` unused.
    """
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    size = side(x)
    kernel = _disk_kernel(scale_length(radius, size), scale_length(alias, size))
    return convolve(x, kernel, "reflect")


# Per-axis std (px, at 224) of where severity 1..5's published swaps take a pixel's content
# from, after all of its iterations. Measured by running the published loop on an index image:
# each swap sends a pixel towards squares visited later, which swap it again, so pixels travel
# further than randint(-d, d) steps (mean distance 2.08, 2.16, 3.90, 4.43, 5.73 px); these give
# a rounded Gaussian the same mean distance, except severity 3 (3.11 by that rule), whose three
# sweeps do more damage than that: 3.5 is calibrated on the reference's damage (-10% -> -5%).
_SHUFFLE_STD = (1.66, 1.72, 3.5, 3.54, 4.57)


def glass_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Frosted glass: Gaussian blur, local pixel shuffling, Gaussian blur again.

    Hendrycks & Dietterich 2019, with blur sigma 0.7, 0.9, 1, 1.1, 1.5 px at 224 px, rescaled.
    Deviation: the published sequential swaps (max displacement 1, 2, 2, 3, 4 px, iterations
    2, 1, 3, 2, 2) are replaced by one parallel gather in which every pixel copies the pixel at
    a rounded Gaussian offset whose spread matches theirs (``_SHUFFLE_STD``, rescaled: at 32 px
    most offsets round to 0). Shapes as :func:`.noise.gaussian_noise`.
    """
    sigma = (0.7, 0.9, 1, 1.1, 1.5)[severity - 1]
    n, c, h, w = x.shape
    size = side(x)
    # The published code stores the first blur as uint8 (truncating): darker by half a level on
    # average, which is part of its damage.
    x = torch.floor(gaussian_filter(x, scale_length(sigma, size)) * 255) / 255
    offset = rf.normal(seeds, (2, h, w), "glass_blur/shift") * scale_length(_SHUFFLE_STD[severity - 1], size)
    d = torch.round(offset).to(torch.int64)
    rows, cols = pixel_grid(h, w, seeds)
    src = (rows + d[:, 0]).clamp(0, h - 1) * w + (cols + d[:, 1]).clamp(0, w - 1)
    x = x.reshape(n, c, h * w).gather(2, src.reshape(n, 1, h * w).expand(n, c, h * w)).reshape(n, c, h, w)
    return gaussian_filter(x, scale_length(sigma, size))


def motion_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Motion blur at a random angle in [-45, 45] degrees (Hendrycks & Dietterich 2019).

    ImageMagick ``motion_blur(radius, sigma)`` with (10, 3) .. (20, 15) at 224 px, both
    rescaled; see :func:`_motion` for the kernel.
    """
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
    size = side(x)
    angle = (rf.uniform(seeds, (1,), "motion_blur/angle")[:, 0] * 90.0 - 45.0) * (math.pi / 180)
    whole_pixels = size >= REFERENCE_SIZE  # as published; sub-pixel taps keep rescaled streaks continuous
    return motion(x, scale_length(radius, size), scale_length(sigma, size), angle.to(seeds.device), whole_pixels)


def zoom_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Average of centre zooms 1 .. 1.11-1.31 (Hendrycks & Dietterich 2019).

    Zoom factors are relative to the image and are not rescaled. ``seeds`` unused.
    """
    stop, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[severity - 1]
    # numpy.arange's length rule, so severity 1 has 12 zooms (1.11 included) as published.
    zooms = [1 + i * step for i in range(math.ceil((stop - 1) / step))]
    out = x.clone()
    for z in zooms:
        out = out + zoom(x, z)
    return out / (len(zooms) + 1)
