"""Naming glyph classes and assigning them to splits by whole script or Unicode block.

Part of the embedded glyphs data set (`bench.data.glyphs.source`): as Omniglot splits alphabets, a
class's "alphabet" (`script_group`) decides its split, so test classes come from scripts never
seen in training.
"""

from __future__ import annotations

import unicodedata

from fontTools import unicodedata as ucd

from bench.data.glyphs.rules import TEST_GROUPS, VAL_GROUPS


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
