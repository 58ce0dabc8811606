"""The rules that define the glyphs data set: its constants and the jitter ranges (`bench.data.glyphs.source`).

Every rule here is recorded in the prepared data set's manifest (``build`` in
`bench.data.glyphs.build`), so a change to one shows up as a different data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib import ft2font

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
