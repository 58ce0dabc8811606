"""The 19 ImageNet-C corruptions as batched, per-image-seeded tensor functions.

Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations" (ICLR): 15 benchmark corruptions plus 4 held-out ones (speckle noise,
gaussian blur, spatter, saturate), severities 1-5. Every function maps a float batch
``(N, C, H, W)`` in ``[0, 1]`` (C = 1 or 3) to the same shape, whole batch at once on the
images' device; image ``i``'s result depends only on its pixels, ``seeds[i]`` and the severity.
Spatial parameters are rescaled to the image size by :func:`scale_length`; the rule and every
deviation from the published code are in ``docs/corruptions.md``. Linear, image-independent
filters (Gaussian blur, zoom, pixelation) are applied as ``M_h @ x @ M_w.T`` with the boundary
rule folded into the matrices: exact, any kernel size, and batch-size independent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.errors import BenchError
from bench.threats import random_fields as rf
from bench.threats.jpeg import jpeg_roundtrip

REFERENCE_SIZE = 224
SIZE_EXPONENT = 0.75
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as cv2.COLOR_RGB2GRAY


class CorruptionError(BenchError, ValueError):
    """An unknown corruption name, a severity outside 1..5 or a malformed batch."""


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


def _side(x: Tensor) -> int:
    return min(x.shape[-2:])


# ----------------------------------------------------------------- linear filter matrices


def _border_index(n: int, before: int, after: int, mode: str) -> Tensor:
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
def _filter_matrix(n: int, taps: tuple[float, ...], mode: str) -> Tensor:
    """``(n, n)`` matrix of a centred 1-D correlation with border ``mode`` folded in."""
    r = len(taps) // 2
    src = _border_index(n, r, r, mode)
    rows = torch.arange(n).repeat_interleave(len(taps))
    cols = src.unfold(0, len(taps), 1).reshape(-1)
    vals = torch.tensor(taps, dtype=torch.float64).repeat(n)
    return torch.zeros(n, n, dtype=torch.float64).index_put_((rows, cols), vals, accumulate=True)


def _sampled_gaussian(sigma: float, radius: int) -> Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


@lru_cache(maxsize=256)
def _gaussian_taps(sigma: float, truncate: float = 4.0) -> tuple[float, ...]:
    """scipy/skimage's sampled Gaussian (radius ``int(truncate sigma + 0.5)``, at least 1).

    Deviation, below sigma ~ 0.7 px only: sampling loses the variance (at 0.25 px the kernel
    is the identity), so a rescaled sub-pixel sigma would do nothing. There the sampled
    width is raised, by bisection, until the kernel's variance is ``sigma**2``.
    """
    radius = max(int(truncate * sigma + 0.5), 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2
    target = sigma * sigma
    if (_sampled_gaussian(sigma, radius) * offsets).sum() >= 0.99 * target:
        return tuple(_sampled_gaussian(sigma, radius).tolist())
    low, high = sigma, sigma + 2.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if (_sampled_gaussian(mid, radius) * offsets).sum() < target else (low, mid)
    return tuple(_sampled_gaussian((low + high) / 2, radius).tolist())


def _gaussian_gain(sigma: float, truncate: float) -> float:
    """Std of a 2-D Gaussian-filtered unit white-noise field (interior): ``sum(g**2)``."""
    return sum(t * t for t in _gaussian_taps(sigma, truncate))


def _separable(x: Tensor, mat_h: Tensor, mat_w: Tensor) -> Tensor:
    """``mat_h @ x @ mat_w.T`` over the last two dims of ``x``."""
    return mat_h.to(x) @ x @ mat_w.to(x).transpose(0, 1)


def gaussian_filter(x: Tensor, sigma: float, mode: str = "replicate", truncate: float = 4.0) -> Tensor:
    """Gaussian blur of ``(..., H, W)`` as skimage.filters.gaussian (default mode "nearest")."""
    if sigma <= 0:
        return x
    taps = _gaussian_taps(sigma, truncate)
    h, w = x.shape[-2:]
    return _separable(x, _filter_matrix(h, taps, mode), _filter_matrix(w, taps, mode))


@lru_cache(maxsize=256)
def _zoom_matrix(n: int, zoom: float) -> Tensor:
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
def _box_resize_matrix(n_in: int, n_out: int) -> Tensor:
    """PIL's ``Image.resize(..., BOX)`` along one axis: ``(n_out, n_in)``."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (torch.arange(n_out, dtype=torch.float64).unsqueeze(1) + 0.5) * scale
    pos = (torch.arange(n_in, dtype=torch.float64).unsqueeze(0) + 0.5 - centre) / support
    mat = ((pos > -0.5) & (pos <= 0.5)).to(torch.float64)
    return mat / mat.sum(dim=1, keepdim=True)


