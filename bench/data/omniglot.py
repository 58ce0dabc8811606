"""Omniglot (Lake, Salakhutdinov & Tenenbaum 2015, Science 350(6266)) in its three few-shot protocols.

* ``omniglot``: the split of Vinyals et al. (2016, Matching Networks): 1,200 training characters,
  the other 423 for test, every character also rotated by 90, 180 and 270 degrees as a new class.
  Validation is the part of the 1,200 that Snell et al. (2017, Prototypical Networks) hold out:
  1,028 train + 172 val characters, i.e. 4,112 / 688 / 1,692 classes with the rotations.
* ``omniglot-lake``: Lake et al.'s own split: the 30 background alphabets (964 characters) for
  training, the 20 evaluation alphabets (659 characters) for test; no validation alphabets.
* ``omniglot-minimal``: the two five-alphabet background sets ``images_background_small1/2``:
  train on small1 except Greek (112 characters), val on Greek (24), test on small2's alphabets
  that small1 lacks (katakana, Sanskrit, Tagalog: 106). No rotations.

Raw files: torchvision's layout ``omniglot-py/images_background/<Alphabet>/characterNN/*.png`` (or
the set folders directly, or their zips) in the folder given as ``raw``; without ``raw`` the zips
are downloaded from github.com/brendenlake/omniglot (checksums pinned) into
``<root>/raw/omniglot``. Images are 105x105 one-bit PNGs; they are resized with an area (box)
filter, the exact average over each output pixel's footprint, and inverted so strokes are bright
on black, as in Snell et al.'s loader and like MNIST. Rotating after resizing gives the same
pixels as rotating first, because the box footprints are symmetric under 90-degree turns.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from bench.data.cache import data_root, write_cache
from bench.data.dataset import ImageDataset
from bench.data.download import Resource, download, safe_extract, verify_file
from bench.data.source import DataSource
from bench.data.splits import assemble, read_split, select_classes, split_sources
from bench.errors import DataError
from bench.registry import DATASETS

URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
# md5 of the two full sets as pinned by torchvision.datasets.Omniglot; sha256 of the small sets
# computed on the copies of the official zips in this project's shared data folder.
RESOURCES = {
    "images_background": Resource("images_background.zip", (URL + "images_background.zip",),
                                  md5="68d2efa1b9178cc56df9314c21c6e718"),
    "images_evaluation": Resource("images_evaluation.zip", (URL + "images_evaluation.zip",),
                                  md5="6b91aef0f799c5bb55b94e3f2daec811"),
    "images_background_small1": Resource(
        "images_background_small1.zip", (URL + "images_background_small1.zip",),
        sha256="f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
    "images_background_small2": Resource(
        "images_background_small2.zip", (URL + "images_background_small2.zip",),
        sha256="3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
}
DRAWERS = 20
CITATION = "Lake, Salakhutdinov & Tenenbaum (2015), Human-level concept learning through " \
           "probabilistic program induction, Science 350(6266)"


def locate_set(set_name: str, raw: Path, staging: Path) -> Path | None:
    """The folder of one image set under ``raw``, unpacking its zip into ``staging`` if needed."""
    for folder in (raw / "omniglot-py" / set_name, raw / set_name):
        if folder.is_dir():
            return folder
    for archive in (raw / "omniglot-py" / f"{set_name}.zip", raw / f"{set_name}.zip"):
        if archive.is_file():
            verify_file(archive, RESOURCES[set_name])
            safe_extract(archive, staging)
            if (staging / set_name).is_dir():
                return staging / set_name
            raise DataError(f"{archive} does not contain the folder {set_name}/; it is not the official "
                            f"Omniglot zip. Download it again from {RESOURCES[set_name].urls[0]}.")
    return None


def fetch_set(set_name: str, raw: Path | None, staging: Path) -> Path:
    """The folder of one image set: from ``raw``, else unpacked or downloaded into ``staging``."""
    if raw is not None:
        found = locate_set(set_name, Path(raw), staging)
        if found is None:
            raise DataError(f"{raw} holds neither {set_name}/ nor {set_name}.zip (also looked in "
                            f"{raw}/omniglot-py). Put the official {set_name}.zip there "
                            f"({RESOURCES[set_name].urls[0]}) and run the command again.")
        return found
    found = locate_set(set_name, staging, staging)
    if found is None:
        download(RESOURCES[set_name], staging)
        found = locate_set(set_name, staging, staging)
    assert found is not None
    return found


def list_characters(folder: Path) -> dict[str, list[Path]]:
    """``"Alphabet/characterNN"`` -> its PNG files, sorted, for one image-set folder."""
    characters = {}
    for alphabet in sorted(p for p in folder.iterdir() if p.is_dir()):
        for character in sorted(p for p in alphabet.iterdir() if p.is_dir()):
            characters[f"{alphabet.name}/{character.name}"] = sorted(character.glob("*.png"))
    return characters


def decode_glyph(path: Path, size: int) -> np.ndarray:
    """One Omniglot PNG -> uint8 ``(size, size)``, strokes bright (255) on black (0).

    Raises:
        DataError: the file is not a readable image (truncated, corrupt, not a PNG).
    """
    try:
        with Image.open(path) as image:
            gray = image.convert("L")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}); the Omniglot copy is damaged. Delete "
                        f"its folder (or zip) and unpack or download it again.") from exc
    if gray.size != (size, size):
        gray = gray.resize((size, size), Image.Resampling.BOX)
    return 255 - np.asarray(gray, dtype=np.uint8)


def decode_characters(characters: dict[str, list[Path]], size: int) -> dict[str, np.ndarray]:
    """Decode every character's drawings in parallel: name -> uint8 ``(n, 1, size, size)``."""
    paths = [p for files in characters.values() for p in files]
    # PIL releases the GIL while decoding and resizing, so threads give a real speed-up.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        glyphs = list(pool.map(lambda p: decode_glyph(p, size), paths))
    decoded, start = {}, 0
    for name, files in characters.items():
        decoded[name] = np.stack(glyphs[start:start + len(files)])[:, None]
        start += len(files)
    return decoded


