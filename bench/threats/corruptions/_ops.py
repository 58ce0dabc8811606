"""Shared parts of the corruptions: the rescaling rule and exact, batch-independent linear filters.

Hendrycks & Dietterich 2019 publish their parameters in pixels of a 224 px image; every spatial
length goes through :func:`scale_length` (docs/corruptions.md states the rule and its target).
Linear, image-independent filters (Gaussian blur, zoom, box resampling, small 2-D kernels) are
applied as ``M_h @ x @ M_w.T`` on ``(..., H, W)`` with the border rule folded into the matrices:
exact, any kernel size, and bit-identical for an image alone or inside any batch (``conv2d``
changes its algorithm with the batch size, so it is avoided).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.errors import BenchError

REFERENCE_SIZE = 224
SIZE_EXPONENT = 0.75
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as cv2.COLOR_RGB2GRAY


class CorruptionError(BenchError, ValueError):
    """An unknown corruption name or option, a severity outside 1..5 or a malformed batch."""


def size_factor(size: int) -> float:
    """``(size / 224) ** 0.75``: how much a 224 px ImageNet-C length shrinks at ``size`` px.

    Lengths shrink more slowly than the image so that pixel-scale corruptions (blur sigmas,
    displacements, texture grain) stay visible on 28-84 px images instead of falling below a
    pixel; the exponent 0.75 matches the CIFAR-10-C parameters Hendrycks chose for 32 px
    (their lengths are 0.1-0.5, median about 0.23, of the ImageNet-C ones; 0.232 here).
    """
    return (size / REFERENCE_SIZE) ** SIZE_EXPONENT


def scale_length(length: float, size: int, identity: float = 0.0) -> float:
    """Rescale a length from 224 px to ``size`` px: its excess over ``identity`` scales.

    ``identity`` is the value at which the corruption does nothing (0 for a blur sigma, 1 px
    for a pixelation block), so ``identity + (length - identity) * size_factor(size)``.
    """
    return identity + (float(length) - identity) * size_factor(size)


def side(x: Tensor) -> int:
    """The shorter side of ``(..., H, W)``: the size the rescaling rule is applied to."""
    return min(x.shape[-2:])


def border_index(n: int, before: int, after: int, mode: str) -> Tensor:
    """Source index of every padded position ``-before .. n + after - 1`` under ``mode``.

    ``replicate`` (skimage "nearest"), ``reflect`` (cv2 REFLECT_101: d c b | a b c d) and
    ``symmetric`` (scipy/skimage "reflect": c b a | a b c); any pad width, even > n.
    """
    i = torch.arange(-before, n + after)
    if mode == "replicate" or n == 1:
        return i.clamp(0, n - 1)
    if mode == "reflect":
        i = i.remainder(2 * (n - 1))
        return torch.where(i >= n, 2 * (n - 1) - i, i)
    i = i.remainder(2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


@lru_cache(maxsize=256)
def filter_matrix(n: int, taps: tuple[float, ...], mode: str) -> Tensor:
    """``(n, n)`` matrix of a centred 1-D correlation with border ``mode`` folded in."""
    r = len(taps) // 2
    src = border_index(n, r, r, mode)
    rows = torch.arange(n).repeat_interleave(len(taps))
    cols = src.unfold(0, len(taps), 1).reshape(-1)
    vals = torch.tensor(taps, dtype=torch.float64).repeat(n)
    return torch.zeros(n, n, dtype=torch.float64).index_put_((rows, cols), vals, accumulate=True)


def sampled_gaussian(sigma: float, radius: int) -> Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


@lru_cache(maxsize=256)
def gaussian_taps(sigma: float, truncate: float = 4.0) -> tuple[float, ...]:
    """scipy/skimage's sampled Gaussian (radius ``int(truncate sigma + 0.5)``, at least 1).

    Deviation, below sigma ~ 0.7 px only: sampling loses the variance (at 0.25 px the kernel
    is the identity), so a rescaled sub-pixel sigma would do nothing. There the sampled
    width is raised, by bisection, until the kernel's variance is ``sigma**2``.
    """
    radius = max(int(truncate * sigma + 0.5), 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2
    target = sigma * sigma
    if (sampled_gaussian(sigma, radius) * offsets).sum() >= 0.99 * target:
        return tuple(sampled_gaussian(sigma, radius).tolist())
    low, high = sigma, sigma + 2.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if (sampled_gaussian(mid, radius) * offsets).sum() < target else (low, mid)
    return tuple(sampled_gaussian((low + high) / 2, radius).tolist())


def gaussian_gain(sigma: float, truncate: float) -> float:
    """Std of a 2-D Gaussian-filtered unit white-noise field (interior): ``sum(g**2)``."""
    return sum(t * t for t in gaussian_taps(sigma, truncate))


def separable(x: Tensor, mat_h: Tensor, mat_w: Tensor) -> Tensor:
    """``mat_h @ x @ mat_w.T`` over the last two dims of ``x``."""
    return mat_h.to(x) @ x @ mat_w.to(x).transpose(0, 1)


def gaussian_filter(x: Tensor, sigma: float, mode: str = "replicate", truncate: float = 4.0) -> Tensor:
    """Gaussian blur of ``(..., H, W)`` as skimage.filters.gaussian (default mode "nearest")."""
    if sigma <= 0:
        return x
    taps = gaussian_taps(sigma, truncate)
    h, w = x.shape[-2:]
    return separable(x, filter_matrix(h, taps, mode), filter_matrix(w, taps, mode))


@lru_cache(maxsize=256)
def zoom_matrix(n: int, zoom: float) -> Tensor:
    """``(n, n)`` bilinear zoom by ``zoom >= 1`` about the centre (ImageNet-C's ``clipped_zoom``).

    The published code crops ``ceil(n / zoom)`` pixels and rescales them with
    scipy.ndimage.zoom, which can shift the result by up to half a pixel; this zooms exactly
    about the centre.
    """
    c = (n - 1) / 2
    src = (c + (torch.arange(n, dtype=torch.float64) - c) / zoom).clamp(0, n - 1)
    lo = src.floor().long()
    rows = torch.arange(n)
    mat = torch.zeros(n, n, dtype=torch.float64)
    mat.index_put_((rows, lo), 1 - (src - lo), accumulate=True)
    return mat.index_put_((rows, (lo + 1).clamp(max=n - 1)), src - lo, accumulate=True)


@lru_cache(maxsize=256)
def cropped_zoom_matrix(n: int, zoom: float) -> Tensor:
    """``(n, n)`` bilinear zoom with imagecorruptions 1.1.2's ``clipped_zoom`` geometry.

    There ``ceil(n / zoom)`` central pixels are rescaled by scipy.ndimage.zoom (order 1, corner
    pixels aligned: output ``i`` samples input ``i (crop - 1) / (out - 1)``, out = round(crop
    zoom)) and the first ``n`` outputs kept. Its sampling phase drifts across the image, which
    sets how much of a zoomed noise layer survives snow's threshold.
    """
    crop = math.ceil(n / zoom)
    top, out = (n - crop) // 2, max(round(crop * zoom), 2)
    src = (top + torch.arange(n, dtype=torch.float64) * (crop - 1) / (out - 1)).clamp(0, n - 1)
    lo = src.floor().long()
    rows = torch.arange(n)
    mat = torch.zeros(n, n, dtype=torch.float64)
    mat.index_put_((rows, lo), 1 - (src - lo), accumulate=True)
    return mat.index_put_((rows, (lo + 1).clamp(max=n - 1)), src - lo, accumulate=True)


def zoom(x: Tensor, factor: float) -> Tensor:
    """Bilinear centre zoom of ``(..., H, W)`` by ``factor >= 1``."""
    return separable(x, zoom_matrix(x.shape[-2], factor), zoom_matrix(x.shape[-1], factor))


@lru_cache(maxsize=256)
def box_resize_matrix(n_in: int, n_out: int) -> Tensor:
    """PIL's ``Image.resize(..., BOX)`` along one axis: ``(n_out, n_in)``."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (torch.arange(n_out, dtype=torch.float64).unsqueeze(1) + 0.5) * scale
    pos = (torch.arange(n_in, dtype=torch.float64).unsqueeze(0) + 0.5 - centre) / support
    mat = ((pos > -0.5) & (pos <= 0.5)).to(torch.float64)
    return mat / mat.sum(dim=1, keepdim=True)


def pixel_grid(h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column coordinates ``(H, W)`` in pixels."""
    ys = torch.arange(h, dtype=like.dtype, device=like.device)
    xs = torch.arange(w, dtype=like.dtype, device=like.device)
    return ys.unsqueeze(1).expand(h, w), xs.unsqueeze(0).expand(h, w)


def sample(x: Tensor, rows: Tensor, cols: Tensor, padding: str) -> Tensor:
    """Bilinear sample ``x (N, C, H, W)`` at pixel coordinates ``rows, cols (N, H', W')``."""
    h, w = x.shape[-2:]
    grid = torch.stack([2 * cols / max(w - 1, 1) - 1, 2 * rows / max(h - 1, 1) - 1], dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode=padding, align_corners=True)


def motion(x: Tensor, radius: float, sigma: float, angle: Tensor, whole_pixels: bool = False) -> Tensor:
    """ImageMagick-style one-sided motion blur along ``angle`` (radians, ``(N,)``).

    Taps ``i = 0 .. 2 ceil(radius)`` (cut at 4 sigma) weighted ``exp(-i^2 / 2 sigma^2)``. With
    ``whole_pixels`` each tap's offset is rounded to whole pixels, as ImageMagick and
    imagecorruptions do (used at 224 px and above); otherwise it is a sub-pixel shift, so that
    rescaled streaks stay continuous. Bilinear sampling, edge pixels repeated.
    """
    taps = max(1, min(2 * math.ceil(radius) + 1, math.ceil(4 * sigma) + 1))
    weights = [math.exp(-0.5 * (i / max(sigma, 1e-6)) ** 2) for i in range(taps)]
    total = sum(weights)
    rows, cols = pixel_grid(x.shape[-2], x.shape[-1], x)
    dy, dx = torch.sin(angle).to(x)[:, None, None], torch.cos(angle).to(x)[:, None, None]
    out = x * (weights[0] / total)
    for i in range(1, taps):
        oy, ox = (torch.round(i * dy), torch.round(i * dx)) if whole_pixels else (i * dy, i * dx)
        out = out + sample(x, rows + oy, cols + ox, "border") * (weights[i] / total)
    return out


def luma(x: Tensor) -> Tensor:
    """``(N, 1, H, W)`` gray level: the image itself if C = 1, else ITU-R 601 luma."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def colour(x: Tensor, rgb: tuple[float, float, float]) -> Tensor:
    """A constant colour ``(1, C, 1, 1)`` for ``x``: RGB, or its luma when C = 1."""
    c = torch.tensor(rgb, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return luma(c) if x.shape[1] == 1 else c


def convolve(x: Tensor, kernel: Tensor, mode: str) -> Tensor:
    """Correlate every channel of ``(N, C, H, W)`` with one odd-sized 2-D ``kernel``.

    The kernel is split by SVD into separable rank-one terms, each applied as two border-
    folded filter matrices: exact, and bit-identical for any batch (unlike ``conv2d``).
    """
    h, w = x.shape[-2:]
    u, sv, vh = torch.linalg.svd(kernel.to(torch.float64))
    out = torch.zeros_like(x)
    for i in range(int((sv > sv[0] * 1e-9).sum())):
        rows = filter_matrix(h, tuple((u[:, i] * sv[i]).tolist()), mode)
        out = out + separable(x, rows, filter_matrix(w, tuple(vh[i].tolist()), mode))
    return out
