"""Counter-based random numbers on tensors, keyed by one seed per image.

``torch.Generator`` draws one stream per call, so the noise an image receives would depend on
where it sits in the batch. Here every random number is a pure function of ``(seed_i, stream,
element index within the image)``: a keyed integer hash (two rounds of Chris Wellons'
``lowbias32`` mixer) evaluated on int32 tensors.

Overflow semantics: the hash is arithmetic modulo ``2**32``. int32 tensor multiplication and
addition wrap around in two's complement on every torch backend (vectorised ``mullo``), which
is exactly multiplication modulo ``2**32``; right shifts on int32 are arithmetic, so each
shift is masked to make it logical. :func:`_check_wraparound` verifies the wrap-around once
per device against an exact int64 computation and refuses to run if it does not hold, so
the bits are identical on every device. (int32, not int64: 64-bit multiplies are not
vectorised on x86 CPUs and made the hash 5x slower.)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from functools import cache

import torch
from torch import Tensor

_M32 = 0xFFFFFFFF
_INV24 = 1.0 / (1 << 24)
_C1, _C2 = 0x7FEB352D, 0x846CA68B  # lowbias32 multipliers


def _i32(value: int) -> int:
    """A 32-bit word as the signed int32 with the same bits."""
    value &= _M32
    return value - (1 << 32) if value >= 1 << 31 else value


def _mix32(x: Tensor) -> Tensor:
    """lowbias32: a bijection on 32-bit words (int32 ``x``, bits as unsigned), new tensor.

    In-place after the first op: allocating a fresh tensor per step doubled the CPU time.
    """
    x = x ^ (x >> 16).bitwise_and_(0xFFFF)
    x.mul_(_i32(_C1))
    x.bitwise_xor_((x >> 15).bitwise_and_(0x1FFFF))
    x.mul_(_i32(_C2))
    return x.bitwise_xor_((x >> 16).bitwise_and_(0xFFFF))


@cache
def _check_wraparound(device: str) -> None:
    """Refuse to hash on a backend whose int32 arithmetic does not wrap modulo 2**32."""
    words = [0, 1, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 0xFFFFFFFF, 123456789]
    exact = []
    for w in words:  # the same hash in Python integers
        w ^= w >> 16
        w = (w * _C1) & _M32
        w ^= w >> 15
        w = (w * _C2) & _M32
        exact.append(_i32(w ^ (w >> 16)))
    got = _mix32(torch.tensor([_i32(w) for w in words], dtype=torch.int32, device=device)).tolist()
    if got != exact:
        raise RuntimeError(f"int32 arithmetic on {device} does not wrap modulo 2**32; the per-image "
                           "corruption RNG cannot run there.")


def _keys(seeds: Tensor, stream: str) -> tuple[Tensor, Tensor]:
    """Two 32-bit keys per image from its int64 seed and a named stream.

    Returns:
        Two int32 tensors of shape ``(N, 1)``.
    """
    _check_wraparound(seeds.device.type)
    seeds = seeds.to(torch.int64).reshape(-1, 1)
    lo, hi = seeds & _M32, (seeds >> 32) & _M32
    # Re-centre to the int32 range in int64 first: casting out-of-range values is undefined.
    lo = torch.where(lo >= 1 << 31, lo - (1 << 32), lo).to(torch.int32)
    hi = torch.where(hi >= 1 << 31, hi - (1 << 32), hi).to(torch.int32)
    # crc32, not hash(): Python's str hash is salted per process.
    tag = _mix32(torch.full_like(lo, _i32(zlib.crc32(stream.encode()))))
    k1 = _mix32(lo ^ tag)
    k2 = _mix32(hi ^ _mix32(k1 ^ _i32(0x5BD1E995)))
    return k1, k2


def random_bits(seeds: Tensor, count: int, stream: str) -> Tensor:
    """32 random bits per element, a pure function of (seed, stream, index).

    Args:
        seeds: int64 ``(N,)``, one seed per image.
        count: elements per image (``< 2**31``).
        stream: purpose name; different names give independent streams.

    Returns:
        int32 ``(N, count)`` (the bits of an unsigned word), on ``seeds.device``.
    """
    k1, k2 = _keys(seeds, stream)
    idx = torch.arange(count, device=seeds.device, dtype=torch.int32).unsqueeze(0)
    # Two keyed rounds: with one, two images' streams could be permutations of each other.
    return _mix32(_mix32(idx ^ k1).add_(k2))


def uniform(seeds: Tensor, shape: tuple[int, ...], stream: str) -> Tensor:
    """Uniform floats in ``[0, 1)`` with 24 random bits (exact in float32).

    Returns:
        float32 ``(N, *shape)``.
    """
    bits = (random_bits(seeds, math.prod(shape), stream) >> 8) & 0xFFFFFF
    return (bits.to(torch.float32) * _INV24).reshape(-1, *shape)


def normal(seeds: Tensor, shape: tuple[int, ...], stream: str) -> Tensor:
    """Standard normal floats via Box-Muller on pairs of counter-based uniforms.

    Returns:
        float32 ``(N, *shape)``.
    """
    n = math.prod(shape)
    half = (n + 1) // 2
    u = uniform(seeds, (2 * half,), stream)
    # 1 - u lies in (0, 1], so the log is finite.
    radius = torch.sqrt(-2.0 * torch.log1p(-u[:, :half]))
    angle = (2.0 * math.pi) * u[:, half:]
    z = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return z[:, :n].reshape(-1, *shape)


def randint(seeds: Tensor, shape: tuple[int, ...], low: int, high: int, stream: str) -> Tensor:
    """Integers uniform in ``[low, high]`` (inclusive), int64 ``(N, *shape)``.

    Uses the top 24 bits times the range, so the bias is below ``(high - low + 1) / 2**24``.
    """
    bits = ((random_bits(seeds, math.prod(shape), stream) >> 8) & 0xFFFFFF).to(torch.int64)
    span = high - low + 1
    return (low + ((bits * span) >> 24)).reshape(-1, *shape)


# ----------------------------------------------------------------- derived distributions


def poisson_8bit(x: Tensor, rate: float, seeds: Tensor, stream: str) -> Tensor:
    """Poisson counts ``k ~ Poisson(rate * x)`` by exact inversion of per-level CDF tables.

    The image is treated as 8-bit (``round(255 x)``, as ImageNet-C's PIL input is), so the
    mean takes at most 256 values: one CDF row per level (float64, stored as float32, padded
    with +inf to a power of two), and a branch-free binary search within each element's row.
    Integer index arithmetic is int32 and select-free: int64 ops, ``torch.where`` and a
    global ``searchsorted`` were each several times slower on CPUs.

    Args:
        x: float ``(N, *shape)`` in [0, 1].
        rate: counts per unit intensity (ImageNet-C's ``c``).
        seeds: int64 ``(N,)``.

    Returns:
        float32 counts, same shape as ``x``.
    """
    k_max = int(rate + 8.0 * math.sqrt(rate) + 16)
    width = 1 << k_max.bit_length()  # > k_max: room for the +inf sentinels
    lam = torch.arange(256, dtype=torch.float64, device=x.device).unsqueeze(1) * (rate / 255.0)
    k = torch.arange(width, dtype=torch.float64, device=x.device)
    cdf = torch.cumsum(torch.exp(torch.xlogy(k, lam) - lam - torch.lgamma(k + 1.0)), dim=1)
    table = torch.where(k < k_max, cdf, torch.inf).to(torch.float32).reshape(-1)
    base = ((x * 255.0).round().clamp(0, 255).to(torch.int32) * width - 1).reshape(-1)
    u = uniform(seeds, tuple(x.shape[1:]), stream).reshape(-1)
    count = torch.zeros_like(base)  # becomes #{k : cdf[k] <= u}, the inverse-CDF sample
    step = width // 2
    while step:
        below = table.index_select(0, base + count + step) <= u
        count += below.to(torch.int32) * step
        step //= 2
    return count.to(torch.float32).reshape(x.shape)


def spectral_fields(seeds: Tensor, size: tuple[int, int], gains: list[Callable[[Tensor], Tensor]],
                    stream: str) -> list[Tensor]:
    """Stationary Gaussian random fields with given radial amplitude spectra.

    One white-noise image is filtered in the Fourier domain (periodic on the ``size`` grid)
    by each gain and standardised per image to mean 0, std 1. Fields from disjoint bands are
    independent; overlapping bands are correlated.

    Args:
        seeds: int64 ``(N,)``.
        size: ``(H, W)``.
        gains: each maps radial frequency (cycles per pixel) to an amplitude.
        stream: random stream name.

    Returns:
        One float32 ``(N, H, W)`` per gain.
    """
    h, w = size
    # float64: float32 FFTs vectorise across the batch and round differently for an image
    # alone than inside a batch.
    spectrum = torch.fft.rfft2(normal(seeds, (h, w), stream).to(torch.float64))
    fy = torch.fft.fftfreq(h, device=seeds.device, dtype=torch.float64).unsqueeze(1)
    fx = torch.fft.rfftfreq(w, device=seeds.device, dtype=torch.float64).unsqueeze(0)
    radius = torch.sqrt(fy**2 + fx**2)
    fields = []
    for gain in gains:
        field = torch.fft.irfft2(spectrum * gain(radius), s=(h, w))
        field = field - field.mean(dim=(1, 2), keepdim=True)
        fields.append((field / field.std(dim=(1, 2), keepdim=True).clamp_min(1e-12)).to(torch.float32))
    return fields


def power_law_gain(exponent: float) -> Callable[[Tensor], Tensor]:
    """Amplitude ``f ** -exponent`` (zero at f = 0): fractal, fBm-like fields."""
    def gain(f: Tensor) -> Tensor:
        return torch.where(f > 0, f.clamp_min(1e-12) ** -exponent, torch.zeros_like(f))

    return gain


def unit_range(field: Tensor) -> Tensor:
    """Min-max normalise each ``(H, W)`` field of ``(N, H, W)`` to [0, 1]."""
    low = field.amin(dim=(1, 2), keepdim=True)
    high = field.amax(dim=(1, 2), keepdim=True)
    return (field - low) / (high - low).clamp_min(1e-12)


def power_law_field(seeds: Tensor, size: tuple[int, int], exponent: float, stream: str) -> Tensor:
    """Fractal field with amplitude spectrum ``f ** -exponent``, min-max scaled to [0, 1].

    A spectral stand-in for the diamond-square "plasma fractal" of ImageNet-C's fog: a
    wibble decay ``d`` per octave corresponds to about ``exponent = 1 + log2(d)`` (fog calibrates
    its own mapping, `bench.threats.corruptions.weather.fog`).

    Returns:
        float32 ``(N, H, W)`` in [0, 1].
    """
    return unit_range(spectral_fields(seeds, size, [power_law_gain(exponent)], stream)[0])
