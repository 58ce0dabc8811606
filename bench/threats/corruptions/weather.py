"""Weather corruptions of Hendrycks & Dietterich 2019: snow, frost and fog.

Each maps float ``(N, C, H, W)`` in [0, 1], a severity 1..5 and int64 seeds ``(N,)`` to an
unclamped ``(N, C, H, W)``; image ``i`` depends only on its pixels and ``seeds[i]``. Spatter, the
fourth weather-like corruption, is in :mod:`.spatter`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bench.threats.corruptions import random_fields as rf
from bench.threats.corruptions._ops import (
    REFERENCE_SIZE,
    cropped_zoom_matrix,
    luma,
    motion,
    scale_length,
    separable,
    side,
)
from bench.threats.corruptions.frost import frost_texture


def snow(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Falling snow: thresholded, zoomed, motion-blurred noise added twice (Hendrycks 2019).

    Flake size (ImageNet-C's zoom, 2-4.5 px) is a length with identity 1 px; the streak's
    radius and sigma are rescaled; the image is pulled towards ``1.5 gray + 0.5`` as
    published. Streak angle uniform in [-135, -45] degrees per image.
    """
    loc, scale, factor, threshold, radius, sigma, blend = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))[severity - 1]
    h, w = x.shape[-2:]
    size = side(x)
    layer = loc + scale * rf.normal(seeds, (1, h, w), "snow/layer").to(x)
    factor = scale_length(factor, size, identity=1.0)
    layer = separable(layer, cropped_zoom_matrix(h, factor), cropped_zoom_matrix(w, factor))
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    angle = (rf.uniform(seeds, (1,), "snow/angle")[:, 0] * 90.0 - 135.0) * (math.pi / 180)
    layer = motion(layer, scale_length(radius, size), scale_length(sigma, size), angle, size >= REFERENCE_SIZE)
    x = blend * x + (1 - blend) * torch.maximum(x, luma(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-1, -2)


def frost(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Frost on the lens: ``a x + b frost`` with (a, b) = (1, 0.4) .. (0.6, 0.75).

    Hendrycks & Dietterich 2019 crop one of their frost photographs; we synthesise a texture
    calibrated to those photographs' statistics instead (:func:`.frost.frost_texture`).
    C = 1: the texture's luma, as imagecorruptions converts the photograph to gray.
    """
    keep, amount = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[severity - 1]
    texture = frost_texture(seeds, (x.shape[-2], x.shape[-1])).to(x)
    return keep * x + amount * (luma(texture) if x.shape[1] == 1 else texture)


# Amplitude spectrum f**-2 for the haze at every severity, and the published map's contrast
# (std of diamond-square's min-max scaled 256 px map over its 224 px crop, measured: 0.153,
# 0.167, 0.177, 0.182 for wibble decays 2, 1.7, 1.5, 1.4) per severity: see :func:`fog`.
FOG_EXPONENT = 2.0


def fog(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Fog: add a fractal haze, then rescale by ``max / (max + a)`` (Hendrycks 2019).

    The published diamond-square map (256 px, cropped to 224, min-max scaled) is replaced by a
    spectral field on a grid 256/224 times the image (the haze is relative to the image, so it
    is not rescaled otherwise), calibrated on the published map: the wibble decay ``d`` sets
    its contrast, not its spectral slope. A pure power law with ``d`` per octave would have
    the amplitude spectrum ``f**-(1 + log2 d)``, but diamond-square's interpolation smooths it;
    with ``FOG_EXPONENT`` = 2 and each image's haze scaled about its mean to the published
    map's measured std, damage is within 3% and SSIM within 0.02 of imagecorruptions' fog at
    every severity (the previous ``f**-(1 + 2 log2 d)``, unscaled, did 15% too much damage at
    severities 1-2).
    """
    # (amount, published wibble decay, the contrast measured for that decay)
    amount, decay, contrast = ((1.5, 2, 0.153), (2.0, 2, 0.153), (2.5, 1.7, 0.167), (2.5, 1.5, 0.177),
                               (3.0, 1.4, 0.182))[severity - 1]
    h, w = x.shape[-2:]
    grid = (math.ceil(h * 256 / 224), math.ceil(w * 256 / 224))
    haze = rf.power_law_field(seeds, grid, FOG_EXPONENT, "fog")[:, None, :h, :w].to(x)
    mean = haze.mean(dim=(2, 3), keepdim=True)
    std = haze.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    haze = (mean + (haze - mean) * (contrast / std)).clamp(0, 1)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + amount * haze) * peak / (peak + amount)
