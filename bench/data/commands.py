"""What ``bench data list | prepare | verify`` do, as plain functions (the CLI only prints them).

Every failure is a `bench.errors.DataError` whose message is one paragraph saying what to do,
so the CLI can print it and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.data.cache import data_root, load_cache, read_manifest, verify_cache
from bench.data.dataset import ImageDataset, content_hash
from bench.data.source import DataSource
from bench.errors import DataError
from bench.registry import DATASETS


def _source(name: str) -> DataSource:
    return DATASETS.get(name)()  # unknown names raise a BenchError with the allowed names


def list_datasets(root: Path | None = None) -> list[dict[str, Any]]:
    """One row per registered data set: where its cache is expected, whether it is there, its hash.

    Returns:
        dicts with ``name``, ``citation``, ``path``, ``present``, ``hash`` (content hash or None),
        ``image_size``, ``channels`` and ``splits`` (split -> expected number of classes).
    """
    root = Path(root) if root else data_root()
    rows = []
    for name in DATASETS.names():
        source = _source(name)
        directory = source.cache_dir(root)
        try:
            digest: str | None = read_manifest(directory)["content_hash"]
        except (DataError, KeyError):
            digest = None
        rows.append({"name": name, "citation": source.citation, "path": str(directory),
                     "present": digest is not None, "hash": digest, "image_size": source.default_size,
                     "channels": source.channels, "splits": dict(source.split_classes)})
    return rows


def prepare_dataset(name: str, root: Path | None = None, raw: Path | None = None,
                    image_size: int | None = None) -> ImageDataset:
    """Build the cache of ``name`` under ``root`` from ``raw`` (or a download where one exists).

    Raises:
        DataError: the raw files are missing, corrupt or incomplete, or the cache cannot be written.
    """
    root = Path(root) if root else data_root()
    source = _source(name)
    try:
        return source.prepare(root, image_size, Path(raw) if raw else None)
    except OSError as exc:
        raise DataError(f"preparing {name!r} failed while reading or writing files ({exc}). Check that "
                        f"{root} is writable and has free space, and that the raw files are readable, "
                        f"then run `bench data prepare {name}` again.") from exc


def verify_dataset(name: str, root: Path | None = None, image_size: int | None = None) -> dict[str, Any]:
    """Re-hash a prepared data set and compare its split sizes with the published split.

    Returns:
        ``name``, ``path``, ``content_hash``, ``sha256`` (file -> digest, all matching), ``strict``
        (prepared from a complete copy), ``complete`` (every split has its published number of
        classes) and ``splits``: split -> ``{"classes", "expected", "images"}``.

    Raises:
        DataError: not prepared, a file or the content hash does not match the manifest, or a
            strictly prepared set has split sizes other than the published ones.
    """
    root = Path(root) if root else data_root()
    source = _source(name)
    directory = source.cache_dir(root, image_size)
    if not source.is_prepared(root, image_size):
        raise DataError(source.missing_message(root, image_size))
    manifest = verify_cache(directory)
    dataset = load_cache(directory)
    if content_hash(dataset.images, dataset.labels, manifest["splits"]) != manifest["content_hash"]:
        raise DataError(f"the content of {directory} does not match the hash in its manifest; delete the "
                        f"folder and run `bench data prepare {name}` again.")
    splits = _split_sizes(dataset, source.split_classes)
    complete = all(row["classes"] == row["expected"] for row in splits.values() if row["expected"] is not None)
    strict = bool(manifest.get("strict", True))
    if strict and not complete:
        found = ", ".join(f"{s} {r['classes']}/{r['expected']}" for s, r in splits.items())
        raise DataError(f"{directory} has split sizes ({found} classes) other than the published split of "
                        f"{name!r}; delete the folder and run `bench data prepare {name}` again.")
    return {"name": name, "path": str(directory), "content_hash": manifest["content_hash"],
            "sha256": dict(manifest["sha256"]), "strict": strict, "complete": complete, "splits": splits}


def _split_sizes(dataset: ImageDataset, expected: dict[str, int]) -> dict[str, dict[str, int | None]]:
    sizes: dict[str, dict[str, int | None]] = {}
    for split in sorted(set(dataset.splits) | set(expected)):
        ids = dataset.splits.get(split, torch.zeros(0, dtype=torch.long))
        sizes[split] = {"classes": int(ids.numel()), "expected": expected.get(split),
                        "images": int(torch.isin(dataset.labels, ids).sum())}
    return sizes
