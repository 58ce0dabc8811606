"""Batched torch corruptions vs a per-image NumPy/SciPy/PIL reference, timed in one run.

Usage: ``python benchmarks/bench_corruptions.py [--images 1000] [--severity 3] [--device cpu]``.

For each corruption and format (28 px grayscale, 32 px RGB) it times ``corrupt`` on the whole
batch (best of ``--repeats`` after a warm-up) and a straightforward per-image reference of the
same corruption with the same rescaled parameters, written the way the ImageNet-C code is
(a Python loop over images, SciPy/PIL per image), then prints the speed-up ratio. For the
deterministic corruptions it also prints the mean |torch - reference| so the two are seen to
compute the same thing. Target: >= 20x. Not a test: ratios depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from bench.threats import corruptions as C
from bench.threats.corruptions import _ops, blur

Reference = Callable[[np.ndarray, int, float], np.ndarray]  # (H, W, C) image, seed, size -> image


def ref_gaussian_noise(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    std = (0.08, 0.12, 0.18, 0.26, 0.38)[sev - 1]
    return np.clip(img + np.random.default_rng(seed).normal(0, std, img.shape), 0, 1)


def ref_shot_noise(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    rate = (60, 25, 12, 5, 3)[sev - 1]
    return np.clip(np.random.default_rng(seed).poisson(img * rate) / rate, 0, 1)


def ref_gaussian_blur(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    sigma = C.scale_length((1, 2, 3, 4, 6)[sev - 1], img.shape[0])
    taps = np.array(_ops.gaussian_taps(sigma))
    out = ndimage.correlate1d(img, taps, axis=0, mode="nearest")
    return np.clip(ndimage.correlate1d(out, taps, axis=1, mode="nearest"), 0, 1)


def ref_defocus_blur(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[sev - 1]
    size = img.shape[0]
    kernel = blur._disk_kernel(C.scale_length(radius, size), C.scale_length(alias, size)).numpy()
    channels = [ndimage.correlate(img[..., c], kernel, mode="mirror") for c in range(img.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0, 1)


def ref_motion_blur(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[sev - 1]
    radius, sigma = C.scale_length(radius, img.shape[0]), C.scale_length(sigma, img.shape[0])
    angle = np.deg2rad(np.random.default_rng(seed).uniform(-45, 45))
    taps = max(1, min(2 * math.ceil(radius) + 1, math.ceil(4 * sigma) + 1))
    half = taps
    kernel = np.zeros((2 * half + 1, 2 * half + 1))
    for i in range(taps):  # splat each tap bilinearly into the kernel
        y, x = half + i * np.sin(angle), half + i * np.cos(angle)
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            wy, wx = 1 - abs(y - y0 - dy), 1 - abs(x - x0 - dx)
            kernel[y0 + dy, x0 + dx] += np.exp(-0.5 * (i / sigma) ** 2) * wy * wx
    kernel /= kernel.sum()
    channels = [ndimage.correlate(img[..., c], kernel, mode="nearest") for c in range(img.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0, 1)


def ref_zoom_blur(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    stop, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[sev - 1]
    out = np.zeros_like(img)
    h = img.shape[0]
    for z in np.arange(1, stop, step):  # ImageNet-C's clipped_zoom
        ch = int(np.ceil(h / z))
        top = (h - ch) // 2
        zoomed = ndimage.zoom(img[top : top + ch, top : top + ch], (z, z, 1), order=1)
        trim = (zoomed.shape[0] - h) // 2
        out += zoomed[trim : trim + h, trim : trim + h]
    return np.clip((img + out) / (len(np.arange(1, stop, step)) + 1), 0, 1)


def ref_glass_blur(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    sigma, delta, rounds = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[sev - 1]
    size = img.shape[0]
    sigma, delta = C.scale_length(sigma, size), max(1, round(C.scale_length(delta, size)))
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="nearest")
    for _ in range(rounds):  # ImageNet-C's sequential local swaps
        for h in range(size - delta, delta, -1):
            for w in range(size - delta, delta, -1):
                dx, dy = rng.integers(-delta, delta, size=2)
                x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w].copy()
    return np.clip(ndimage.gaussian_filter(x, (sigma, sigma, 0), mode="nearest"), 0, 1)


def ref_elastic_transform(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    alpha, sigma, jitter = ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02),
                            (0.12, 0.01, 0.02))[sev - 1]
    size = img.shape[0]
    f = C.size_factor(size)
    rng = np.random.default_rng(seed)
    c, sq = size // 2, size // 3
    src = np.array([[c + sq, c + sq], [c + sq, c - sq], [c - sq, c - sq]], dtype=float)
    moved = src + rng.uniform(-1, 1, src.shape) * 244 * jitter * size / 224
    inverse = np.linalg.solve(np.c_[moved, np.ones(3)], src).T  # (2, 3): output (x, y) -> source
    small = 244 * sigma * f
    gain = 244 * alpha * f * _ops.gaussian_gain(244 * sigma, 3.0) / _ops.gaussian_gain(small, 3.0)
    dx, dy = (ndimage.gaussian_filter(rng.uniform(-1, 1, (size, size)), small, mode="reflect", truncate=3) * gain
              for _ in range(2))
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    qx, qy = x + dx, y + dy
    sx = inverse[0, 0] * qx + inverse[0, 1] * qy + inverse[0, 2]
    sy = inverse[1, 0] * qx + inverse[1, 1] * qy + inverse[1, 2]
    channels = [ndimage.map_coordinates(img[..., k], [sy, sx], order=1, mode="mirror") for k in range(img.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0, 1)


def ref_pixelate(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    size = img.shape[0]
    block = C.scale_length(1 / (0.6, 0.5, 0.4, 0.3, 0.25)[sev - 1], size, identity=1.0)
    small = max(1, int(size / block))
    pil = Image.fromarray(np.round(img[..., 0] * 255).astype(np.uint8) if img.shape[2] == 1
                          else np.round(img * 255).astype(np.uint8))
    pil = pil.resize((small, small), Image.BOX).resize((size, size), Image.BOX)
    return np.asarray(pil, dtype=np.float32).reshape(img.shape) / 255


def ref_jpeg_compression(img: np.ndarray, seed: int, sev: int) -> np.ndarray:
    array = np.round(img * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if img.shape[2] == 1 else array).save(buffer, "JPEG",
                                                                        quality=(25, 18, 15, 10, 7)[sev - 1])
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32).reshape(img.shape) / 255


REFERENCES: dict[str, Reference] = {
    "gaussian_noise": ref_gaussian_noise, "shot_noise": ref_shot_noise, "gaussian_blur": ref_gaussian_blur,
    "defocus_blur": ref_defocus_blur, "motion_blur": ref_motion_blur, "zoom_blur": ref_zoom_blur,
    "glass_blur": ref_glass_blur, "elastic_transform": ref_elastic_transform, "pixelate": ref_pixelate,
    "jpeg_compression": ref_jpeg_compression,
}
DETERMINISTIC = {"gaussian_blur", "defocus_blur", "zoom_blur", "pixelate", "jpeg_compression"}


def images(n: int, channels: int, size: int) -> torch.Tensor:
    """Smooth random scenes with a sharp disk each, on the 8-bit grid (as the tests use)."""
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(n, channels, 5, 5, generator=g), size=size, mode="bicubic")
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cy, cx = torch.randint(size // 4, 3 * size // 4, (2, n, 1, 1), generator=g)
    disk = (((yy - cy) ** 2 + (xx - cx) ** 2) < (size // 4) ** 2).float().unsqueeze(1)
    image = (base * 0.7 + 0.15) * (1 - disk) + torch.rand(n, channels, 1, 1, generator=g) * disk
    return torch.round(image.clamp(0, 1) * 255) / 255


def time_torch(x: torch.Tensor, name: str, severity: int, seeds: torch.Tensor,
               repeats: int) -> tuple[float, torch.Tensor]:
    # The per-image reference of elastic_transform is ImageNet-C's table: time the same one.
    options = {"table": "imagenet-c"} if name == "elastic_transform" else {}
    out = C.corrupt(x, name, severity, seeds, **options)  # warm-up: caches, allocator, CUDA context
    best = math.inf
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = C.corrupt(x, name, severity, seeds, **options)
        if x.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out.cpu()


def time_reference(x: torch.Tensor, name: str, severity: int) -> tuple[float, torch.Tensor]:
    arrays = x.permute(0, 2, 3, 1).numpy().astype(np.float64)
    start = time.perf_counter()
    outs = [REFERENCES[name](image.copy(), i, severity) for i, image in enumerate(arrays)]
    elapsed = time.perf_counter() - start
    return elapsed, torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--only", nargs="*", default=sorted(REFERENCES), choices=sorted(REFERENCES))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device={args.device} torch threads={torch.get_num_threads()} images={args.images} "
          f"severity={args.severity} (torch: best of {args.repeats}; reference: one pass, per image)")
    header = f"{'corruption':18s} {'format':7s} {'torch ms':>9s} {'ref ms':>9s} {'speed-up':>9s} {'|diff|':>8s}"
    print(header + "\n" + "-" * len(header))
    ratios = []
    for name in args.only:
        for fmt, (channels, size) in (("gray28", (1, 28)), ("rgb32", (3, 32))):
            x = images(args.images, channels, size)
            seeds = torch.arange(args.images)
            t_torch, out = time_torch(x.to(args.device), name, args.severity, seeds.to(args.device), args.repeats)
            t_ref, ref = time_reference(x, name, args.severity)
            diff = f"{(out - ref).abs().mean().item() * 255:.2f}/255" if name in DETERMINISTIC else "-"
            ratios.append(t_ref / t_torch)
            print(f"{name:18s} {fmt:7s} {t_torch * 1e3:9.1f} {t_ref * 1e3:9.1f} {t_ref / t_torch:8.1f}x {diff:>8s}")
    print(f"geometric mean speed-up: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.1f}x "
          f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x)")


if __name__ == "__main__":
    main()