class _Omniglot(DataSource):
    """The shared preparation of the three Omniglot protocols (configured by class attributes).

    Attributes:
        sets: split -> the image-set folder its characters come from.
        by_alphabet: the split files list alphabets (True) or characters (False).
        rotations: degrees; more than ``(0,)`` makes each rotation its own class.
    """

    citation: ClassVar[str] = CITATION
    channels: ClassVar[int] = 1
    default_size: ClassVar[int] = 28
    # The raw drawings are 105x105: any size up to that is a resize of the same files (Koch et
    # al. 2015 and Lake et al. 2015 work at 105; the few-shot papers at 28).
    resizable: ClassVar[bool] = True
    sets: ClassVar[dict[str, tuple[str, ...]]]
    by_alphabet: ClassVar[bool] = True
    rotations: ClassVar[tuple[int, ...]] = (0,)
    groupings: ClassVar[tuple[str, ...]] = ("alphabet",)

    def class_group(self, grouping: str, class_name: str) -> str:
        """The alphabet of ``Alphabet/characterNN[/rotDDD]`` (a rotated character stays in it)."""
        if grouping != "alphabet":
            return super().class_group(grouping, class_name)
        return class_name.split("/")[0]

    def prepare(self, root: Path | None = None, image_size: int | None = None,
                raw: Path | None = None, strict: bool = True) -> ImageDataset:
        """Read the raw PNGs, apply the split, write the cache (``strict=False``: partial sets)."""
        root = Path(root) if root else data_root()
        size = image_size or self.default_size
        folders = self._fetch_sets(raw, root / "raw" / "omniglot")
        chosen = self._choose({s: list_characters(f) for s, f in folders.items()}, strict)
        decoded = decode_characters({c: p for split in chosen.values() for c, p in split.items()}, size)
        per_split = {split: [item for c in chars for item in self._rotate(c, decoded[c])]
                     for split, chars in chosen.items()}
        images, labels, class_names, splits = assemble(per_split)
        extra = {"citation": self.citation, "raw": str(raw or root / "raw" / "omniglot"), "strict": strict,
                 "image_size": size, "split_source": split_sources(self.name),
                 "preprocessing": "box-filter resize, inverted (strokes 255)"}
        return write_cache(self.cache_dir(root, size), self.name, images, labels, class_names, splits, extra)

    def _fetch_sets(self, raw: Path | None, staging: Path) -> dict[str, Path]:
        """Every image set's folder; a failure names all the archives this data set needs."""
        needed = sorted({s for sets in self.sets.values() for s in sets})
        try:
            return {s: fetch_set(s, raw, staging) for s in needed}
        except DataError as exc:
            zips = " and ".join(f"{s}.zip" for s in needed)
            raise DataError(f"the data set {self.name!r} needs {zips} ({URL}); {exc}") from exc

    def _choose(self, listing: dict[str, dict[str, list[Path]]], strict: bool) -> dict[str, dict[str, list[Path]]]:
        """Split -> {character: PNG files} following the shipped split lists."""
        wanted = read_split(self.name)
        pools = {split: {c: p for s in self.sets[split] for c, p in listing[s].items()} for split in wanted}
        key = (lambda c: c.split("/")[0]) if self.by_alphabet else (lambda c: c)
        present = {split: {key(c) for c in pool} for split, pool in pools.items()}
        selected = select_classes(wanted, present, self.name, strict, by_split=True)
        chosen = {}
        for split, entries in selected.items():
            order = {e: i for i, e in enumerate(entries)}
            chars = sorted((c for c in pools[split] if key(c) in order), key=lambda c: (order[key(c)], c))
            chosen[split] = {c: pools[split][c] for c in chars}
        if strict:
            _check_drawers(chosen)
        # A character folder without PNGs has nothing to sample; only a partial set can get here.
        return {split: {c: p for c, p in chars.items() if p} for split, chars in chosen.items()}

    def _rotate(self, character: str, images: np.ndarray) -> list[tuple[str, np.ndarray]]:
        if self.rotations == (0,):
            return [(character, images)]
        return [(f"{character}/rot{r:03d}", np.ascontiguousarray(np.rot90(images, r // 90, axes=(-2, -1))))
                for r in self.rotations]

    def missing_message(self, root: Path | None = None, image_size: int | None = None) -> str:
        root = Path(root) if root else data_root()
        needed = sorted({s for sets in self.sets.values() for s in sets})
        zips = " and ".join(f"{s}.zip" for s in needed)
        return (f"the data set {self.name!r} is not prepared (no cache at {self.cache_dir(root, image_size)}). "
                f"Run `bench data prepare {self.name} --root {root}` to download {zips} from "
                f"github.com/brendenlake/omniglot (checksums pinned); offline, put {zips} (or torchvision's "
                f"omniglot-py folder) in a folder DIR and run `bench data prepare {self.name} --root {root} "
                f"--raw DIR`.")


def _check_drawers(chosen: dict[str, dict[str, list[Path]]]) -> None:
    for characters in chosen.values():
        for name, files in characters.items():
            if len(files) != DRAWERS:
                raise DataError(f"the Omniglot character {name} has {len(files)} drawings instead of "
                                f"{DRAWERS}; the copy is incomplete. Unpack or download it again.")


@DATASETS.register
class OmniglotVinyals(_Omniglot):
    """Vinyals et al. (2016) split with rotations; val as in Snell et al. (2017)."""

    name = "omniglot"
    citation = CITATION + "; split of Vinyals et al. (2016), Matching Networks for One Shot Learning, NeurIPS"
    split_classes = {"train": 4112, "val": 688, "test": 1692}
    sets = {s: ("images_background", "images_evaluation") for s in ("train", "val", "test")}
    by_alphabet = False
    rotations = (0, 90, 180, 270)


@DATASETS.register
class OmniglotLake(_Omniglot):
    """Lake et al. (2015): background alphabets for training, evaluation alphabets for test."""

    name = "omniglot-lake"
    split_classes = {"train": 964, "val": 0, "test": 659}
    sets = {"train": ("images_background",), "val": ("images_background",), "test": ("images_evaluation",)}


@DATASETS.register
class OmniglotMinimal(_Omniglot):
    """The two minimal background sets: train/val from small1, unseen alphabets of small2 for test."""

    name = "omniglot-minimal"
    split_classes = {"train": 112, "val": 24, "test": 106}
    sets = {"train": ("images_background_small1",), "val": ("images_background_small1",),
            "test": ("images_background_small2",)}
