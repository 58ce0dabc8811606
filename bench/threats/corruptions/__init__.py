"""The 19 ImageNet-C corruptions as batched, per-image-seeded tensor functions.

Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations" (ICLR): 15 benchmark corruptions plus 4 held-out ones (speckle noise,
gaussian blur, spatter, saturate), severities 1-5. Every function maps a float batch
``(N, C, H, W)`` in ``[0, 1]`` (C = 1 or 3) to the same shape, whole batch at once on the
images' device; image ``i``'s result depends only on its pixels, ``seeds[i]`` and the severity.
One module per family (:mod:`.noise`, :mod:`.blur`, :mod:`.weather` with :mod:`.frost` and
:mod:`.spatter`, :mod:`.digital`, :mod:`.elastic`); shared filters and the rescaling rule in
:mod:`._ops`. Checked against bethgelab/imagecorruptions 1.1.2 by
``benchmarks/corruption_reference.py``; the rule and every deviation: ``docs/corruptions.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor

from bench.threats.corruptions import blur, digital, elastic, noise, spatter, weather
from bench.threats.corruptions._ops import REFERENCE_SIZE, CorruptionError, scale_length, size_factor

CorruptionFn = Callable[..., Tensor]  # (x, severity, seeds, **options) -> unclamped x

CORRUPTIONS: dict[str, CorruptionFn] = {
    "gaussian_noise": noise.gaussian_noise, "shot_noise": noise.shot_noise, "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur, "glass_blur": blur.glass_blur, "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur, "snow": weather.snow, "frost": weather.frost, "fog": weather.fog,
    "brightness": digital.brightness, "contrast": digital.contrast, "elastic_transform": elastic.elastic_transform,
    "pixelate": digital.pixelate, "jpeg_compression": digital.jpeg_compression,
    # The four held-out corruptions of the paper.
    "speckle_noise": noise.speckle_noise, "gaussian_blur": blur.gaussian_blur, "spatter": spatter.spatter,
    "saturate": digital.saturate,
}
BENCHMARK_CORRUPTIONS = tuple(list(CORRUPTIONS)[:15])
EXTRA_CORRUPTIONS = tuple(list(CORRUPTIONS)[15:])
# Corruptions whose effect is on colour only: on a one-channel image saturate is the identity at
# severities 1-3 (and a slight darkening at 4-5, from the red tint skimage gives gray pixels).
COLOUR_ONLY = frozenset({"saturate"})
# Allowed values of each corruption's options (keyword arguments after the seeds).
OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {"elastic_transform": {"table": elastic.TABLES}}

__all__ = ["BENCHMARK_CORRUPTIONS", "COLOUR_ONLY", "CORRUPTIONS", "EXTRA_CORRUPTIONS", "OPTIONS", "REFERENCE_SIZE",
           "CorruptionError", "corrupt", "option_defaults", "scale_length", "size_factor"]


def option_defaults(name: str) -> dict[str, object]:
    """The default value of each option of corruption ``name`` (empty for most)."""
    params = inspect.signature(CORRUPTIONS[name]).parameters
    return {key: params[key].default for key in OPTIONS.get(name, {})}


def _check(images: Tensor, name: str, severity: int, seeds: Tensor, options: dict[str, str]) -> Tensor:
    if name not in CORRUPTIONS:
        raise CorruptionError(f"unknown corruption {name!r}. Allowed: {', '.join(sorted(CORRUPTIONS))}.")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise CorruptionError(f"corruption severity must be an integer 1..5, got {severity!r}.")
    allowed = OPTIONS.get(name, {})
    for key, value in options.items():
        if key not in allowed or value not in allowed[key]:
            choices = "; ".join(f"{k}: {', '.join(v)}" for k, v in allowed.items()) or "none"
            raise CorruptionError(f"corruption {name!r} has no option {key}={value!r}. Options: {choices}.")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or not images.is_floating_point():
        raise CorruptionError(f"images must be float (N, C, H, W) with C in {{1, 3}}, got "
                              f"{images.dtype} {tuple(images.shape)}.")
    seeds = torch.as_tensor(seeds, dtype=torch.int64, device=images.device).reshape(-1)
    if seeds.shape[0] != images.shape[0]:
        raise CorruptionError(f"need one seed per image: {seeds.shape[0]} seeds for "
                              f"{images.shape[0]} images.")
    return seeds


def corrupt(images: Tensor, name: str, severity: int, seeds: Tensor, **options: str) -> Tensor:
    """Apply one ImageNet-C corruption to a batch, one seed per image.

    Args:
        images: float ``(N, C, H, W)`` in [0, 1], C in {1, 3}, any device.
        name: one of ``CORRUPTIONS``.
        severity: 1 (mild) .. 5 (severe).
        seeds: int64 ``(N,)``; image ``i``'s corruption depends only on its pixels,
            ``seeds[i]`` and ``severity``, never on the rest of the batch.
        **options: the corruption's options, ``OPTIONS[name]`` (``table`` for elastic_transform).

    Returns:
        float ``(N, C, H, W)`` in [0, 1], same device and dtype as ``images``.

    Raises:
        CorruptionError (a ValueError): unknown name or option, bad severity, malformed input.
    """
    seeds = _check(images, name, severity, seeds, options)
    # float64 stays float64; half/bfloat16 are computed in float32 (CPU kernels lack them).
    work = images.to(torch.float64 if images.dtype == torch.float64 else torch.float32)
    out = CORRUPTIONS[name](work, severity, seeds, **options)
    return out.clamp(0.0, 1.0).to(images.dtype)
