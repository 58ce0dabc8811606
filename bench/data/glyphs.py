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
"""

from __future__ import annotations

import fcntl
import math
import platform
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import fontTools
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from fontTools import unicodedata as ucd
from matplotlib import ft2font

from bench.data.cache import write_cache
from bench.data.dataset import ImageDataset
from bench.data.source import DataSource
from bench.errors import DataError
from bench.registry import DATASETS

FONT_FAMILIES = ("DejaVu", "STIX")
REFERENCE_FONT = "DejaVuSans.ttf"
MIN_FONTS = 10
SAMPLES_PER_CLASS = 20
REFERENCE_SIZE = 28
FILL = 0.8  # the glyph's longer side as a fraction of the image, before jitter
LOOKALIKE_CORRELATION = 0.95
LOOKALIKE_MAX_DIFF = 127  # uint8 levels: look-alikes differ nowhere by half the ink range
SEED = 2015
VAL_GROUPS = ("Greek", "Georgian")
TEST_GROUPS = ("Cyrillic", "Armenian", "Arrows", "Geometric Shapes", "Miscellaneous Technical", "Number Forms")
CATEGORIES = ("L", "N", "P", "S")  # not whitespace (Z), control/format/private (C), combining (M)
_IDENTITY = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
_CHUNK_PIXELS = 1 << 22  # float pixels per augmentation batch: 16 MB per intermediate tensor
# Hinting snaps outlines to one size's pixel grid; glyphs are rescaled, so keep true shapes.
_FLAGS = ft2font.LoadFlags.NO_HINTING
Fonts = list[ft2font.FT2Font]


@dataclass(frozen=True)
class Jitter:
    """Ranges of the uniform per-sample jitter; stroke < 0 thins (erosion), > 0 thickens (dilation)."""

    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.85, 1.1)
    shear: float = 0.2
    translate: float = 0.06  # fraction of the image side
    stroke: tuple[float, float] = (-0.6, 0.8)


JITTER = Jitter()


def font_files(directory: Path | None = None) -> list[Path]:
    """The DejaVu and STIX ``.ttf`` files, sorted by name (default: matplotlib's bundled fonts)."""
    if directory is None:
        directory = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = sorted(p for p in Path(directory).glob("*.ttf") if p.name.startswith(FONT_FAMILIES))
    if len(paths) < MIN_FONTS or REFERENCE_FONT not in [p.name for p in paths]:
        raise DataError(f"the glyphs data set is drawn from the DejaVu and STIX fonts that ship with matplotlib, "
                        f"but {directory} holds {len(paths)} of them (at least {MIN_FONTS}, {REFERENCE_FONT} "
                        f"among them, are needed). Reinstall matplotlib (`pip install --force-reinstall "
                        f"matplotlib`) or pass a folder holding those .ttf files as the raw directory.")
    return paths


def _outline_side(font: ft2font.FT2Font, code_point: int) -> float:
    """Longer side in pixels of the glyph's outline at 32 px per em; 0 for a blank glyph."""
    font.set_size(32, 72)
    glyph = font.load_char(code_point, _FLAGS)
    if glyph.width <= 0 or glyph.height <= 0:
        return 0.0
    return float(max(glyph.width, glyph.height)) / 64


def coverage(fonts: Fonts, code_points: list[int] | None = None) -> dict[int, dict[int, float]]:
    """Candidate classes, ascending: code point -> {index of a font drawing it: `_outline_side`},
    for the characters that at least ``MIN_FONTS`` fonts draw."""
    covered: dict[int, list[int]] = {}
    for index, font in enumerate(fonts):
        for code_point, glyph_id in font.get_charmap().items():
            if glyph_id != 0:  # glyph 0 is .notdef, the "missing character" box
                covered.setdefault(code_point, []).append(index)
    wanted = set(covered if code_points is None else code_points)
    result = {}
    for code_point in sorted(wanted & covered.keys()):
        if unicodedata.category(chr(code_point))[0] in CATEGORIES and len(covered[code_point]) >= MIN_FONTS:
            sides = {i: _outline_side(fonts[i], code_point) for i in covered[code_point]}
            drawn = {i: side for i, side in sides.items() if side > 0}
            if len(drawn) >= MIN_FONTS:
                result[code_point] = drawn
    return result


def render_glyph(font: ft2font.FT2Font, code_point: int, canvas: int,
                 side: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Draw one glyph, longer side about ``FILL * canvas`` px, ink box centred on a square canvas.

    ``side`` is the glyph's `_outline_side` when the caller already knows it.

    Returns:
        ``(image, geometry)``: uint8 ``(canvas, canvas)`` with 255 = ink, and float64 ``(3,)``:
        the ink box's centre x, y in ``grid_sample`` coordinates and its longer side in pixels.
        ``None`` if nothing is drawn.
    """
    side = _outline_side(font, code_point) if side is None else side
    if side <= 0:
        return None
    font.set_size(32 * FILL * canvas / side, 72)
    # set_text sizes the bitmap itself; draw_glyph_to_bitmap is faster, but where it places
    # the glyph has changed between matplotlib releases.
    font.set_text(chr(code_point), 0.0, _FLAGS)
    font.draw_glyphs_to_bitmap(antialiased=True)
    bitmap = np.asarray(font.get_image())
    rows, cols = np.nonzero(bitmap.any(1))[0], np.nonzero(bitmap.any(0))[0]
    if rows.size == 0:
        return None
    ink = bitmap[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1][:canvas, :canvas]
    height, width = ink.shape
    top, left = (canvas - height) // 2, (canvas - width) // 2
    image = np.zeros((canvas, canvas), np.uint8)
    image[top:top + height, left:left + width] = ink
    centre = np.array([left + (width - 1) / 2, top + (height - 1) / 2])
    return image, np.array([*((2 * centre + 1) / canvas - 1), max(height, width)])


def _render_bank(fonts: Fonts, jobs: list[tuple[int, int, float]], canvas: int) -> tuple[torch.Tensor, np.ndarray]:
    """Render ``(font index, code point, side)`` jobs: uint8 ``(M, 1, canvas, canvas)``, geometry ``(M, 3)``."""
    bank = np.zeros((len(jobs), 1, canvas, canvas), np.uint8)
    geometry = np.tile([0.0, 0.0, 1.0], (len(jobs), 1))
    for row, (font_index, code_point, side) in enumerate(jobs):
        drawn = render_glyph(fonts[font_index], code_point, canvas, side)
        if drawn is not None:
            bank[row, 0], geometry[row] = drawn
    return torch.from_numpy(bank), geometry


def jitter_params(rng: np.random.Generator, count: int) -> np.ndarray:
    """Per-sample jitter ``(count, 6)``: rotation (rad), scale, x-shear, shift x, shift y, stroke."""
    rotate, shear, shift = math.radians(JITTER.rotate_deg), JITTER.shear, JITTER.translate
    low = np.array([-rotate, JITTER.scale[0], -shear, -shift, -shift, JITTER.stroke[0]])
    high = np.array([rotate, JITTER.scale[1], shear, shift, shift, JITTER.stroke[1]])
    return low + (high - low) * rng.random((count, 6))


def _theta(geometry: np.ndarray, params: np.ndarray, canvas: int) -> torch.Tensor:
    """``affine_grid`` matrices ``(B, 2, 3)``, output -> source coordinates.

    The forward map is scale * rotation * shear about the ink centre, then a shift; sampling
    needs its inverse, written in closed form so that it is exact and batched.
    """
    rotate, shear, shift = params[:, 0], params[:, 2], params[:, 3:5]
    scale = params[:, 1] * FILL * canvas / geometry[:, 2]
    cos, sin = np.cos(rotate), np.sin(rotate)
    inverse = np.stack([np.stack([cos + shear * sin, sin - shear * cos], -1),
                        np.stack([-sin, cos], -1)], 1) / scale[:, None, None]
    offset = geometry[:, :2] - np.einsum("bij,bj->bi", inverse, 2 * shift)
    return torch.from_numpy(np.concatenate([inverse, offset[:, :, None]], 2)).float()


def transform(bank: torch.Tensor, geometry: np.ndarray, params: np.ndarray, size: int) -> torch.Tensor:
    """Jitter and downsample a batch: uint8 ``(B, 1, 2S, 2S)`` canvases -> uint8 ``(B, 1, S, S)``.

    Geometry is resampled (``grid_sample``, bilinear) at twice the output size, where strokes are thickened (3x3 max,
    dilation) or thinned (3x3 min, erosion) by a per-sample fraction; 2x2 means anti-alias.
    """
    grid = _affine_grid(_theta(geometry, params, bank.shape[-1]), bank.shape[-1])
    image = F.grid_sample(bank.float() / 255, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    stroke = torch.from_numpy(params[:, 5]).float().view(-1, 1, 1, 1)
    dilated, eroded = _max3x3(image), -_max3x3(-image)
    image = image + stroke.clamp(min=0) * (dilated - image) + (-stroke).clamp(min=0) * (eroded - image)
    image = F.avg_pool2d(image, 2)
    # Thinning can leave hairlines faint; every image gets full-contrast ink.
    image = image / image.amax((1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (image * 255).round().clamp(0, 255).to(torch.uint8)


def _affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, 1, size, size), align_corners=False)`` as one batched matmul,
    8x faster on CPU (where it took 40% of the build)."""
    centres = (2 * torch.arange(size, dtype=torch.float32) + 1) / size - 1
    base = torch.stack([centres.repeat(size), centres.repeat_interleave(size), torch.ones(size * size)], 1)
    return (base @ theta.transpose(1, 2)).view(-1, size, size, 2)


def _max3x3(image: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(image, 3, 1, 1)`` as separable shifted maxima (3x faster on CPU)."""
    padded = F.pad(image, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def reference_images(fonts: Fonts, reference: int, code_points: list[int]) -> torch.Tensor:
    """Each character in the reference font, fitted and centred, no jitter: uint8 ``(n, 1, 28, 28)``
    (blank where that font does not draw it)."""
    charmap = fonts[reference].get_charmap()
    sides = [_outline_side(fonts[reference], cp) if charmap.get(cp, 0) else 0.0 for cp in code_points]
    jobs = [(reference, cp, side) for cp, side in zip(code_points, sides, strict=True)]
    bank, geometry = _render_bank(fonts, jobs, 2 * REFERENCE_SIZE)
    return transform(bank, geometry, np.tile(_IDENTITY, (len(code_points), 1)), REFERENCE_SIZE)


def lookalike_pairs(references: torch.Tensor) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``j < i``, of nearly identical reference renderings.

    Nearly identical: correlation >= ``LOOKALIKE_CORRELATION`` and no pixel differs by more
    than ``LOOKALIKE_MAX_DIFF`` levels. Correlation alone would merge letters that differ by one
    accent; the pixel bound alone would keep one shape drawn with two stroke weights apart.
    """
    flat = references.flatten(1).float()
    centred = flat - flat.mean(1, keepdim=True)
    unit = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-6)
    rows, cols = torch.nonzero(torch.tril(unit @ unit.T >= LOOKALIKE_CORRELATION, diagonal=-1), as_tuple=True)
    same = (flat[rows] - flat[cols]).abs().amax(1) <= LOOKALIKE_MAX_DIFF
    return list(zip(rows[same].tolist(), cols[same].tolist(), strict=True))


def drop_lookalikes(code_points: list[int], references: torch.Tensor) -> list[int]:
    """Keep, in code-point order, each drawn character that looks like no character kept before it."""
    earlier: dict[int, list[int]] = {}
    for i, j in lookalike_pairs(references):
        earlier.setdefault(i, []).append(j)
    kept: set[int] = set()
    for i in range(len(code_points)):
        if bool(references[i].any()) and kept.isdisjoint(earlier.get(i, ())):
            kept.add(i)
    return [code_points[i] for i in sorted(kept)]


def script_group(code_point: int) -> str:
    """A character's "alphabet": its script (Latin, Greek, ...), or its Unicode block for the
    symbols and punctuation that all scripts share (script Common or Inherited)."""
    script = ucd.script(chr(code_point))
    if script in ("Zyyy", "Zinh", "Zzzz"):
        return str(ucd.block(chr(code_point)))
    return str(ucd.script_name(script))


def split_of(code_point: int) -> str:
    """``"val"`` or ``"test"`` for the groups in ``VAL_GROUPS`` / ``TEST_GROUPS``, else ``"train"``."""
    group = script_group(code_point)
    return "val" if group in VAL_GROUPS else "test" if group in TEST_GROUPS else "train"


def class_name(code_point: int) -> str:
    """E.g. ``"U+0041 LATIN CAPITAL LETTER A"``."""
    return f"U+{code_point:04X} {unicodedata.name(chr(code_point), 'UNNAMED')}"


def code_point_of(name: str) -> int:
    """Inverse of `class_name`."""
    return int(name.split()[0].removeprefix("U+"), 16)


def select_classes(fonts: Fonts, names: list[str],
                   code_points: list[int] | None = None) -> dict[int, dict[int, float]]:
    """The kept classes in code-point order, as in `coverage`."""
    covered = coverage(fonts, code_points)
    references = reference_images(fonts, names.index(REFERENCE_FONT), list(covered))
    return {cp: covered[cp] for cp in drop_lookalikes(list(covered), references)}


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


@DATASETS.register("glyphs")
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
