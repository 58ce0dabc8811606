"""The in-memory form every data set takes: one uint8 image tensor, labels, class splits.

Every loader (the embedded glyphs, Omniglot, miniImageNet, CIFAR-FS, ...) produces an
`ImageDataset`; the episode sampler only ever sees this form. Keeping the pixels as a single
uint8 tensor `(N, C, H, W)` makes an episode one index gather (DESIGN.md "Episodes").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image set with class-level train/val/test splits.

    Attributes:
        name: registry name of the data set (e.g. ``"glyphs"``).
        images: uint8 tensor ``(N, C, H, W)``.
        labels: int64 tensor ``(N,)`` of class ids in ``0..len(class_names)-1``.
        class_names: one human-readable name per class id.
        splits: split name -> int64 tensor of the class ids in that split (disjoint).
        content_hash: hex digest identifying the pixels, labels and splits; it goes into
            every MLflow run so that results on different data never get mixed.
        groups: grouping name -> the group of each class id (Omniglot's ``"alphabet"``), as
            the data source declares them (`DataSource.groupings`); metadata derived from the
            class names, so not part of ``content_hash``.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    splits: dict[str, torch.Tensor]
    content_hash: str
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    _by_split: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def num_classes(self, split: str) -> int:
        return int(self.splits[split].numel())

    def class_table(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample indices of a split arranged by class, for vectorised episode sampling.

        Returns:
            table: int64 ``(n_classes, max_per_class)``; row ``c`` lists the sample indices of
                the split's ``c``-th class, padded by repeating its first entries.
            counts: int64 ``(n_classes,)`` true number of samples per class.
        """
        if split not in self._by_split:
            self._by_split[split] = _build_class_table(self.labels, self.splits[split])
        table = self._by_split[split]
        return table[0], table[1][:, 0]

    def to(self, device: torch.device | str) -> ImageDataset:
        """The same data set with its pixels and labels on ``device``."""
        return ImageDataset(
            self.name,
            self.images.to(device),
            self.labels.to(device),
            self.class_names,
            self.splits,
            self.content_hash,
            self.groups,
        )

    def group_rows(self, split: str, grouping: str) -> torch.Tensor:
        """int64 ``(n_classes,)``: for each class of ``split`` (in `class_table` row order) the
        index of its group in ``grouping``, groups numbered in order of first appearance."""
        names = [self.groups[grouping][int(c)] for c in self.splits[split]]
        order = {name: i for i, name in enumerate(dict.fromkeys(names))}
        return torch.tensor([order[name] for name in names], dtype=torch.long)


def _build_class_table(labels: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
    """Stack ``(table, counts broadcast)`` into one tensor so it can be cached in one dict."""
    labels = labels.cpu()
    rows = [torch.nonzero(labels == int(c)).flatten() for c in class_ids]
    if not rows:
        empty = torch.zeros(0, 1, dtype=torch.long)
        return torch.stack([empty, empty])
    width = max(int(r.numel()) for r in rows)
    table = torch.stack([r.repeat((width + r.numel() - 1) // max(r.numel(), 1))[:width] for r in rows])
    counts = torch.tensor([r.numel() for r in rows], dtype=torch.long)[:, None].expand_as(table)
    return torch.stack([table, counts.contiguous()])


def content_hash(images: torch.Tensor, labels: torch.Tensor, splits: dict[str, list[str]]) -> str:
    """SHA-256 over pixels, labels and split membership; stable across runs and machines."""
    digest = hashlib.sha256()
    digest.update(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().cpu().numpy().tobytes())
    digest.update(labels.to(torch.int64).contiguous().cpu().numpy().tobytes())
    for split in sorted(splits):
        digest.update(f"{split}:{','.join(splits[split])}".encode())
    return digest.hexdigest()


def validate_dataset(dataset: ImageDataset) -> None:
    """Raise ``ValueError`` if the tensors and splits are inconsistent (loader bugs)."""
    images, labels = dataset.images, dataset.labels
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be ({images.shape[0]},), got {tuple(labels.shape)}")
    seen: set[int] = set()
    for split, ids in dataset.splits.items():
        overlap = seen & set(ids.tolist())
        if overlap:
            raise ValueError(f"split {split!r} shares classes {sorted(overlap)[:5]} with another split")
        seen |= set(ids.tolist())
