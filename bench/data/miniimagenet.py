"""miniImageNet (Vinyals et al. 2016) in the split of Ravi & Larochelle (2017): 64 / 16 / 20 classes.

100 ImageNet classes (named by WordNet id) of 600 images each, 84x84 RGB. The class lists are
those of Ravi & Larochelle's split files (``bench/data/splits/miniimagenet.*.txt``); images are
assigned to splits by class, so any of the common distributions gives the same data set:

* the image folder of Ravi & Larochelle's script: ``<raw>/images/<wnid><8 digits>.jpg``, with their
  ``train.csv``/``val.csv``/``test.csv`` (``filename,label``) beside it or not;
* a folder per split and class: ``<raw>/<split>/<wnid>/*.jpg``;
* the pickles ``mini-imagenet-cache-{train,val,test}.pkl`` (dicts with ``image_data`` uint8
  ``(N, 84, 84, 3)`` and ``class_dict`` {wnid: [row indices]}).

There is no public download (ImageNet's licence): the files must be put in place by the user.
Images not already at the target size are resized with a Lanczos filter, as in Ravi & Larochelle's
preprocessing script.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from bench.data.cache import data_root, write_cache
from bench.data.cifar import resize_batch
from bench.data.dataset import ImageDataset
from bench.data.download import load_pickle
from bench.data.source import DataSource
from bench.data.splits import SPLIT_NAMES, assemble, read_split, select_classes, split_sources
from bench.errors import DataError
from bench.registry import DATASETS

PICKLE = "mini-imagenet-cache-{split}.pkl"
EXTENSIONS = (".jpg", ".jpeg", ".png")
PER_CLASS = 600


def read_pickles(raw: Path) -> dict[str, np.ndarray]:
    """wnid -> uint8 ``(n, 3, 84, 84)`` from the three cache pickles."""
    classes = {}
    for split in SPLIT_NAMES:
        path = raw / PICKLE.format(split=split)
        content = load_pickle(path)
        if not isinstance(content, dict) or "image_data" not in content or "class_dict" not in content:
            raise DataError(f"{path} is not a miniImageNet cache pickle (a dict with image_data and "
                            f"class_dict); replace it with the original file.")
        data = np.asarray(content["image_data"])
        if data.dtype != np.uint8 or data.ndim != 4 or data.shape[-1] != 3:
            raise DataError(f"{path} holds image_data {data.dtype} {data.shape}, expected uint8 "
                            f"(N, H, W, 3); the file is corrupt. Replace it.")
        for wnid, rows in content["class_dict"].items():
            rows = np.asarray(rows, dtype=np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= len(data)):
                raise DataError(f"{path} lists rows of {wnid} beyond its {len(data)} images; it is truncated "
                                f"or corrupt. Replace it.")
            classes[str(wnid)] = np.ascontiguousarray(data[rows].transpose(0, 3, 1, 2))
    return classes


def list_images(raw: Path) -> dict[str, list[Path]]:
    """wnid -> image files, from ``images/`` (+ optional CSVs) or ``<split>/<wnid>/`` folders."""
    files: dict[str, list[Path]] = defaultdict(list)
    csvs = [raw / f"{split}.csv" for split in SPLIT_NAMES if (raw / f"{split}.csv").is_file()]
    if (raw / "images").is_dir() and csvs:
        for path in csvs:
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    files[row["label"]].append(raw / "images" / row["filename"])
    elif (raw / "images").is_dir():
        for path in sorted((raw / "images").iterdir()):
            if path.suffix.lower() in EXTENSIONS:
                files[path.name[:9]].append(path)  # names are <wnid: n + 8 digits><index>.jpg
    else:
        for split in SPLIT_NAMES:
            folder = raw / split
            for class_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
                files[class_dir.name] += sorted(p for p in class_dir.iterdir() if p.suffix.lower() in EXTENSIONS)
    return dict(files)


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 ``(3, size, size)``.

    Raises:
        DataError: missing, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}); the miniImageNet copy is damaged or "
                        f"incomplete. Replace the file and prepare again.") from exc
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def decode_classes(files: dict[str, list[Path]], size: int) -> dict[str, np.ndarray]:
    """Decode in parallel (PIL releases the GIL): wnid -> uint8 ``(n, 3, size, size)``."""
    paths = [p for group in files.values() for p in group]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        images = list(pool.map(lambda p: decode_image(p, size), paths))
    decoded, start = {}, 0
    for wnid, group in files.items():
        decoded[wnid] = np.stack(images[start:start + len(group)])
        start += len(group)
    return decoded


@DATASETS.register
class MiniImageNet(DataSource):
    """miniImageNet, Ravi & Larochelle (2017) split: 64 / 16 / 20 classes of 600 images, 84x84 RGB."""

    name: ClassVar[str] = "miniimagenet"
    citation: ClassVar[str] = ("Vinyals et al. (2016), Matching Networks for One Shot Learning, NeurIPS; split of "
                               "Ravi & Larochelle (2017), Optimization as a Model for Few-Shot Learning, ICLR")
    channels: ClassVar[int] = 3
    default_size: ClassVar[int] = 84
    split_classes: ClassVar[dict[str, int]] = {"train": 64, "val": 16, "test": 20}
    samples_per_class: ClassVar[int] = 600

    def prepare(self, root: Path | None = None, image_size: int | None = None,
                raw: Path | None = None, strict: bool = True) -> ImageDataset:
        """Read pickles or an image folder from ``raw`` and write the cache (no download exists)."""
        root = Path(root) if root else data_root()
        size = image_size or self.default_size
        if raw is None:
            raise DataError(self.missing_message(root, image_size))
        raw = Path(raw)
        wanted = read_split(self.name)
        if any((raw / PICKLE.format(split=s)).is_file() for s in SPLIT_NAMES):
            classes = read_pickles(raw)
            chosen = select_classes(wanted, classes, self.name, strict)
            per_split = {s: [(c, resize_batch(classes[c], size)) for c in cs] for s, cs in chosen.items()}
        else:
            files = list_images(raw)
            if not files:
                raise DataError(f"{raw} holds no miniImageNet files. " + self.missing_message(root, image_size))
            chosen = select_classes(wanted, files, self.name, strict)
            decoded = decode_classes({c: files[c] for cs in chosen.values() for c in cs}, size)
            per_split = {s: [(c, decoded[c]) for c in cs] for s, cs in chosen.items()}
        if strict:
            _check_counts(per_split)
        images, labels, class_names, splits = assemble(per_split)
        extra = {"citation": self.citation, "raw": str(raw), "strict": strict, "image_size": size,
                 "split_source": split_sources(self.name)}
        return write_cache(self.cache_dir(root, size), self.name, images, labels, class_names, splits, extra)

    def missing_message(self, root: Path | None = None, image_size: int | None = None) -> str:
        root = Path(root) if root else data_root()
        return (f"the data set 'miniimagenet' is not prepared (no cache at {self.cache_dir(root, image_size)}). "
                f"It has no public download (ImageNet licence): put either the three pickles "
                f"mini-imagenet-cache-train.pkl, -val.pkl and -test.pkl, or Ravi & Larochelle's images/ folder "
                f"(with train.csv, val.csv, test.csv), or train/, val/, test/ folders of <wnid>/*.jpg, in a "
                f"folder DIR, then run `bench data prepare miniimagenet --root {root} --raw DIR` "
                f"(see docs/datasets.md).")


def _check_counts(per_split: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    for wnid, images in (item for items in per_split.values() for item in items):
        if len(images) != PER_CLASS:
            raise DataError(f"miniImageNet class {wnid} has {len(images)} images, not {PER_CLASS}; the copy is "
                            f"incomplete. Put the complete files in place and prepare again.")
