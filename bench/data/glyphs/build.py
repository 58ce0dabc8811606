"""Building the glyphs data set in memory: per-class sample plans, rendering, splits, provenance.

Part of the embedded glyphs data set (`bench.data.glyphs.source`); `GlyphsBuild` holds what
`bench.data.cache.write_cache` then writes.
"""

from __future__ import annotations

import platform
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fontTools
import matplotlib
import numpy as np
import torch
from matplotlib import ft2font

from bench.data.glyphs.classes import select_classes
from bench.data.glyphs.jitter import jitter_params, transform
from bench.data.glyphs.render import _render_bank, font_files
from bench.data.glyphs.rules import (
    _CHUNK_PIXELS,
    CATEGORIES,
    FILL,
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
)
from bench.data.glyphs.splits import class_name, split_of


def class_plan(code_point: int, font_ids: list[int], seed: int = SEED) -> tuple[list[int], np.ndarray]:
    """The fonts and jitter of one class's samples, drawn from a stream seeded by (seed, code
    point) alone so that a class's images do not depend on which other classes are built."""
    rng = np.random.default_rng([seed, code_point])
    order = [font_ids[i] for i in rng.permutation(len(font_ids))]
    return [order[k % len(order)] for k in range(SAMPLES_PER_CLASS)], jitter_params(rng, SAMPLES_PER_CLASS)


def render_samples(fonts: Fonts, classes: dict[int, dict[int, float]], size: int, seed: int = SEED) -> torch.Tensor:
    """All samples, class-major: uint8 ``(len(classes) * SAMPLES_PER_CLASS, 1, size, size)``."""
    per_chunk = max(1, _CHUNK_PIXELS // (SAMPLES_PER_CLASS * (2 * size) ** 2))
    items = list(classes.items())
    images = torch.empty(len(items) * SAMPLES_PER_CLASS, 1, size, size, dtype=torch.uint8)
    for start in range(0, len(items), per_chunk):
        plans = {cp: class_plan(cp, sorted(sides), seed) for cp, sides in items[start:start + per_chunk]}
        wanted = [(font, cp, classes[cp][font]) for cp, (chosen, _) in plans.items() for font in chosen]
        jobs = sorted(set(wanted))
        bank, geometry = _render_bank(fonts, jobs, 2 * size)
        row = {job: i for i, job in enumerate(jobs)}
        index = [row[job] for job in wanted]
        params = np.concatenate([jitter for _, jitter in plans.values()])
        first = start * SAMPLES_PER_CLASS
        images[first:first + len(index)] = transform(bank[index], geometry[index], params, size)
    return images


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch single-threaded: the build makes many short parallel regions, and on shared
    cores a second thread spins waiting for them (measured 1.5-2x slower on 2 busy cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class GlyphsBuild:
    """What `build_glyphs` returns: the arguments of `bench.data.cache.write_cache`, in order."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    splits: dict[str, list[str]]
    extra: dict[str, Any]


def build_glyphs(image_size: int = 28, code_points: list[int] | None = None, max_classes: int | None = None,
                 font_dir: Path | None = None, seed: int = SEED) -> GlyphsBuild:
    """Build the data set in memory.

    Args:
        image_size: side ``S`` of the uint8 ``(N, 1, S, S)`` images (255 = ink).
        code_points: only consider these characters (tests); every rule still applies.
        max_classes: keep only the first kept classes in code-point order (tests).
        font_dir: a folder of DejaVu/STIX ``.ttf`` files to use instead of matplotlib's.
        seed: root of the per-class jitter streams.
    """
    paths = font_files(font_dir)
    fonts = [ft2font.FT2Font(str(p)) for p in paths]
    with _one_torch_thread():
        classes = select_classes(fonts, [p.name for p in paths], code_points)
        classes = dict(list(classes.items())[:max_classes])
        images = render_samples(fonts, classes, image_size, seed)
    names = [class_name(cp) for cp in classes]
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cp, name in zip(classes, names, strict=True):
        splits[split_of(cp)].append(name)
    build = {"image_size": image_size, "seed": seed, "code_points": code_points, "max_classes": max_classes}
    return GlyphsBuild(images, torch.arange(len(names)).repeat_interleave(SAMPLES_PER_CLASS),
                       names, splits, _provenance(paths, build))


def _provenance(paths: list[Path], build: dict[str, Any]) -> dict[str, Any]:
    rules = {"samples_per_class": SAMPLES_PER_CLASS, "min_fonts": MIN_FONTS, "categories": list(CATEGORIES),
             "reference_font": REFERENCE_FONT, "reference_size": REFERENCE_SIZE, "fill": FILL,
             "lookalike_correlation": LOOKALIKE_CORRELATION, "lookalike_max_diff": LOOKALIKE_MAX_DIFF,
             "jitter": asdict(JITTER), "val_groups": list(VAL_GROUPS), "test_groups": list(TEST_GROUPS)}
    versions = {"matplotlib": matplotlib.__version__, "freetype": ft2font.__freetype_version__,
                "torch": torch.__version__, "numpy": np.__version__, "fonttools": fontTools.version,
                "unicodedata": unicodedata.unidata_version, "python": platform.python_version()}
    return {"source": "glyphs drawn from the DejaVu and STIX fonts bundled with matplotlib",
            "pixels": "255 = ink (white glyph on black)", "fonts": [p.name for p in paths],
            "build": {**build, **rules}, "versions": versions}
