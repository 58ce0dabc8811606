"""Spatter (Hendrycks & Dietterich 2019): water (severities 1-3) or mud (4-5) on the lens.

A Gaussian liquid layer, smoothed and thresholded into drops. Water adds pale turquoise where
the drops are, shaded as published: brightness grows with the distance to the drops' edges
(truncated at 20 px, histogram-equalised, embossed). Mud replaces the image by brown where the
blurred drops exceed 0.8. Shapes: float ``(N, C, H, W)`` in [0, 1] and int64 seeds ``(N,)`` in,
unclamped ``(N, C, H, W)`` out.

Rescaling (water): the smoothing sigma and the 20 px truncation are lengths
(:func:`scale_length`); the smoothed layer is renormalised to its 224 px standard deviation, so
that the published thresholds cut the same fraction of it (drop coverage) at every size. Mud is
drawn on a finer grid and area-averaged (:func:`_mud`).
The published OpenCV pipeline (Canny, distanceTransform DIST_L2 with its 5x5 mask, blur,
equalizeHist, emboss) is re-implemented in batched torch; given the same liquid layer, the
water's mean brightness matches OpenCV's within 1% (benchmarks/corruption_reference.py).
Deviation: Canny's hysteresis is two growth steps instead of a full flood fill.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.threats.corruptions import random_fields as rf
from bench.threats.corruptions._ops import (
    REFERENCE_SIZE,
    box_resize_matrix,
    colour,
    convolve,
    filter_matrix,
    gaussian_filter,
    gaussian_gain,
    scale_length,
    separable,
    side,
    size_factor,
)

_EMBOSS = ((-2.0, -1.0, 0.0), (-1.0, 1.0, 1.0), (0.0, 1.0, 2.0))
_TRUNCATE = 20.0  # px at 224: where the published distance map is cut


def _box3(x: Tensor, size: int) -> Tensor:
    """cv2.blur with a 3x3 box (border REFLECT_101) over the last two dims, at 224 px.

    Below 224 px it is a 3 px-at-224 blur rescaled like every length: a Gaussian with the box's
    variance (2/3 px^2) and sigma times ``size_factor``.
    """
    if size >= REFERENCE_SIZE:
        taps = (1 / 3, 1 / 3, 1 / 3)
        return separable(x, filter_matrix(x.shape[-2], taps, "reflect"), filter_matrix(x.shape[-1], taps, "reflect"))
    return gaussian_filter(x, (2 / 3) ** 0.5 * size_factor(size), "reflect")


def _shifted(x: Tensor, dy: int, dx: int, fill: float) -> Tensor:
    """``x[..., i + dy, j + dx]`` over ``(..., H, W)``, ``fill`` outside (|dy|, |dx| <= 2)."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (2, 2, 2, 2), value=fill)
    return padded[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]


def _canny(layer: Tensor, low: float = 50.0, high: float = 150.0) -> Tensor:
    """cv2.Canny(layer, 50, 150) of 8-bit levels ``(N, 1, H, W)``: a bool edge map.

    OpenCV's steps: 3x3 Sobel (border replicated), L1 magnitude, non-maximum suppression along
    the gradient quantised to 0/45/90/135 degrees with its tie rule (strictly above the previous
    neighbour and at least the next; strictly above both on diagonals), then hysteresis, here
    two 8-neighbour growth steps from the strong edges (weak ones are rare: the layer jumps
    from 0 to >= 165 at drop edges). On the reference's layers it gives the same edge map.
    """
    p = F.pad(layer, (1, 1, 1, 1), mode="replicate")
    col = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    row = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    gx, gy = col[..., 2:] - col[..., :-2], row[..., 2:, :] - row[..., :-2, :]
    mag = gx.abs() + gy.abs()
    ax, ay = gx.abs(), gy.abs()
    tan22 = 13573 / 32768  # OpenCV's fixed-point tan(22.5 deg)
    flat, steep = ay < ax * tan22, ay > ax * (tan22 + 2)
    s = torch.where(gx * gy < 0, -1, 1)
    diag_prev = torch.where(s > 0, _shifted(mag, -1, -1, 0.0), _shifted(mag, -1, 1, 0.0))
    diag_next = torch.where(s > 0, _shifted(mag, 1, 1, 0.0), _shifted(mag, 1, -1, 0.0))
    prev = torch.where(flat, _shifted(mag, 0, -1, 0.0), torch.where(steep, _shifted(mag, -1, 0, 0.0), diag_prev))
    nxt = torch.where(flat, _shifted(mag, 0, 1, 0.0), torch.where(steep, _shifted(mag, 1, 0, 0.0), diag_next))
    diagonal = ~flat & ~steep
    candidate = (mag > low) & (mag > prev) & torch.where(diagonal, mag > nxt, mag >= nxt)
    edges = candidate & (mag > high)
    for _ in range(2):
        grown = F.max_pool2d(edges.to(layer.dtype), 3, stride=1, padding=1) > 0
        edges = edges | (candidate & grown)
    return edges


