"""Digital corruptions of Hendrycks & Dietterich 2019: colour, contrast, pixelation, JPEG.

Each maps float ``(N, C, H, W)`` in [0, 1], a severity 1..5 and int64 seeds ``(N,)`` (unused:
these are deterministic) to an unclamped ``(N, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bench.threats.corruptions._ops import box_resize_matrix, luma, scale_length, separable, side
from bench.threats.corruptions.jpeg import jpeg_roundtrip


def brightness(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Raise HSV value by 0.1-0.5, clipped (Hendrycks & Dietterich 2019).

    With hue and saturation fixed RGB is proportional to V, so no HSV round trip is needed;
    black (V = 0, S = 0 in skimage) becomes gray. C = 1: ``x + shift``. ``seeds`` unused.
    """
    shift = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + shift).clamp(max=1.0)
    return torch.where(v > 0, x * (v_new / v.clamp_min(1e-12)), v_new.expand_as(x))


def contrast(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Shrink towards each channel's mean by 0.4-0.05 (Hendrycks 2019). ``seeds`` unused."""
    factor = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * factor + mean


def saturate(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Scale HSV saturation, ``S' = clip(a S + b)``, (0.3, 0) .. (20, 0.2) (Hendrycks 2019).

    With H and V fixed, ``rgb' = V - (V - rgb) S'/S``. Gray pixels (S = 0) have hue 0 in
    skimage, so ``b > 0`` tints them red, as published. C = 1 images are gray everywhere:
    they go through RGB and back to luma, so severities 1-3 are the identity and 4-5 darken
    by 7% and 14%. ``seeds`` unused.
    """
    factor, offset = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))[severity - 1]
    rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    v, low = rgb.amax(dim=1, keepdim=True), rgb.amin(dim=1, keepdim=True)
    s = torch.where(v > 0, (v - low) / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * factor + offset).clamp(0, 1)
    scaled = v - (v - rgb) * (s_new / s.clamp_min(1e-12))
    red = torch.tensor([0.0, 1.0, 1.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    out = torch.where(s > 0, scaled, v * (1 - s_new * red))
    return luma(out) if x.shape[1] == 1 else out


def pixelate(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """PIL BOX downscale by 0.6-0.25 and BOX upscale back (Hendrycks & Dietterich 2019).

    The block size ``1 / factor`` is a length whose identity is 1 px, so at 32 px the
    factors become 0.87-0.59. ``seeds`` unused.
    """
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    block = scale_length(1 / factor, side(x), identity=1.0)
    h, w = x.shape[-2:]
    mh, mw = max(1, int(h / block)), max(1, int(w / block))
    mat_h = box_resize_matrix(mh, h) @ box_resize_matrix(h, mh)
    mat_w = box_resize_matrix(mw, w) @ box_resize_matrix(w, mw)
    return separable(x, mat_h, mat_w)


def jpeg_compression(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """JPEG round trip at quality 25, 18, 15, 10, 7 (Hendrycks & Dietterich 2019).

    Batched torch codec (:mod:`bench.threats.corruptions.jpeg`); C = 1 is encoded as grayscale JPEG.
    JPEG's 8x8 block is fixed, so nothing is rescaled. ``seeds`` unused.
    """
    return jpeg_roundtrip(x, (25, 18, 15, 10, 7)[severity - 1])
