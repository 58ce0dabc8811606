"""Which characters become glyph classes: drawn by enough fonts, and no two alike.

Part of the embedded glyphs data set (`bench.data.glyphs.source`): a candidate is a letter, number,
punctuation mark or symbol that at least ``MIN_FONTS`` fonts draw; of characters whose
reference renderings (``REFERENCE_FONT``, no jitter) look alike, the lowest code point is kept.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import torch

from bench.data.glyphs.jitter import transform
from bench.data.glyphs.render import _outline_side, _render_bank
from bench.data.glyphs.rules import (
    _IDENTITY,
    CATEGORIES,
    LOOKALIKE_CORRELATION,
    LOOKALIKE_MAX_DIFF,
    MIN_FONTS,
    REFERENCE_FONT,
    REFERENCE_SIZE,
    Fonts,
)


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


def select_classes(fonts: Fonts, names: list[str],
                   code_points: list[int] | None = None) -> dict[int, dict[int, float]]:
    """The kept classes in code-point order, as in `coverage`."""
    covered = coverage(fonts, code_points)
    references = reference_images(fonts, names.index(REFERENCE_FONT), list(covered))
    return {cp: covered[cp] for cp in drop_lookalikes(list(covered), references)}
