"""The interface every data set implements: where its prepared cache lives, how to build it.

A `DataSource` turns a data set's native files into the cached uint8 form (`bench.data.cache`)
and loads it as an `ImageDataset`. `bench data list|prepare|verify` and the runner only use this
interface, so a new data set is one class registered in `bench.data.sources`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from bench.data.cache import data_root, load_cache, read_manifest
from bench.data.dataset import ImageDataset
from bench.errors import DataError


class DataSource(ABC):
    """One data set, registered by name in ``bench.registry.DATASETS``.

    Class attributes:
        name: registry key used in suites.
        citation: the paper that defines the data set and its split.
        channels: image channels after preparation.
        default_size: side length in pixels of the prepared images.
        split_classes: split -> expected number of classes (checked by ``verify``; the suite
            validator uses it to reject episodes wider than a split, without loading data).
        samples_per_class: the fewest images any class has (bounds shot + query).
        resizable: whether ``image_size`` may differ from ``default_size``.
        groupings: the names of the class groupings the data set carries (``"alphabet"`` for
            Omniglot), for episodes drawn within one group (a data setting's ``within``).
    """

    name: ClassVar[str]
    citation: ClassVar[str]
    channels: ClassVar[int]
    default_size: ClassVar[int]
    split_classes: ClassVar[dict[str, int]]
    samples_per_class: ClassVar[int] = 20
    resizable: ClassVar[bool] = False
    groupings: ClassVar[tuple[str, ...]] = ()

    def cache_dir(self, root: Path | None = None, image_size: int | None = None) -> Path:
        """Folder of the prepared cache for this image size."""
        size = image_size or self.default_size
        return (root or data_root()) / f"{self.name}-{size}"

    def is_prepared(self, root: Path | None = None, image_size: int | None = None) -> bool:
        try:
            read_manifest(self.cache_dir(root, image_size))
        except DataError:
            return False
        return True

    def load(self, root: Path | None = None, image_size: int | None = None) -> ImageDataset:
        """Load the prepared cache, or raise a `DataError` saying how to prepare it."""
        directory = self.cache_dir(root, image_size)
        if not self.is_prepared(root, image_size):
            raise DataError(self.missing_message(root, image_size))
        return load_cache(directory)

    @abstractmethod
    def prepare(self, root: Path | None = None, image_size: int | None = None,
                raw: Path | None = None) -> ImageDataset:
        """Build the cache (download where a public source exists, or read ``raw``)."""

    @abstractmethod
    def missing_message(self, root: Path | None = None, image_size: int | None = None) -> str:
        """One paragraph: the data set is missing, which command to run or where to put files."""

    def ensure(self, root: Path | None = None, image_size: int | None = None) -> ImageDataset:
        """Load, preparing first when the source can build itself offline (glyphs)."""
        return self.load(root, image_size)

    def class_group(self, grouping: str, class_name: str) -> str:
        """The group of ``grouping`` a class belongs to (override with `groupings`)."""
        raise KeyError(f"{self.name} declares no grouping {grouping!r}")

    def with_groups(self, dataset: ImageDataset) -> ImageDataset:
        """``dataset`` carrying every declared grouping (`ImageDataset.groups`)."""
        groups = {g: tuple(self.class_group(g, name) for name in dataset.class_names) for g in self.groupings}
        return dataclasses.replace(dataset, groups=groups)
