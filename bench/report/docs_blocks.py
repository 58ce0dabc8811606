"""Tables of the docs rendered from committed reports (never typed): ``bench report --all``
rewrites each marked block, and a test checks that each block is the one its report gives.

- docs/threats.md, "Attack strength": from ``reports/attack-strength-glyphs/leaderboard.json``,
  per baseline and L-inf radius the accuracy under each attack on the same test episodes, and
  each attack's difference from the first (PGD-20) in points.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report.index import WrittenReport, rewrite_block
from bench.report.tables import markdown_table
from bench.threats.base import ThreatKind


@dataclass(frozen=True)
class DocsBlock:
    """A marked block of a docs page and the report it is rendered from."""

    page: str  # relative to the repository root
    suite: str
    name: str

    @property
    def begin(self) -> str:
        return (f"<!-- {self.name}:begin: written by `bench report --all` from reports/{self.suite}/leaderboard.json; "
                f"do not edit -->")

    @property
    def end(self) -> str:
        return f"<!-- {self.name}:end -->"


ATTACK_STRENGTH = DocsBlock("docs/threats.md", "attack-strength-glyphs", "attack-strength")


def _text(cell: dict[str, Any]) -> str:
    return "–" if cell["mean"] is None else f"{cell['mean']:.1f} ± {cell['ci_half']:.1f}"


def attack_strength_table(report: WrittenReport) -> str:
    """The Markdown table: one row per (baseline, threat model), attacks in the suite's order."""
    attacks = [c for c in report.data["cells"] if c["column_kind"] == ThreatKind.ATTACK.value and c["threat_model"]]
    models = list(dict.fromkeys(c["threat_model"] for c in attacks))
    names = list(dict.fromkeys(c["column_header"].split(", ")[0] for c in attacks))
    headers = ["baseline", "radius", *names, *(f"{n} − {names[0]}" for n in names[1:])]
    rows = []
    for baseline in dict.fromkeys(c["baseline_title"] for c in attacks):
        for model in models:
            mine = {c["column_header"].split(", ")[0]: c for c in attacks
                    if c["baseline_title"] == baseline and c["threat_model"] == model}
            first = mine.get(names[0], {}).get("mean")
            gaps = [f"{mine[n]['mean'] - first:+.1f}" if n in mine and mine[n]["mean"] is not None
                    and first is not None else "–" for n in names[1:]]
            rows.append([baseline, model, *(_text(mine[n]) if n in mine else "–" for n in names), *gaps])
    return markdown_table(headers, rows)


def render_block(block: DocsBlock, report: WrittenReport) -> str:
    """The block's text with its markers and its provenance."""
    return "\n".join([block.begin, "", attack_strength_table(report), "",
                      f"Made by {report.provenance}.", block.end])


def rewrite_docs(root: Path, reports: dict[str, WrittenReport]) -> list[Path]:
    """Rewrite each docs block whose report is present; the pages written."""
    written = []
    for block in (ATTACK_STRENGTH,):
        if block.suite in reports and rewrite_block(root / block.page, render_block(block, reports[block.suite]),
                                                     block.begin, block.end):
            written.append(root / block.page)
    return written
