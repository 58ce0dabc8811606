"""Images, damage/SSIM metrics and the reference side of the corruption comparison.

NumPy, SciPy and PIL only (no torch, nothing from ``bench``), so this file also runs as a worker
in an environment that has the reference package, bethgelab/imagecorruptions 1.1.2 (the
``reference`` extra, or a separate venv when the project's numpy is 2.x)::

    python benchmarks/corruption_metrics.py images N OUT.npz        # N natural 224 px images
    python benchmarks/corruption_metrics.py reference IN.npz OUT.json

Metrics (both in [0, 1] pixel units, on 8-bit images as the reference returns them):
``damage`` = mean |corrupted - clean| and SSIM (Wang et al. 2004: Gaussian window sigma 1.5,
11 taps, K1 = 0.01, K2 = 0.03, mean over pixels and channels). For a smaller target size both
images are first area-downsampled (PIL BOX) to that size: the rescaling rule's target.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image
from scipy import ndimage

REFERENCE_SIZE = 224
SEVERITIES = (1, 2, 3, 4, 5)
Metrics = dict[str, dict[str, dict[str, list[float]]]]  # name -> size -> {"damage", "ssim"} per severity


def damage(clean: np.ndarray, corrupted: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images, in [0, 1]."""
    return float(np.abs(corrupted.astype(np.float64) - clean.astype(np.float64)).mean() / 255.0)


def ssim(clean: np.ndarray, corrupted: np.ndarray) -> float:
    """Mean SSIM of two uint8 ``(H, W, C)`` images (Gaussian window, data range 1)."""
    a, b = clean.astype(np.float64) / 255.0, corrupted.astype(np.float64) / 255.0

    def blur(z: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(z, sigma=(1.5, 1.5, 0), truncate=3.5, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def downsample(image: np.ndarray, size: int) -> np.ndarray:
    """Area (PIL BOX) resize of a uint8 ``(H, W, 3)`` image to ``(size, size, 3)``."""
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BOX))


def measure(clean: np.ndarray, corrupted: np.ndarray, size: int) -> tuple[float, float]:
    """(damage, SSIM) of one image pair after downsampling both to ``size``."""
    a, b = downsample(clean, size), downsample(corrupted, size)
    return damage(a, b), ssim(a, b)


def collect(images: np.ndarray, names: Iterable[str], sizes: Iterable[int],
            apply: Callable[[str, int, np.ndarray, int], np.ndarray], at_size: bool = False,
            draws: int = 1) -> Metrics:
    """Mean damage and SSIM per corruption, size and severity.

    Args:
        images: uint8 ``(N, 224, 224, 3)``.
        apply: ``(name, severity, batch (N, S, S, 3) uint8, draw) -> corrupted uint8, same shape``;
            image ``i`` of draw ``k`` is seeded ``i + 1000 k``.
        draws: corruptions per image (random ones vary a lot per draw: spatter's drops, fog).
        at_size: corrupt the images downsampled to each size (ours) instead of corrupting at
            224 px and downsampling the result (the reference's target).
    """
    sizes = list(sizes)
    out: Metrics = {}
    for name in names:
        out[name] = {str(size): {"damage": [], "ssim": []} for size in sizes}
        for severity in SEVERITIES:
            values: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
            for draw in range(draws):
                corrupted = None if at_size else apply(name, severity, images, draw)
                for size in sizes:
                    if corrupted is None:
                        small = np.stack([downsample(im, size) for im in images])
                        pairs = zip(small, apply(name, severity, small, draw), strict=True)
                        values[size] += [(damage(a, b), ssim(a, b)) for a, b in pairs]
                    else:
                        values[size] += [measure(a, b, size) for a, b in zip(images, corrupted, strict=True)]
            for size in sizes:
                out[name][str(size)]["damage"].append(float(np.mean([v[0] for v in values[size]])))
                out[name][str(size)]["ssim"].append(float(np.mean([v[1] for v in values[size]])))
    return out


