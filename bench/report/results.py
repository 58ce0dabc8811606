"""What the analysis produces: analysed cells and tables, and the whole report they make.

Kept apart from `bench.report.compare` (which computes them) so that the modules the analysis
uses (`ranks`, and the renderers) can name these types without importing the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.report.model import Column, SettingData
from bench.report.pairing import Options
from bench.report.sanity import Flag
from bench.stats import Interval, Paired
from bench.suite.load import Suite
from bench.threats.base import ThreatKind

if TYPE_CHECKING:
    from bench.suite.published import Published


@dataclass
class CellResult:
    """A cell as shown: its interval (None when nothing finished) and why anything is absent."""

    interval: Interval | None
    status: str  # ok | partial | FAILED | missing
    reason: str
    seeds_used: int
    seeds_expected: int
    device_seconds: float | None
    bold: bool = False
    tie: bool = False


@dataclass(frozen=True)
class Comparison:
    """Best vs another row in one column; ``p_holm`` is Holm-adjusted over the table."""

    column: str
    best: str
    other: str
    paired: Paired | None
    p_holm: float


@dataclass
class TableResult:
    """One analysed table."""

    data: SettingData
    options: Options
    cells: dict[tuple[str, str], CellResult]
    gaps: dict[tuple[str, str], Paired | None] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)  # sanity-check violations (`bench.report.sanity`)
    ranks: dict[tuple[str, str], int] = field(default_factory=dict)  # tie-aware (`bench.report.ranks`)

    def flags_of(self, label: str, column: str) -> list[Flag]:
        return [f for f in self.flags if f.row == label and f.column == column]

    @property
    def rules(self) -> list[str]:
        return sorted({c.interval.rule for c in self.cells.values() if c.interval is not None})

    @property
    def gap_columns(self) -> list[Column]:
        return [c for c in self.data.columns if c.kind is not ThreatKind.CLEAN] if clean_column(self.data) else []


def clean_column(data: SettingData) -> Column | None:
    return next((c for c in data.columns if c.kind is ThreatKind.CLEAN), None)


@dataclass(frozen=True)
class Plot:
    """One figure: file stem (``plots/<name>.png`` and ``.svg``), caption and both renderings."""

    name: str
    caption: str
    png: bytes
    svg: bytes


@dataclass
class Report:
    """Everything one suite's report files are rendered from.

    Attributes:
        command: the command line that made it. uri: the tracking store as the user gave it.
        ignored: records matching no planned job. filters: the filters, described ("" if none).
        plots: setting slug -> its figures.
    """

    suite: Suite
    tables: list[TableResult]
    published: dict[tuple[str, str], Published]
    command: str
    uri: str
    ignored: int = 0
    filters: str = ""
    plots: dict[str, list[Plot]] = field(default_factory=dict)
