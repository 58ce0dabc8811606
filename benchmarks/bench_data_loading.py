"""Loading a prepared data set from its cache vs reading its raw pixel bytes, side by side in one run.

Issue 7 targets: loading from the cache takes at most 2x the time of reading the cached pixel
file's bytes from disk (``open(...).read()`` of ``images.npy`` and ``labels.npy``), and the
in-memory set holds at most 1.1x the raw pixel bytes (``N * C * H * W``; measured as the storage
bytes of the image and label tensors). Measured on the real ``omniglot-minimal`` set (prepared
from the official zips into a temporary folder) and on a larger synthetic set written with the
same cache code. Both readings hit the page cache after the first repeat; they alternate, and
the medians are reported.

Run: ``python benchmarks/bench_data_loading.py [--raw ../shared/data/omniglot] [--synthetic 12000]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.data.cache import load_cache, write_cache
from bench.data.omniglot import OmniglotMinimal

REPO = Path(__file__).resolve().parents[1]


def paired_seconds(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of ``first`` and of ``second``, timed alternately so that both see the same
    machine load (sub-millisecond readings on a shared machine are otherwise noise)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def read_raw_bytes(directory: Path) -> int:
    """The reference: the bytes of the cached arrays, read from disk into memory."""
    total = 0
    for name in ("images.npy", "labels.npy"):
        with (directory / name).open("rb") as handle:
            total += len(handle.read())
    return total


def measure(label: str, directory: Path, repeats: int) -> dict[str, float]:
    """Time both readings (interleaved warm-up first) and compare memory with the pixel bytes."""
    read_raw_bytes(directory)
    load_cache(directory)
    raw_s, load_s = paired_seconds(lambda: read_raw_bytes(directory), lambda: load_cache(directory), repeats)
    dataset = load_cache(directory)
    pixels = dataset.images.numel()  # uint8: one byte per pixel value
    held = dataset.images.untyped_storage().nbytes() + dataset.labels.untyped_storage().nbytes()
    row = {"images": dataset.images.shape[0], "pixel_MB": pixels / 1e6, "raw_read_ms": raw_s * 1e3,
           "load_ms": load_s * 1e3, "time_ratio": load_s / raw_s, "memory_ratio": held / pixels}
    print(f"{label:<18} {row['images']:>7} imgs {row['pixel_MB']:8.1f} MB   read {row['raw_read_ms']:8.2f} ms"
          f"   load {row['load_ms']:8.2f} ms   time x{row['time_ratio']:.2f} (<= 2)"
          f"   memory x{row['memory_ratio']:.3f} (<= 1.1)")
    return row


def synthetic(directory: Path, count: int) -> Path:
    """A miniImageNet-shaped set (84x84 RGB, 100 classes) written through the real cache code."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, 84, 84), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % 100
    names = [f"class{i:03d}" for i in range(100)]
    splits = {"train": names[:64], "val": names[64:80], "test": names[80:]}
    write_cache(directory, "synthetic", images, labels, names, splits)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "omniglot",
                        help="folder with images_background_small1.zip and images_background_small2.zip")
    parser.add_argument("--synthetic", type=int, default=12000, help="images in the synthetic 84x84 RGB set")
    parser.add_argument("--repeats", type=int, default=41)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if (args.raw / "images_background_small1.zip").is_file():
            source = OmniglotMinimal()
            source.prepare(root, raw=args.raw)
            rows["omniglot-minimal"] = measure("omniglot-minimal", source.cache_dir(root), args.repeats)
        else:
            print(f"omniglot-minimal skipped: no zips in {args.raw}")
        rows["synthetic"] = measure("synthetic-84px", synthetic(root / "synthetic", args.synthetic), args.repeats)
    worst_time = max(r["time_ratio"] for r in rows.values())
    worst_memory = max(r["memory_ratio"] for r in rows.values())
    print(f"worst ratios: time x{worst_time:.2f} (target <= 2), memory x{worst_memory:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
