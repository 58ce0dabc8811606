"""Drawing glyphs from font files: the fonts to use, one glyph fitted on a canvas, a bank of them.

Part of the embedded glyphs data set (`bench.data.glyphs.source`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib import ft2font

from bench.data.glyphs.rules import _FLAGS, FILL, FONT_FAMILIES, MIN_FONTS, REFERENCE_FONT, Fonts
from bench.errors import DataError


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
