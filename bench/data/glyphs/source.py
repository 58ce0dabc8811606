"""The embedded ``glyphs`` data set: Unicode characters rendered from matplotlib's own fonts.

An Omniglot-like few-shot benchmark (Lake et al., 2015, "Human-level concept learning through
probabilistic program induction", Science 350(6266)) that needs no download: a class is one
Unicode character, its 20 samples are that character drawn by different fonts (the DejaVu
family, derived from Bitstream Vera, and the STIX fonts of the STI Pub consortium, both shipped
in ``matplotlib/mpl-data/fonts/ttf``) with seeded affine and stroke-width jitter. As Omniglot
splits alphabets, whole scripts (letters) or Unicode blocks (symbols) go to one split, so test
classes come from scripts never seen in training.

Deviations from Omniglot: samples differ by typeface, not by hand; glyphs are scaled to fit
(size and baseline carry no information); pixels are white ink on black (255 = ink), the
reverse of Omniglot's PNGs. Images are uint8 ``(N, 1, S, S)``, class-major, 20 per class.

The code is split by job, and every public name is importable from here: the rules and
constants (`bench.data.glyphs.rules`), drawing glyphs from fonts (`bench.data.glyphs.render`),
jitter and downsampling (`bench.data.glyphs.jitter`), choosing the classes
(`bench.data.glyphs.classes`), naming them and assigning splits (`bench.data.glyphs.splits`),
building the data set in memory (`bench.data.glyphs.build`); this module registers the source.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import ClassVar

from bench.data.cache import write_cache
from bench.data.dataset import ImageDataset
from bench.data.glyphs.build import GlyphsBuild, build_glyphs, class_plan, render_samples
from bench.data.glyphs.classes import coverage, drop_lookalikes, lookalike_pairs, reference_images, select_classes
from bench.data.glyphs.jitter import jitter_params, transform
from bench.data.glyphs.render import font_files, render_glyph
from bench.data.glyphs.rules import (
    CATEGORIES,
    FILL,
    FONT_FAMILIES,
    JITTER,
    LOOKALIKE_CORRELATION,
    LOOKALIKE_MAX_DIFF,
    MIN_FONTS,
    REFERENCE_FONT,
    REFERENCE_SIZE,
    SAMPLES_PER_CLASS,
    SEED,
    TEST_GROUPS,
    VAL_GROUPS,
    Fonts,
    Jitter,
)
from bench.data.glyphs.splits import class_name, code_point_of, script_group, split_of
from bench.data.source import DataSource
from bench.registry import DATASETS

__all__ = [
    "CATEGORIES", "FILL", "FONT_FAMILIES", "JITTER", "LOOKALIKE_CORRELATION", "LOOKALIKE_MAX_DIFF", "MIN_FONTS",
    "REFERENCE_FONT", "REFERENCE_SIZE", "SAMPLES_PER_CLASS", "SEED", "TEST_GROUPS", "VAL_GROUPS",
    "Fonts", "GlyphsBuild", "GlyphsSource", "Jitter",
    "build_glyphs", "class_name", "class_plan", "code_point_of", "coverage", "drop_lookalikes", "font_files",
    "jitter_params", "lookalike_pairs", "reference_images", "render_glyph", "render_samples", "script_group",
    "select_classes", "split_of", "transform",
]


@DATASETS.register
class GlyphsSource(DataSource):
    """The embedded Omniglot-like glyph set; it builds itself offline in well under a minute."""

    name: ClassVar[str] = "glyphs"
    citation: ClassVar[str] = ("Lake, Salakhutdinov & Tenenbaum (2015), Human-level concept learning through "
                               "probabilistic program induction, Science 350(6266) (Omniglot, the model); glyphs "
                               "from the DejaVu and STIX fonts bundled with matplotlib")
    channels: ClassVar[int] = 1
    default_size: ClassVar[int] = 28
    split_classes: ClassVar[dict[str, int]] = {"train": 1380, "val": 323, "test": 436}
    resizable: ClassVar[bool] = True  # rendered at any size

    def prepare(self, root: Path | None = None, image_size: int | None = None,
                raw: Path | None = None) -> ImageDataset:
        """Render the glyphs and write the cache; ``raw`` may name a folder holding the fonts."""
        size = image_size or self.default_size
        built = build_glyphs(size, font_dir=raw)
        return write_cache(self.cache_dir(root, size), self.name, built.images, built.labels,
                           built.class_names, built.splits, built.extra)

    def missing_message(self, root: Path | None = None, image_size: int | None = None) -> str:
        return (f"the glyphs data set is not prepared at {self.cache_dir(root, image_size)}. It needs no "
                f"download: run `bench data prepare glyphs` (under a minute), or simply use it, since "
                f"commands that need it build it automatically.")

    def ensure(self, root: Path | None = None, image_size: int | None = None) -> ImageDataset:
        """Load the cache, building it first when it is not there."""
        if self.is_prepared(root, image_size):
            return self.load(root, image_size)
        directory = self.cache_dir(root, image_size)
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / ".build.lock").open("w") as lock:
            # Parallel workers share the data root: one builds, the others wait, then load.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_prepared(root, image_size):
                return self.load(root, image_size)
            return self.prepare(root, image_size)
