"""The plain data a report is made of: columns, cells (per-seed results) and tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from bench.suite.load import DataSetting
from bench.threats.base import ThreatKind, ThreatModel

if TYPE_CHECKING:
    from bench.report.validation import ValidationCurve

FILES = {"md": "leaderboard.md", "latex": "leaderboard.tex", "csv": "leaderboard.csv", "json": "leaderboard.json",
         "html": "leaderboard.html"}
FORMATS = (*FILES, "all")


class ColumnRole(StrEnum):
    """What a column holds: one threat's results, or a summary derived per episode from threat
    columns (`bench.report.aggregate`). A derived role's value is the ``column_kind`` CSV/JSON
    write for it (a threat column writes its `ThreatKind`'s)."""

    THREAT = "threat"
    MEAN_CORRUPTION = "mean-corruption"  # mean over corruption columns (all, or one severity)
    WORST_CASE = "worst-case"  # per query across the attacks at one threat model, then per episode


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes:
        label: header. kind: the `ThreatKind` its threat class declares; None for a derived column.
        members: threat labels a derived column is computed from (empty for a threat column).
        name: the threat's registry name (empty for derived columns).
        params: the threat's recorded parameters (``threat.config.*`` without the prefix).
        threat_model: the (norm, eps) ball of an attack, or of the attacks a worst case is over,
            as the threat class declares it (`Threat.threat_model`); None otherwise.
        gradient_free: the threat class declares it reads no gradients (Square).
        display: the human header of md/tex/html tables and plots (``PGD-20, ε = 8/255``, from
            `Threat.display`); ``label`` stays the raw label of CSV/JSON. Empty: use ``label``.
        role: `ColumnRole.THREAT`, or how a derived column is computed from its members.
        in_headline: the threat class declares its own headline column (`Threat.in_headline`).
    """

    label: str
    kind: ThreatKind | None
    members: tuple[str, ...] = ()
    name: str = ""
    params: tuple[tuple[str, str], ...] = ()
    threat_model: ThreatModel | None = None
    gradient_free: bool = False
    display: str = ""
    role: ColumnRole = ColumnRole.THREAT
    in_headline: bool = False

    def __post_init__(self) -> None:
        # a kind given as a string would slip past every `is` test on the enums: refuse it here
        derived = self.role is not ColumnRole.THREAT
        if not isinstance(self.role, ColumnRole) or (self.kind is None) != derived or \
                (self.kind is not None and not isinstance(self.kind, ThreatKind)):
            raise TypeError(f"column {self.label!r}: a threat column needs a ThreatKind, a derived one a "
                            f"ColumnRole and no kind (got kind={self.kind!r}, role={self.role!r})")

    def param(self, key: str) -> str | None:
        return dict(self.params).get(key)

    @property
    def kind_text(self) -> str:
        """The raw ``column_kind`` of CSV/JSON: the threat kind's value, else the role's."""
        return self.kind.value if self.kind is not None else self.role.value

    @property
    def header(self) -> str:
        """What a reader sees: ``display``, else the raw label."""
        return self.display or self.label


@dataclass
class Cell:
    """Per-seed results of one (baseline variant, column).

    Attributes:
        seeds: the seeds the suite plans. per_seed: seed -> ``(episodes,)`` accuracies.
        hashes: seed -> episode-set hash. problems: seed -> why it has no result.
        device_seconds: summed evaluation device seconds of its finished runs (None: none
            finished, or a derived column).
        per_query: seed -> per episode, bool ``(queries,)``: which queries it got right (absent
            for records made before they were recorded). bounded: seeds of a worst-case cell
            computed per episode (a member lacked per-query results): an upper bound.
    """

    seeds: tuple[int, ...]
    per_seed: dict[int, np.ndarray] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    device_seconds: float | None = None
    per_query: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict)
    bounded: set[int] = field(default_factory=set)

    def reason(self) -> str:
        """The distinct problems of this cell, in seed order."""
        return "; ".join(dict.fromkeys(self.problems[s] for s in sorted(self.problems)))

    def headline(self) -> str:
        """The one problem a table cell shows: the first failure, else the first other problem."""
        ordered = [self.problems[s] for s in sorted(self.problems)]
        return next((p for p in ordered if p.startswith("FAILED")), ordered[0] if ordered else "missing: not run")


@dataclass(frozen=True)
class RowModes:
    """A row's declared evaluation modes (`bench.tracking.tags.evaluation_modes`).

    Attributes:
        transductive: a query's prediction depends on the other queries of its batch.
        stochastic: its adaptation draws random numbers.
        one_draw: stochastic, and some attack of this table attacked it through one draw
            (``eot_draws: 1``): its robust accuracy there is inflated.
    """

    transductive: bool = False
    stochastic: bool = False
    one_draw: bool = False

    def marks(self) -> list[str]:
        """What a row title adds: ``transductive``, ``stochastic, no EoT``."""
        return (["transductive"] if self.transductive else []) + (["stochastic, no EoT"] if self.one_draw else [])


@dataclass
class SettingData:
    """Everything one (data set, way, shot) table is made from."""

    setting: DataSetting
    rows: list[tuple[str, str]]  # (label, baseline registry name), suite order
    columns: list[Column]
    cells: dict[tuple[str, str], Cell]
    seeds: tuple[int, ...]
    facts: dict[str, str]
    validation: dict[str, dict[int, ValidationCurve]] = field(default_factory=dict)  # row -> seed -> curve
    modes: dict[str, RowModes] = field(default_factory=dict)  # row -> its declared modes


@dataclass
class Collected:
    """The tables of one report and how many records matched no planned job."""

    settings: list[SettingData]
    ignored: int