# ------------------------------------------------------------------------ sampling helpers


def _pixel_grid(h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column coordinates ``(H, W)`` in pixels."""
    ys = torch.arange(h, dtype=like.dtype, device=like.device)
    xs = torch.arange(w, dtype=like.dtype, device=like.device)
    return ys.unsqueeze(1).expand(h, w), xs.unsqueeze(0).expand(h, w)


def _sample(x: Tensor, rows: Tensor, cols: Tensor, padding: str) -> Tensor:
    """Bilinear sample ``x (N, C, H, W)`` at pixel coordinates ``rows, cols (N, H', W')``."""
    h, w = x.shape[-2:]
    grid = torch.stack([2 * cols / max(w - 1, 1) - 1, 2 * rows / max(h - 1, 1) - 1], dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode=padding, align_corners=True)


def _motion(x: Tensor, radius: float, sigma: float, angle: Tensor) -> Tensor:
    """ImageMagick-style one-sided motion blur along ``angle`` (radians, ``(N,)``).

    Taps ``i = 0 .. 2 ceil(radius)`` (cut at 4 sigma) weighted ``exp(-i^2 / 2 sigma^2)``; each
    tap is a sub-pixel shift (bilinear, edge pixels repeated) where ImageMagick rounds to
    whole pixels. (A per-image FFT convolution gives the same result but was slower.)
    """
    taps = max(1, min(2 * math.ceil(radius) + 1, math.ceil(4 * sigma) + 1))
    weights = [math.exp(-0.5 * (i / max(sigma, 1e-6)) ** 2) for i in range(taps)]
    total = sum(weights)
    rows, cols = _pixel_grid(x.shape[-2], x.shape[-1], x)
    dy, dx = torch.sin(angle).to(x)[:, None, None], torch.cos(angle).to(x)[:, None, None]
    out = x * (weights[0] / total)
    for i in range(1, taps):
        out = out + _sample(x, rows + i * dy, cols + i * dx, "border") * (weights[i] / total)
    return out


def _luma(x: Tensor) -> Tensor:
    """``(N, 1, H, W)`` gray level: the image itself if C = 1, else ITU-R 601 luma."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _colour(x: Tensor, rgb: tuple[float, float, float]) -> Tensor:
    """A constant colour ``(1, C, 1, 1)`` for ``x``: RGB, or its luma when C = 1."""
    c = torch.tensor(rgb, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return _luma(c) if x.shape[1] == 1 else c


# ------------------------------------------------------------------------------- noise


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


# -------------------------------------------------------------------------------- blur


def gaussian_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Gaussian blur, sigma 1..6 px at 224 px, rescaled (Hendrycks & Dietterich 2019).

    Border "nearest" as skimage's default. Deterministic: ``seeds`` is unused.
    """
    sigma = (1, 2, 3, 4, 6)[severity - 1]
    return gaussian_filter(x, scale_length(sigma, _side(x)))


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


def _convolve(x: Tensor, kernel: Tensor, mode: str) -> Tensor:
    """Correlate every channel of ``(N, C, H, W)`` with one odd-sized 2-D ``kernel``.

    The kernel is split by SVD into separable rank-one terms, each applied as two border-
    folded filter matrices: exact, and unlike ``conv2d`` (whose algorithm changes with the
    batch size) bit-identical for an image alone or inside any batch.
    """
    h, w = x.shape[-2:]
    u, sv, vh = torch.linalg.svd(kernel.to(torch.float64))
    out = torch.zeros_like(x)
    for i in range(int((sv > sv[0] * 1e-9).sum())):
        rows = _filter_matrix(h, tuple((u[:, i] * sv[i]).tolist()), mode)
        out = out + _separable(x, rows, _filter_matrix(w, tuple(vh[i].tolist()), mode))
    return out


def defocus_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Defocus: convolution with a disk, radius 3..10 px at 224 px, rescaled.

    Hendrycks & Dietterich 2019; border REFLECT_101 as cv2.filter2D. ``seeds`` unused.
    """
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    side = _side(x)
    kernel = _disk_kernel(scale_length(radius, side), scale_length(alias, side))
    return _convolve(x, kernel, "reflect")


def glass_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Frosted glass: Gaussian blur, local pixel shuffling, Gaussian blur again.

    Hendrycks & Dietterich 2019, with (sigma, max displacement, iterations) =
    (0.7, 1, 2) .. (1.5, 4, 2) at 224 px, lengths rescaled. Deviation: each round every pixel
    copies a random neighbour within the displacement (a parallel gather) instead of the
    published sequential swaps; a rescaled displacement d < 1 moves a fraction d of the
    pixels by one. Shapes as :func:`gaussian_noise`.
    """
    sigma, delta, rounds = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[severity - 1]
    n, c, h, w = x.shape
    side = _side(x)
    reach = scale_length(delta, side)
    step, moving = max(1, round(reach)), min(1.0, reach)
    x = gaussian_filter(x, scale_length(sigma, side))
    rows, cols = _pixel_grid(h, w, seeds)
    for i in range(rounds):
        d = rf.randint(seeds, (2, h, w), -step, step, f"glass_blur/shift{i}")
        d = d * (rf.uniform(seeds, (1, h, w), f"glass_blur/move{i}") < moving).to(d.device)
        src = (rows + d[:, 0]).clamp(0, h - 1) * w + (cols + d[:, 1]).clamp(0, w - 1)
        x = x.reshape(n, c, h * w).gather(2, src.reshape(n, 1, h * w).expand(n, c, h * w)).reshape(n, c, h, w)
    return gaussian_filter(x, scale_length(sigma, side))


def motion_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Motion blur at a random angle in [-45, 45] degrees (Hendrycks & Dietterich 2019).

    ImageMagick ``motion_blur(radius, sigma)`` with (10, 3) .. (20, 15) at 224 px, both
    rescaled; see :func:`_motion` for the kernel.
    """
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
    side = _side(x)
    angle = (rf.uniform(seeds, (1,), "motion_blur/angle")[:, 0] * 90.0 - 45.0) * (math.pi / 180)
    return _motion(x, scale_length(radius, side), scale_length(sigma, side), angle.to(seeds.device))


def _zoom(x: Tensor, zoom: float) -> Tensor:
    """Bilinear centre zoom of ``(..., H, W)`` by ``zoom >= 1``."""
    return _separable(x, _zoom_matrix(x.shape[-2], zoom), _zoom_matrix(x.shape[-1], zoom))


def zoom_blur(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Average of centre zooms 1 .. 1.11-1.31 (Hendrycks & Dietterich 2019).

    Zoom factors are relative to the image and are not rescaled. ``seeds`` unused.
    """
    stop, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[severity - 1]
    # numpy.arange's length rule, so severity 1 has 12 zooms (1.11 included) as published.
    zooms = [1 + i * step for i in range(math.ceil((stop - 1) / step))]
    out = x.clone()
    for z in zooms:
        out = out + _zoom(x, z)
    return out / (len(zooms) + 1)


# ----------------------------------------------------------------------------- weather


def snow(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Falling snow: thresholded, zoomed, motion-blurred noise added twice (Hendrycks 2019).

    Flake size (ImageNet-C's zoom, 2-4.5 px) is a length with identity 1 px; the streak's
    radius and sigma are rescaled; the image is pulled towards ``1.5 gray + 0.5`` as
    published. Streak angle uniform in [-135, -45] degrees per image.
    """
    loc, scale, zoom, threshold, radius, sigma, blend = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))[severity - 1]
    h, w = x.shape[-2:]
    side = _side(x)
    layer = loc + scale * rf.normal(seeds, (1, h, w), "snow/layer").to(x)
    layer = _zoom(layer, scale_length(zoom, side, identity=1.0))
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    angle = (rf.uniform(seeds, (1,), "snow/angle")[:, 0] * 90.0 - 135.0) * (math.pi / 180)
    layer = _motion(layer, scale_length(radius, side), scale_length(sigma, side), angle)
    x = blend * x + (1 - blend) * torch.maximum(x, _luma(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-1, -2)


def frost(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Frost on the lens: ``a x + b frost`` with (a, b) = (1, 0.4) .. (0.6, 0.75).

    Hendrycks & Dietterich 2019 crop one of six frost photographs; we synthesise a frost
    texture per image instead (:func:`random_fields.frost_texture`), tinted ice-blue, with
    its crystal size rescaled like every other length.
    """
    keep, amount = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[severity - 1]
    texture = rf.frost_texture(seeds, (x.shape[-2], x.shape[-1]), size_factor(_side(x))).to(x)
    return keep * x + amount * texture[:, None] * _colour(x, (0.86, 0.93, 1.0))


def fog(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Fog: add a fractal haze, then rescale by ``max / (max + a)`` (Hendrycks 2019).

    The published diamond-square map (256 px, cropped to 224) is replaced by a spectral
    field with the same per-octave decay, on a grid 256/224 times the image (the haze is
    relative to the image, so it is not rescaled otherwise).
    """
    amount, decay = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[severity - 1]
    h, w = x.shape[-2:]
    grid = (math.ceil(h * 256 / 224), math.ceil(w * 256 / 224))
    haze = rf.power_law_field(seeds, grid, 1 + 2 * math.log2(decay), "fog")
    haze = haze[:, None, :h, :w].to(x)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + amount * haze) * peak / (peak + amount)


def _water_shade(liquid: Tensor) -> Tensor:
    """Drop brightness in [0, 1]: the liquid layer, brighter on its lit (embossed) side.

    Deviation: ImageNet-C shades drops with an embossed, histogram-equalised distance to
    their Canny edges; we emboss the drops' own height (the thresholded liquid layer).
    """
    emboss = torch.tensor([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=liquid.dtype, device=liquid.device)
    relief = _convolve(liquid, emboss, "replicate").clamp_min(0)
    shade = liquid * (0.5 + relief / relief.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6))
    return shade / shade.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


def spatter(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Water (severities 1-3) or mud (4-5) splashed on the lens (Hendrycks 2019).

    A smoothed Gaussian liquid layer is thresholded into drops; water adds pale turquoise
    where the drops are, mud replaces the image by brown where the blurred drops exceed 0.8.
    Thresholds of sub-pixel-smoothed noise do not rescale (mud would cover half of a 32 px
    image), so the layer is drawn at ``side / size_factor`` px with the published
    parameters unchanged and area-averaged down to the image: same coverage, smaller drops.
    """
    loc, scale, sigma, threshold, intensity, mud = (
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))[severity - 1]
    h, w = x.shape[-2:]
    f = size_factor(_side(x))
    big_h, big_w = max(h, round(h / f)), max(w, round(w / f))
    liquid = loc + scale * gaussian_filter(rf.normal(seeds, (1, big_h, big_w), "spatter").to(x), sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        layer = gaussian_filter((liquid > threshold).to(x), intensity)
        layer = torch.where(layer < 0.8, torch.zeros_like(layer), layer)
    else:
        layer = _water_shade(liquid) * intensity
    layer = _separable(layer, _box_resize_matrix(big_h, h), _box_resize_matrix(big_w, w))
    if mud:
        return x * (1 - layer) + layer * _colour(x, (63 / 255, 42 / 255, 20 / 255))
    return x + layer * _colour(x, (175 / 255, 238 / 255, 238 / 255))


# ----------------------------------------------------------------------------- digital


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
    return _luma(out) if x.shape[1] == 1 else out


def _inverse_affine(seeds: Tensor, h: int, w: int, jitter: float) -> Tensor:
    """ImageNet-C's random affine, as the map from output to source pixels ``(N, 2, 3)``.

    Three points around the centre move by U(-jitter, jitter); the map takes the moved
    points back to the originals (cv2.warpAffine samples the source at ``M^-1 p``).
    """
    cx, cy, sq = w // 2, h // 2, min(h, w) // 3
    src = torch.tensor([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]],
                       dtype=torch.float64, device=seeds.device)
    moved = src + (rf.uniform(seeds, (3, 2), "elastic/affine").to(src) * 2 - 1) * jitter
    ones = torch.ones(moved.shape[0], 1, 3, dtype=src.dtype, device=src.device)
    rows = torch.cat([moved.transpose(1, 2), ones], dim=1)  # (N, 3, 3), columns are points
    r0, r1, r2 = rows[:, 0], rows[:, 1], rows[:, 2]
    # 3x3 inverse by cross products: elementwise, so identical for any batch.
    cof = torch.stack([torch.linalg.cross(r1, r2), torch.linalg.cross(r2, r0), torch.linalg.cross(r0, r1)], 2)
    det = (r0 * cof[:, :, 0]).sum(dim=1).view(-1, 1, 1)
    return src.T.unsqueeze(0) @ (cof / det)


def elastic_transform(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """Random affine plus a smooth random displacement field (Hendrycks & Dietterich 2019).

    Published (alpha, sigma, affine jitter) = 244 x (2, 0.7, 0.1) .. (0.12, 0.01, 0.02) at
    224 px. The jitter moves control points a third of the side from the centre, so it is
    relative to the image and scales with the side; sigma is a length, and alpha is set so
    that the displacement's std scales like a length (the smoothed noise's std depends on
    sigma). Deviation: the affine warp and the displacement are one bilinear sampling.
    """
    alpha, sigma, jitter = ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02),
                            (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))[severity - 1]
    n, _, h, w = x.shape
    f = size_factor(_side(x))
    small = 244 * sigma * f
    gain = 244 * alpha * f * _gaussian_gain(244 * sigma, 3.0) / _gaussian_gain(small, 3.0)
    noise = rf.uniform(seeds, (2, h, w), "elastic/field").to(x) * 2 - 1
    d = gaussian_filter(noise, small, "symmetric", truncate=3.0) * gain
    rows, cols = _pixel_grid(h, w, x)
    qy, qx = rows + d[:, 0], cols + d[:, 1]
    a = _inverse_affine(seeds, h, w, 244 * jitter * _side(x) / REFERENCE_SIZE).to(x)
    sx = a[:, 0, 0, None, None] * qx + a[:, 0, 1, None, None] * qy + a[:, 0, 2, None, None]
    sy = a[:, 1, 0, None, None] * qx + a[:, 1, 1, None, None] * qy + a[:, 1, 2, None, None]
    return _sample(x, sy, sx, "reflection")


def pixelate(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """PIL BOX downscale by 0.6-0.25 and BOX upscale back (Hendrycks & Dietterich 2019).

    The block size ``1 / factor`` is a length whose identity is 1 px, so at 32 px the
    factors become 0.87-0.59. ``seeds`` unused.
    """
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    block = scale_length(1 / factor, _side(x), identity=1.0)
    h, w = x.shape[-2:]
    mh, mw = max(1, int(h / block)), max(1, int(w / block))
    mat_h = _box_resize_matrix(mh, h) @ _box_resize_matrix(h, mh)
    mat_w = _box_resize_matrix(mw, w) @ _box_resize_matrix(w, mw)
    return _separable(x, mat_h, mat_w)


def jpeg_compression(x: Tensor, severity: int, seeds: Tensor) -> Tensor:
    """JPEG round trip at quality 25, 18, 15, 10, 7 (Hendrycks & Dietterich 2019).

    Batched torch codec (:mod:`bench.threats.jpeg`); C = 1 is encoded as grayscale JPEG.
    JPEG's 8x8 block is fixed, so nothing is rescaled. ``seeds`` unused.
    """
    return jpeg_roundtrip(x, (25, 18, 15, 10, 7)[severity - 1])


CORRUPTIONS: dict[str, Callable[[Tensor, int, Tensor], Tensor]] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur,
    "zoom_blur": zoom_blur, "snow": snow, "frost": frost, "fog": fog, "brightness": brightness,
    "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    # The four held-out corruptions of the paper.
    "speckle_noise": speckle_noise, "gaussian_blur": gaussian_blur, "spatter": spatter,
    "saturate": saturate,
}
BENCHMARK_CORRUPTIONS = tuple(list(CORRUPTIONS)[:15])
EXTRA_CORRUPTIONS = tuple(list(CORRUPTIONS)[15:])


def corrupt(images: Tensor, name: str, severity: int, seeds: Tensor) -> Tensor:
    """Apply one ImageNet-C corruption to a batch, one seed per image.

    Args:
        images: float ``(N, C, H, W)`` in [0, 1], C in {1, 3}, any device.
        name: one of ``CORRUPTIONS``.
        severity: 1 (mild) .. 5 (severe).
        seeds: int64 ``(N,)``; image ``i``'s corruption depends only on its pixels,
            ``seeds[i]`` and ``severity``, never on the rest of the batch.

    Returns:
        float ``(N, C, H, W)`` in [0, 1], same device and dtype as ``images``.

    Raises:
        CorruptionError (a ValueError): unknown name, bad severity, or malformed input.
    """
    if name not in CORRUPTIONS:
        raise CorruptionError(f"unknown corruption {name!r}. Allowed: {', '.join(sorted(CORRUPTIONS))}.")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise CorruptionError(f"corruption severity must be an integer 1..5, got {severity!r}.")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or not images.is_floating_point():
        raise CorruptionError(f"images must be float (N, C, H, W) with C in {{1, 3}}, got "
                              f"{images.dtype} {tuple(images.shape)}.")
    seeds = torch.as_tensor(seeds, dtype=torch.int64, device=images.device).reshape(-1)
    if seeds.shape[0] != images.shape[0]:
        raise CorruptionError(f"need one seed per image: {seeds.shape[0]} seeds for "
                              f"{images.shape[0]} images.")
    # float64 stays float64; half/bfloat16 are computed in float32 (CPU kernels lack them).
    work = images.to(torch.float64 if images.dtype == torch.float64 else torch.float32)
    out = CORRUPTIONS[name](work, severity, seeds)
    return out.clamp(0.0, 1.0).to(images.dtype)
