"""CIFAR-FS and FC100: two few-shot splits of CIFAR-100 (Krizhevsky 2009), built from its python files.

* ``cifarfs``: Bertinetto, Henriques, Torr & Vedaldi (2019), Meta-learning with differentiable
  closed-form solvers, ICLR: 64 / 16 / 20 classes drawn at random from the 100.
* ``fc100``: Oreshkin, Rodriguez & Lacoste (2018), TADAM, NeurIPS: split by superclass, 12 / 4 / 4
  superclasses = 60 / 20 / 20 classes, so test classes are semantically far from training ones.

Both use all 600 images of each class (CIFAR-100's train and test files together), 32x32 RGB.
Raw files: torchvision's ``cifar-100-python/{train,test,meta}`` (pickled dicts, ``data`` uint8
``(N, 3072)`` as R, G, B planes of 32x32, ``fine_labels``, ``coarse_labels``; ``meta`` holds
``fine_label_names`` and ``coarse_label_names``), or the archive ``cifar-100-python.tar.gz``;
without ``raw`` the archive is downloaded (md5 pinned) into ``<root>/raw/cifar100``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.cache import data_root, write_cache
from bench.data.dataset import ImageDataset
from bench.data.download import Resource, download, file_digest, load_pickle, safe_extract
from bench.data.source import DataSource
from bench.data.splits import assemble, read_split, select_classes, split_sources
from bench.errors import DataError
from bench.registry import DATASETS

ARCHIVE = Resource("cifar-100-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                   md5="eb9058c3a382ffc7106e4002c42a8d85")
# md5 of the unpacked files, as pinned by torchvision.datasets.CIFAR100; checked by strict prepares.
FILE_MD5 = {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "meta": "7973b15100ade9c7d40fb424638fde48"}
FOLDER = "cifar-100-python"
PER_CLASS = 600


@dataclass(frozen=True)
class Cifar100:
    """CIFAR-100 in memory: images uint8 ``(N, 3, 32, 32)``, fine/coarse labels ``(N,)``, names."""

    images: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray
    fine_names: list[str]
    coarse_names: list[str]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """One CIFAR pickle as a dict with str keys (the files have bytes or str keys by Python version)."""
    content = load_pickle(path)
    record = {_text(k): v for k, v in content.items()} if isinstance(content, dict) else {}
    missing = [k for k in keys if k not in record]
    if missing:
        raise DataError(f"{path} lacks the keys {missing}; it is not a CIFAR-100 python file. Replace it "
                        f"with the file from {ARCHIVE.urls[0]}.")
    return record


def _pixels(path: Path, record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.asarray(record["data"])
    fine, coarse = np.asarray(record["fine_labels"]), np.asarray(record["coarse_labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or \
            not len(data) == len(fine) == len(coarse):
        raise DataError(f"{path} holds data {data.dtype} {data.shape} with {len(fine)} labels, expected uint8 "
                        f"(N, 3072) with N labels; the file is corrupt. Replace it and prepare again.")
    return data.reshape(-1, 3, 32, 32), fine.astype(np.int64), coarse.astype(np.int64)


def read_cifar100(folder: Path) -> Cifar100:
    """Read ``train``, ``test`` and ``meta`` of a ``cifar-100-python`` folder, train and test joined."""
    meta = _record(folder / "meta", ("fine_label_names", "coarse_label_names"))
    parts = [_pixels(folder / f, _record(folder / f, ("data", "fine_labels", "coarse_labels")))
             for f in ("train", "test")]
    images, fine, coarse = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
    fine_names = [_text(n) for n in meta["fine_label_names"]]
    coarse_names = [_text(n) for n in meta["coarse_label_names"]]
    if fine.size and (fine.max() >= len(fine_names) or coarse.max() >= len(coarse_names) or min(fine.min(),
                                                                                                coarse.min()) < 0):
        raise DataError(f"the labels in {folder} do not fit the class names of its meta file; the files "
                        f"are from different copies or corrupt. Replace them and prepare again.")
    return Cifar100(images, fine, coarse, fine_names, coarse_names)


def locate_cifar100(raw: Path | None, staging: Path) -> Path:
    """The ``cifar-100-python`` folder: in ``raw``, unpacked from its archive, or downloaded."""
    base = Path(raw) if raw is not None else staging
    for folder in (base / FOLDER, base):
        if (folder / "meta").is_file():
            return folder
    archive = base / ARCHIVE.filename
    if raw is not None and not archive.is_file():
        raise DataError(f"{raw} holds neither {FOLDER}/ (train, test, meta) nor {ARCHIVE.filename}. Put "
                        f"one of them there (from {ARCHIVE.urls[0]}) and run the command again.")
    download(ARCHIVE, archive.parent)  # verifies an existing archive, downloads a missing one
    safe_extract(archive, staging)
    if not (staging / FOLDER / "meta").is_file():
        raise DataError(f"{archive} does not contain {FOLDER}/meta; it is not the CIFAR-100 python "
                        f"archive. Download it again from {ARCHIVE.urls[0]}.")
    return staging / FOLDER


def check_release(folder: Path) -> None:
    """Raise `DataError` unless the three files are exactly the official release (md5 pinned)."""
    for filename, expected in FILE_MD5.items():
        actual = file_digest(folder / filename, "md5")
        if actual != expected:
            raise DataError(f"{folder / filename} has md5 {actual}, the official CIFAR-100 file has "
                            f"{expected}: it is corrupt or another version. Replace it with the file "
                            f"from {ARCHIVE.urls[0]} and prepare again.")


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` -> ``(N, C, size, size)``, bilinear with antialiasing (area-like when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    resized = F.interpolate(torch.from_numpy(images).float(), size=(size, size), mode="bilinear",
                            antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8).numpy()


class _CifarSplit(DataSource):
    """A class split of CIFAR-100; split files hold ``class`` or ``superclass/class`` entries."""

    channels: ClassVar[int] = 3
    default_size: ClassVar[int] = 32
    samples_per_class: ClassVar[int] = 600

    def prepare(self, root: Path | None = None, image_size: int | None = None,
                raw: Path | None = None, strict: bool = True) -> ImageDataset:
        """Read the CIFAR-100 files, apply the split, write the cache (``strict=False``: partial sets)."""
        root = Path(root) if root else data_root()
        size = image_size or self.default_size
        folder = locate_cifar100(raw, root / "raw" / "cifar100")
        if strict:
            check_release(folder)
        cifar = read_cifar100(folder)
        wanted = read_split(self.name)
        _check_superclasses(wanted, cifar)
        fine_of = {split: [e.split("/")[-1] for e in entries] for split, entries in wanted.items()}
        present = {cifar.fine_names[i] for i in np.unique(cifar.fine)}
        chosen = select_classes(fine_of, present, self.name, strict)
        index = {name: i for i, name in enumerate(cifar.fine_names)}
        per_split = {split: [(c, resize_batch(cifar.images[cifar.fine == index[c]], size)) for c in names]
                     for split, names in chosen.items()}
        if strict:
            _check_counts(per_split)
        images, labels, class_names, splits = assemble(per_split)
        extra = {"citation": self.citation, "raw": str(folder), "strict": strict, "image_size": size,
                 "split_source": split_sources(self.name), "preprocessing": "train+test files joined"}
        return write_cache(self.cache_dir(root, size), self.name, images, labels, class_names, splits, extra)

    def missing_message(self, root: Path | None = None, image_size: int | None = None) -> str:
        root = Path(root) if root else data_root()
        return (f"the data set {self.name!r} is not prepared (no cache at {self.cache_dir(root, image_size)}). "
                f"Run `bench data prepare {self.name} --root {root}` to download {ARCHIVE.filename} "
                f"({ARCHIVE.urls[0]}, md5 pinned); offline, put that archive or torchvision's {FOLDER}/ "
                f"folder in a folder DIR and run `bench data prepare {self.name} --root {root} --raw DIR`.")


def _check_superclasses(wanted: dict[str, list[str]], cifar: Cifar100) -> None:
    """For ``superclass/class`` entries, the files' coarse labels must agree with the split file."""
    index = {name: i for i, name in enumerate(cifar.fine_names)}
    for entry in (e for entries in wanted.values() for e in entries if "/" in e):
        superclass, fine = entry.split("/")
        found = cifar.coarse[cifar.fine == index.get(fine, -1)]
        if found.size and cifar.coarse_names[int(found[0])] != superclass:
            raise DataError(f"the CIFAR-100 files put {fine!r} in superclass "
                            f"{cifar.coarse_names[int(found[0])]!r}, the FC100 split in {superclass!r}; "
                            f"the meta file does not belong to these data. Replace the files.")


def _check_counts(per_split: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    for name, images in (item for items in per_split.values() for item in items):
        if len(images) != PER_CLASS:
            raise DataError(f"CIFAR-100 class {name!r} has {len(images)} images, not {PER_CLASS}; the "
                            f"files are incomplete. Replace them with the official release.")


@DATASETS.register
class CifarFS(_CifarSplit):
    """CIFAR-FS (Bertinetto et al. 2019): 64 / 16 / 20 CIFAR-100 classes, 600 images each."""

    name = "cifarfs"
    citation = ("Bertinetto, Henriques, Torr & Vedaldi (2019), Meta-learning with differentiable "
                "closed-form solvers, ICLR")
    split_classes = {"train": 64, "val": 16, "test": 20}


@DATASETS.register
class FC100(_CifarSplit):
    """FC100 (Oreshkin et al. 2018): CIFAR-100 split by superclass, 60 / 20 / 20 classes."""

    name = "fc100"
    citation = ("Oreshkin, Rodriguez & Lacoste (2018), TADAM: Task dependent adaptive metric for improved "
                "few-shot learning, NeurIPS")
    split_classes = {"train": 60, "val": 20, "test": 20}