def fixture_images(n: int = 4, size: int = REFERENCE_SIZE) -> np.ndarray:
    """Procedural natural-like images, uint8 ``(n, size, size, 3)``, identical in every environment.

    A ``f**-1.5`` colour field (the spectrum of natural images) under a sky-like gradient, with a few
    sharp-edged ellipses: smooth regions, edges and texture, from ``default_rng(seed).random``
    only (whose stream NumPy keeps stable across versions).
    """
    images = []
    for seed in range(n):
        rng = np.random.default_rng(1000 + seed)
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
        amplitude = np.where(f > 0, np.maximum(f, 1e-9) ** -1.5, 0.0)
        phases = np.exp(2j * np.pi * rng.random((3, size, size)))
        field = np.fft.ifft2(amplitude * phases).real
        field = (field - field.mean()) / field.std()
        mix = 0.5 + 0.5 * rng.random((3, 3))  # correlated channels, as in photographs
        image = 0.45 + 0.12 * np.tensordot(mix / mix.sum(1, keepdims=True), field, 1).transpose(1, 2, 0)
        image += np.linspace(0.15, -0.15, size)[:, None, None] * rng.random(3)
        yy, xx = np.mgrid[:size, :size] / size
        for _ in range(4):
            cy, cx, ry, rx = rng.random(4) * (0.8, 0.8, 0.25, 0.25) + (0.1, 0.1, 0.05, 0.05)
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            image[inside] = 0.3 * image[inside] + 0.7 * rng.random(3)
        images.append(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return np.stack(images)


def natural_images(n: int) -> np.ndarray:
    """``n`` natural photographs, uint8 ``(n, 224, 224, 3)``: crops of scikit-image's samples.

    astronaut, chelsea, coffee, rocket and the left motorcycle view (bundled with scikit-image,
    no download), each resized to a short side of 320 px and cropped at its centre and corners.
    """
    import skimage.data as data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.stereo_motorcycle()[0]]
    crops = []
    for k in range(5):
        for photo in photos:
            h, w = photo.shape[:2]
            scale = 320 / min(h, w)
            shape = (round(w * scale), round(h * scale))
            big = np.asarray(Image.fromarray(photo).resize(shape, Image.Resampling.LANCZOS))
            h, w = big.shape[:2]
            tops = [(h - 224) // 2, 0, 0, h - 224, h - 224]
            lefts = [(w - 224) // 2, 0, w - 224, 0, w - 224]
            crops.append(big[tops[k]:tops[k] + 224, lefts[k]:lefts[k] + 224])
    return np.stack(crops[:n])


def _patch_reference() -> Callable[[np.ndarray, str, int], np.ndarray]:
    """imagecorruptions 1.1.2's ``corrupt``, patched for current scikit-image and NumPy.

    1.1.2 calls ``skimage.filters.gaussian(..., multichannel=True)`` (removed in scikit-image
    0.19; now ``channel_axis=-1``) and uses ``np.float_`` (removed in NumPy 2); both are
    restored here, in this process only. Nothing else of the reference is changed.
    """
    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]
    import imagecorruptions
    import imagecorruptions.corruptions as ic
    from skimage.filters import gaussian

    def compatible_gaussian(image: np.ndarray, *args: object, multichannel: bool | None = None,
                            **kwargs: object) -> np.ndarray:
        if multichannel:
            kwargs["channel_axis"] = -1
        return gaussian(image, *args, **kwargs)

    ic.gaussian = compatible_gaussian
    hendrycks_elastic = _hendrycks_elastic(compatible_gaussian)

    def run(image: np.ndarray, name: str, severity: int) -> np.ndarray:
        if name == "elastic_transform[imagenet-c]":
            return np.uint8(hendrycks_elastic(image, severity))  # truncation, as imagecorruptions' corrupt()
        return imagecorruptions.corrupt(image, corruption_name=name, severity=severity)

    return run


def _hendrycks_elastic(gaussian: Callable[..., np.ndarray]) -> Callable[[np.ndarray, int], np.ndarray]:
    """``elastic_transform`` of Hendrycks' ``imagenet_c`` 0.0.3, the ImageNet-C parameter table.

    That module imports Wand (ImageMagick) for motion blur and snow at import time; elastic does
    not use it, so when ImageMagick's library is absent Wand is replaced by empty stand-ins.
    """
    import types

    try:
        import wand.image  # noqa: F401
    except ImportError:
        for mod in ("wand", "wand.image", "wand.api", "wand.color"):
            sys.modules[mod] = types.ModuleType(mod)
        sys.modules["wand.image"].Image = object  # type: ignore[attr-defined]
        sys.modules["wand.api"].library = types.SimpleNamespace(  # type: ignore[attr-defined]
            MagickMotionBlurImage=types.SimpleNamespace())
    import imagenet_c.corruptions as hc

    hc.gaussian = gaussian
    return hc.elastic_transform


def reference_metrics(images: np.ndarray, names: list[str], sizes: list[int], draws: int) -> Metrics:
    """The reference's metrics; image ``i`` of draw ``k`` is corrupted after ``np.random.seed(i + 1000 k)``."""
    run = _patch_reference()

    def apply(name: str, severity: int, batch: np.ndarray, draw: int) -> np.ndarray:
        out = []
        for i, image in enumerate(batch):
            np.random.seed(i + 1000 * draw)
            out.append(run(image, name, severity))
        return np.stack(out)

    return collect(images, names, sizes, apply, draws=draws)


def main(argv: list[str]) -> None:
    if argv[0] == "images":
        np.savez_compressed(argv[2], images=natural_images(int(argv[1])))
    elif argv[0] == "reference":
        job = np.load(argv[1])
        names, sizes = [str(n) for n in job["names"]], [int(s) for s in job["sizes"]]
        metrics = reference_metrics(job["images"], names, sizes, int(job["draws"]))
        with open(argv[2], "w") as fh:
            json.dump(metrics, fh)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
