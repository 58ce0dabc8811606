"""The prepared on-disk form of every data set: ``images.npy``, ``labels.npy``, ``manifest.json``.

A loader converts a data set's native files (PNG folders, CIFAR pickles, ...) once into this
compact uint8 cache; later runs memory-read the arrays, so loading costs little more than
reading the raw pixel bytes. The manifest records shapes, class names, splits, file checksums
and the content hash; ``verify_cache`` re-hashes the files (``bench data verify``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data.dataset import ImageDataset, content_hash, validate_dataset
from bench.errors import DataError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def data_root() -> Path:
    """Where prepared data sets live: ``$BENCH_DATA``, else ``~/.cache/fewshot-bench``."""
    env = os.environ.get("BENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fewshot-bench"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def write_cache(
    directory: Path,
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    splits: dict[str, list[str]],
    extra: dict[str, Any] | None = None,
) -> ImageDataset:
    """Write a prepared data set atomically (temp files renamed last) and return it loaded.

    Args:
        directory: target folder, created if needed.
        images: uint8 ``(N, C, H, W)``.
        labels: int64 ``(N,)`` indices into ``class_names``.
        class_names: unique class names.
        splits: split -> class names (disjoint).
        extra: provenance recorded in the manifest (source, build parameters, versions).
    """
    directory.mkdir(parents=True, exist_ok=True)
    dataset = _validated_dataset(name, images, labels, class_names, splits)
    checksums = _write_arrays(directory, {"images.npy": dataset.images.numpy(), "labels.npy": dataset.labels.numpy()})
    manifest = {
        "format": FORMAT_VERSION,
        "name": name,
        "shape": list(images.shape),
        "class_names": class_names,
        "splits": splits,
        "sha256": checksums,
        "content_hash": dataset.content_hash,
        **(extra or {}),
    }
    _write_manifest(directory, manifest)
    return dataset


def _validated_dataset(name: str, images: torch.Tensor, labels: torch.Tensor, class_names: list[str],
                       splits: dict[str, list[str]]) -> ImageDataset:
    """The arrays as a contiguous `ImageDataset` (int64 labels, splits as class indices, content
    hash), checked by `validate_dataset`."""
    index = {c: i for i, c in enumerate(class_names)}
    dataset = ImageDataset(
        name,
        images.contiguous(),
        labels.to(torch.int64).contiguous(),
        tuple(class_names),
        {s: torch.tensor([index[c] for c in cs], dtype=torch.long) for s, cs in splits.items()},
        content_hash(images, labels, splits),
    )
    validate_dataset(dataset)
    return dataset


def _write_arrays(directory: Path, files: dict[str, np.ndarray]) -> dict[str, str]:
    """Save each array as ``directory/filename`` (``np.save`` to a temp file, hashed, then renamed
    into place); returns filename -> SHA-256 of the saved file."""
    checksums = {}
    for filename, array in files.items():
        tmp = directory / (filename + ".tmp")
        with tmp.open("wb") as handle:
            np.save(handle, array)
        checksums[filename] = _sha256(tmp)
        tmp.replace(directory / filename)
    return checksums


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` through a temp file renamed into place."""
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    tmp.replace(directory / MANIFEST)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a prepared data set; a `DataError` if it is absent or unreadable."""
    path = directory / MANIFEST
    if not path.is_file():
        raise DataError(f"no prepared data set at {directory} ({MANIFEST} is missing).")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); delete {directory} and prepare it again.") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise DataError(f"{path} has cache format {manifest.get('format')}, expected {FORMAT_VERSION}; "
                        f"delete {directory} and prepare it again.")
    return dict(manifest)


def read_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
    """The ``.npy`` array that `write_cache` saved, read straight into a fresh CPU tensor.

    The header must be byte for byte the one ``np.save`` writes for ``shape`` and ``dtype``
    (from the manifest); building it is cheaper than ``np.load``'s header parsing (an
    ``ast.literal_eval``), which costs as much as reading omniglot-minimal's pixels. The pixels
    then arrive by one ``readinto``: loading costs about what reading the bytes costs
    (`benchmarks/bench_data_loading.py`).
    """
    expected = io.BytesIO()
    np.lib.format.write_array_header_1_0(expected, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                    "fortran_order": False, "shape": shape})
    header = expected.getvalue()
    array = np.empty(shape, dtype)
    with path.open("rb") as handle:
        if handle.read(len(header)) != header:
            raise ValueError(f"{path.name} does not hold a C-ordered {dtype} array of shape {shape}")
        if handle.readinto(array.data.cast("B")) != array.nbytes or handle.read(1):
            raise ValueError(f"{path.name} is truncated or has trailing bytes")
    return torch.from_numpy(array)


def load_cache(directory: Path) -> ImageDataset:
    """Load a prepared data set; array headers and sizes are checked against the manifest (cheap),
    not hashes (`verify_cache`)."""
    manifest = read_manifest(directory)
    try:
        shape = tuple(manifest["shape"])
        images = read_npy(directory / "images.npy", shape, np.dtype(np.uint8))
        labels = read_npy(directory / "labels.npy", shape[:1], np.dtype(np.int64))
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"the cached arrays in {directory} are unreadable or do not match its manifest "
                        f"({exc}); delete the folder and prepare the data set again.") from exc
    names = manifest["class_names"]
    index = {c: i for i, c in enumerate(names)}
    splits = {s: torch.tensor([index[c] for c in cs], dtype=torch.long) for s, cs in manifest["splits"].items()}
    return ImageDataset(manifest["name"], images, labels, tuple(names), splits, manifest["content_hash"])


def verify_cache(directory: Path) -> dict[str, Any]:
    """Re-hash the cached files against the manifest; returns the manifest or raises `DataError`."""
    manifest = read_manifest(directory)
    for filename, expected in manifest["sha256"].items():
        path = directory / filename
        if not path.is_file() or _sha256(path) != expected:
            raise DataError(f"{path} does not match the checksum in its manifest; delete {directory} "
                            f"and prepare the data set again.")
    return manifest