def _edge_distance(edges: Tensor, limit: float) -> Tensor:
    """Chamfer distance ``(N, 1, H, W)`` in px to the nearest edge pixel, capped at ``limit``.

    OpenCV's 5x5 mask for DIST_L2 (steps 1, 1.4 and 2.1969); relaxation
    ``d = min(d, d[neighbour] + step)``, ``ceil(limit)`` rounds, which reach every distance
    below the cap.
    """
    dist = torch.where(edges, 0.0, limit).to(torch.float32)
    steps = {(0, 1): 1.0, (1, 1): 1.4, (1, 2): 2.1969}  # keyed by (min, max) of |dy|, |dx|
    moves = [(dy, dx, steps[(min(abs(dy), abs(dx)), max(abs(dy), abs(dx)))]) for dy in range(-2, 3)
             for dx in range(-2, 3) if (min(abs(dy), abs(dx)), max(abs(dy), abs(dx))) in steps]
    for _ in range(math.ceil(limit)):
        dist = torch.stack([dist] + [_shifted(dist, dy, dx, limit) + step for dy, dx, step in moves]).amin(dim=0)
    return dist


def _equalise(levels: Tensor, count: int) -> Tensor:
    """cv2.equalizeHist of integer ``levels`` in ``0 .. count - 1``, per image of ``(N, 1, H, W)``.

    ``lut[v] = round(255 (cdf(v) - cdf(v_min)) / (pixels - cdf(v_min)))`` as OpenCV; the counts
    are exact integer sums of comparisons, so the result is batch-independent.
    """
    n = levels.shape[0]
    flat = levels.reshape(n, -1)
    hist = (flat.unsqueeze(-1) == torch.arange(count, device=levels.device)).sum(dim=1)  # (N, count)
    cdf = hist.cumsum(dim=1)
    first = torch.where(hist > 0, cdf, cdf[:, -1:]).amin(dim=1, keepdim=True)  # count at the lowest level
    lut = torch.round(255 * (cdf - first) / (cdf[:, -1:] - first).clamp_min(1)).clamp(0, 255)
    return lut.to(torch.float32).gather(1, flat).reshape(levels.shape)


def _water(liquid: Tensor, size: int) -> Tensor:
    """Water brightness ``(N, 1, H, W)`` in [0, 1]: the 8-bit layer times its shaded edge distance."""
    layer = torch.floor(liquid.clamp(0, 1) * 255)
    limit = scale_length(_TRUNCATE, size)
    dist = _edge_distance(_canny(layer), limit) / size_factor(size)  # in 224 px units, <= 20
    dist = torch.floor(_box3(dist, size) + 1e-6).clamp(0, _TRUNCATE)
    shade = _equalise(dist.to(torch.int64), int(_TRUNCATE) + 1)
    # The emboss is the identity plus a diagonal derivative; the derivative is per 224 px pixel,
    # so below 224 px it is scaled by size_factor (else relief grows as pixels get coarser).
    identity = torch.zeros(3, 3, dtype=liquid.dtype, device=liquid.device)
    identity[1, 1] = 1.0
    emboss = identity + (torch.tensor(_EMBOSS, dtype=liquid.dtype, device=liquid.device) - identity) * size_factor(size)
    shade = _box3(torch.round(convolve(shade, emboss, "reflect")).clamp(0, 255), size)
    m = layer * shade
    return m / m.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


def _mud(seeds: Tensor, h: int, w: int, loc: float, scale: float, threshold: float, like: Tensor) -> Tensor:
    """Mud coverage ``(N, 1, H, W)`` in [0, 1], drawn at ``1 / size_factor`` times the image.

    The published mud keeps the drops (liquid sigma 1 px) where their 1.5 px blur exceeds 0.8,
    an erosion that needs drops of a few pixels: rescaled below a pixel it erodes nothing and
    mud covers 3-4x more of a 32 px image than of a 224 px one. So the mask is drawn with the
    published lengths on a grid ``side / size_factor`` px wide (138 px for 32 px; 224 px at
    224 px) and area-averaged down: the published coverage, smaller splashes.
    """
    f = size_factor(min(h, w))
    big_h, big_w = max(h, round(h / f)), max(w, round(w / f))
    liquid = loc + scale * gaussian_filter(rf.normal(seeds, (1, big_h, big_w), "spatter").to(like), 1.0)
    layer = gaussian_filter((liquid > threshold).to(like), 1.5)
    layer = torch.where(layer < 0.8, torch.zeros_like(layer), layer)
    return separable(layer, box_resize_matrix(big_h, h), box_resize_matrix(big_w, w))


def spatter(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Water (severities 1-3) or mud (4-5) splashed on the lens, as published at 224 px.

    Parameters (loc, scale, sigma, threshold, intensity, mud) of Hendrycks & Dietterich 2019
    (the mud's liquid sigma is 1 px and its blur 1.5 px, see :func:`_mud`); C = 1 gets the luma
    of the water and mud colours.
    """
    h, w = x.shape[-2:]
    if severity >= 4:
        loc, scale = (0.65, 0.3) if severity == 4 else (0.67, 0.4)
        layer = _mud(seeds, h, w, loc, scale, 0.65, x)
        return x * (1 - layer) + layer * colour(x, (63 / 255, 42 / 255, 20 / 255))
    loc, scale, sigma, threshold, intensity = (
        (0.65, 0.3, 4, 0.69, 0.6), (0.65, 0.3, 3, 0.68, 0.6), (0.65, 0.3, 2, 0.68, 0.5))[severity - 1]
    size = side(x)
    small = scale_length(sigma, size)
    noise = gaussian_filter(rf.normal(seeds, (1, h, w), "spatter").to(x), small)
    liquid = loc + scale * noise * (gaussian_gain(sigma, 4.0) / gaussian_gain(small, 4.0))
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    return x + _water(liquid, size) * intensity * colour(x, (175 / 255, 238 / 255, 238 / 255))
