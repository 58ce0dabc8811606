"""MNIST (LeCun, Bottou, Bengio & Haffner 1998) as a cross-domain few-shot test set.

All 10 digit classes are in the ``test`` split; ``train`` and ``val`` are empty, because MNIST
here only measures how a model meta-trained elsewhere (Omniglot, say) transfers to a new domain.
The images are MNIST's own test set (``t10k-*``, 10,000 digits, about 1,000 per class); the 60,000
training digits are not needed. 28x28, one channel, white digits on black (as stored).

Raw files: torchvision's ``MNIST/raw/t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``,
unpacked or ``.gz``; without ``raw`` the ``.gz`` files are downloaded (md5 pinned, as in
torchvision) into ``<root>/raw/mnist``. The IDX format is a big-endian header (magic number
``0x0803`` for 3-d uint8 images, ``0x0801`` for 1-d labels, then one int32 per dimension) followed
by the raw bytes; both are checked, so a truncated or foreign file gets a clear error.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from bench.data.cache import data_root, write_cache
from bench.data.cifar import resize_batch
from bench.data.dataset import ImageDataset
from bench.data.download import Resource, download, verify_file
from bench.data.source import DataSource
from bench.data.splits import assemble
from bench.errors import DataError
from bench.registry import DATASETS

MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
# md5 of the compressed files, as pinned by torchvision.datasets.MNIST.
RESOURCES = {
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
IMAGE_MAGIC, LABEL_MAGIC = 0x0803, 0x0801
TEST_COUNT = 10_000


def resource(stem: str) -> Resource:
    return Resource(f"{stem}.gz", tuple(m + f"{stem}.gz" for m in MIRRORS), md5=RESOURCES[stem])


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (``.gz`` or not) as a uint8 array of the shape in its header.

    Raises:
        DataError: unreadable, wrong magic number, or fewer/more bytes than the header announces.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} cannot be read ({exc}); the file is truncated or corrupt. Delete it and "
                        f"download it again.") from exc
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim or int.from_bytes(raw[:4], "big") != magic:
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise DataError(f"{path} is not an IDX file of this kind (magic number {found!r}, expected "
                        f"{magic:#06x}); it is another file or corrupt. Replace it with the MNIST file.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path} announces {shape} values but holds {len(body)} bytes: it is truncated or "
                        f"corrupt. Delete it and download it again.")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def locate(stem: str, raw: Path | None, staging: Path, strict: bool) -> Path:
    """The file ``stem`` (unpacked or ``.gz``) in ``raw``'s usual layouts, or downloaded."""
    base = Path(raw) if raw is not None else staging
    for folder in (base / "MNIST" / "raw", base / "raw", base):
        for path in (folder / stem, folder / f"{stem}.gz"):
            if path.is_file():
                if strict and path.suffix == ".gz":
                    verify_file(path, resource(stem))
                return path
    if raw is not None:
        raise DataError(f"{raw} holds no {stem} or {stem}.gz (also looked in MNIST/raw/). Put torchvision's "
                        f"MNIST files there ({MIRRORS[0]}{stem}.gz) and run the command again.")
    return download(resource(stem), staging)


@DATASETS.register
class Mnist(DataSource):
    """MNIST's 10,000 test digits, all 10 classes in the ``test`` split (cross-domain evaluation)."""

    name: ClassVar[str] = "mnist"
    citation: ClassVar[str] = ("LeCun, Bottou, Bengio & Haffner (1998), Gradient-based learning applied to "
                               "document recognition, Proc. IEEE 86(11)")
    channels: ClassVar[int] = 1
    default_size: ClassVar[int] = 28
    split_classes: ClassVar[dict[str, int]] = {"train": 0, "val": 0, "test": 10}
    samples_per_class: ClassVar[int] = 892  # the rarest test digit (5) has 892 images

    def prepare(self, root: Path | None = None, image_size: int | None = None,
                raw: Path | None = None, strict: bool = True) -> ImageDataset:
        """Read the IDX test files and write the cache (``strict=False`` accepts a partial set)."""
        root = Path(root) if root else data_root()
        size = image_size or self.default_size
        staging = root / "raw" / "mnist"
        images_path = locate("t10k-images-idx3-ubyte", raw, staging, strict)
        labels_path = locate("t10k-labels-idx1-ubyte", raw, staging, strict)
        images, labels = read_idx(images_path, IMAGE_MAGIC), read_idx(labels_path, LABEL_MAGIC)
        if len(images) != len(labels) or (strict and len(images) != TEST_COUNT) or labels.max(initial=0) > 9:
            raise DataError(f"{images_path} has {len(images)} images and {labels_path} {len(labels)} labels "
                            f"(max {labels.max(initial=0)}); MNIST's test set has {TEST_COUNT} of each, labels "
                            f"0-9. The files do not belong together; replace them.")
        pixels = resize_batch(np.ascontiguousarray(images[:, None]), size)
        groups = [(str(d), pixels[labels == d]) for d in range(10) if (labels == d).any()]
        if strict and len(groups) != 10:
            raise DataError(f"{labels_path} labels only {len(groups)} of the 10 digits; it is not MNIST's "
                            f"test set. Replace the files and prepare again.")
        stacked, ids, class_names, splits = assemble({"test": groups})
        extra = {"citation": self.citation, "raw": str(images_path.parent), "strict": strict,
                 "image_size": size, "split_source": ["MNIST t10k test set, all 10 classes in test"]}
        return write_cache(self.cache_dir(root, size), self.name, stacked, ids, class_names, splits, extra)

    def missing_message(self, root: Path | None = None, image_size: int | None = None) -> str:
        root = Path(root) if root else data_root()
        return (f"the data set 'mnist' is not prepared (no cache at {self.cache_dir(root, image_size)}). Run "
                f"`bench data prepare mnist --root {root}` to download t10k-images-idx3-ubyte.gz and "
                f"t10k-labels-idx1-ubyte.gz ({MIRRORS[0]}, md5 pinned); offline, put those two files (or "
                f"torchvision's MNIST/raw folder) in a folder DIR and run `bench data prepare mnist --root "
                f"{root} --raw DIR`.")
