"""The class lists of the standard few-shot splits, shipped as text files next to this module.

Each data set has three files ``<name>.train.txt``, ``<name>.val.txt`` and ``<name>.test.txt``:
``#`` lines cite the source of the list, every other non-blank line is one entry (a class, or
for the Omniglot alphabet splits an alphabet). The lists are facts copied from the papers' published
split files; the loaders never invent a split.

``select_classes`` applies a list to the classes a raw copy actually holds. With ``strict=True``
(what ``bench data prepare`` uses) every listed class must be present and the counts must match
the source's ``split_classes``; ``strict=False`` keeps the listed classes that are present, so the
tests can build tiny fake sets in the real on-disk formats. The manifest records which was used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from bench.errors import DataError

SPLIT_DIR = Path(__file__).resolve().parent
SPLIT_NAMES = ("train", "val", "test")


def read_split(dataset: str) -> dict[str, list[str]]:
    """Split -> entries (file order) of the shipped lists of ``dataset``.

    Raises:
        DataError: the split files are missing (a broken install) or share an entry.
    """
    if not (SPLIT_DIR / f"{dataset}.train.txt").is_file():
        raise DataError(f"no split files for {dataset!r} in {SPLIT_DIR}; the package is incomplete, "
                        f"reinstall fewshot-bench.")
    splits = {}
    for split in SPLIT_NAMES:
        path = SPLIT_DIR / f"{dataset}.{split}.txt"
        lines = path.read_text().splitlines() if path.is_file() else []
        splits[split] = [s.strip() for s in lines if s.strip() and not s.startswith("#")]
    check_disjoint(splits, dataset)
    return splits


def split_sources(dataset: str) -> list[str]:
    """The ``#`` header lines of the train list: where the lists come from (for manifests and docs)."""
    path = SPLIT_DIR / f"{dataset}.train.txt"
    return [s.lstrip("# ").rstrip() for s in path.read_text().splitlines() if s.startswith("#")]


def check_disjoint(splits: dict[str, list[str]], dataset: str) -> None:
    """Raise `DataError` if a class appears twice, in one split or across splits."""
    seen: dict[str, str] = {}
    for split, names in splits.items():
        for name in names:
            if name in seen:
                raise DataError(f"the split lists of {dataset!r} name {name!r} twice ({seen[name]} and "
                                f"{split}); the package is corrupt, reinstall fewshot-bench.")
            seen[name] = split


def select_classes(
    wanted: dict[str, list[str]],
    present: Iterable[str] | Mapping[str, Iterable[str]],
    dataset: str,
    strict: bool,
    *,
    by_split: bool = False,
) -> dict[str, list[str]]:
    """The classes of each split that the raw copy holds.

    Args:
        wanted: split -> class names of the published split (already expanded, e.g. rotations).
        present: class names found in the raw files; with ``by_split``, split -> those found where
            that split's classes come from (Omniglot-minimal takes val and test from different sets).
        dataset: name used in error messages.
        strict: require the full data set (every listed class present).
        by_split: ``present`` is a mapping per split.

    Raises:
        DataError: strict and a class is missing; or no listed class is present at all.
    """
    if by_split:
        assert isinstance(present, Mapping)
        have = {split: set(present.get(split, ())) for split in wanted}
    else:
        found = set(present)
        have = {split: found for split in wanted}
    chosen = {split: [c for c in names if c in have[split]] for split, names in wanted.items()}
    if strict:
        for split, names in wanted.items():
            missing = [c for c in names if c not in have[split]]
            if missing:
                raise DataError(
                    f"the raw files of {dataset!r} lack {len(missing)} of the {len(names)} {split} classes "
                    f"(e.g. {', '.join(missing[:3])}): the copy is incomplete or not the standard release. "
                    f"Put the complete files in place (see docs/datasets.md) and prepare it again.")
    if not any(chosen.values()):
        raise DataError(f"the raw files of {dataset!r} hold none of the classes of its standard split; "
                        f"check that the folder is the right data set (see docs/datasets.md).")
    return chosen


def assemble(
    per_split: dict[str, list[tuple[str, np.ndarray]]],
) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, list[str]]]:
    """Stack per-class image arrays into the cached form, classes ordered train, val, test.

    Args:
        per_split: split -> ``[(class name, uint8 (n_i, C, H, W)), ...]`` in split-file order.

    Returns:
        images uint8 ``(N, C, H, W)``, labels int64 ``(N,)``, class names, split -> class names.
    """
    groups = [group for split in SPLIT_NAMES for group in per_split.get(split, [])]
    if not groups:
        raise DataError("no images were found for any class of the split; check the raw folder.")
    total = sum(len(array) for _, array in groups)
    # One preallocated array: concatenating a list would hold every image twice in memory.
    images = np.empty((total, *groups[0][1].shape[1:]), dtype=np.uint8)
    labels = np.empty(total, dtype=np.int64)
    start = 0
    for label, (_, array) in enumerate(groups):
        images[start:start + len(array)] = array
        labels[start:start + len(array)] = label
        start += len(array)
    names = [name for name, _ in groups]
    splits = {split: [name for name, _ in per_split.get(split, [])] for split in SPLIT_NAMES}
    return torch.from_numpy(images), torch.from_numpy(labels), names, splits
