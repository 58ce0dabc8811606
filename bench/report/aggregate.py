"""Derived columns, computed per test episode from their member threats.

- **mean corruption**: the mean accuracy over the corruption threats (`ThreatKind.CORRUPTION`),
  overall and, when a severity has several corruptions, per severity (the threat's recorded
  ``threat.config.severity``);
- **worst case per threat model**: AutoAttack's worst case (Croce & Hein 2020) over the attacks
  run at ONE threat model, i.e. one norm and radius as each attack class declares them
  (``worst L∞ 8/255``): a query counts as robust only when it survives every one of those
  attacks (per query, as AutoAttack and RobustBench count), then the episode's accuracy is the
  share of its robust queries. A minimum across radii would only repeat the largest radius.
  Records made before per-query results were recorded fall back to the minimum of per-episode
  accuracies, an upper bound on the per-query worst case; such seeds are marked (`Cell.bounded`).

A derived value exists for a seed only when every member finished on the same episode set;
otherwise the cell says which member is missing and why.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.report.model import Cell, Column, ColumnRole
from bench.threats.base import ThreatKind, ThreatModel

MEAN_CORRUPTION = "mean corruption"
WORST_CASE = "worst"


def worst_case_label(model: ThreatModel) -> str:
    return f"{WORST_CASE} {model.text()}"


def severity_groups(columns: list[Column]) -> dict[int, list[str]]:
    """Severity -> labels of the corruption columns with that severity (ascending)."""
    groups: dict[int, list[str]] = {}
    for column in columns:
        severity = column.param("severity")
        if column.kind is ThreatKind.CORRUPTION and severity is not None and severity.isdigit():
            groups.setdefault(int(severity), []).append(column.label)
    return dict(sorted(groups.items()))


def derived_columns(columns: list[Column]) -> list[Column]:
    """The derived columns a table gets: only where they summarise two or more threats."""
    out = []
    corruptions = tuple(c.label for c in columns if c.kind is ThreatKind.CORRUPTION)
    if len(corruptions) >= 2:
        out.append(Column(MEAN_CORRUPTION, None, corruptions, display="Mean corruption",
                          role=ColumnRole.MEAN_CORRUPTION))
        groups = severity_groups(columns)
        if len(groups) >= 2 and any(len(labels) >= 2 for labels in groups.values()):
            out += [Column(f"{MEAN_CORRUPTION} s={s}", None, tuple(labels), "", (("severity", str(s)),),
                           display=f"Mean corruption, s{s}", role=ColumnRole.MEAN_CORRUPTION)
                    for s, labels in groups.items()]
    by_model: dict[ThreatModel, list[str]] = {}
    for column in columns:
        if column.kind is ThreatKind.ATTACK and column.threat_model is not None and column.threat_model.eps > 0:
            by_model.setdefault(column.threat_model, []).append(column.label)
    for model, labels in sorted(by_model.items()):
        if len(labels) >= 2:
            out.append(Column(worst_case_label(model), None, tuple(labels), threat_model=model,
                              display=f"Worst {model.text()}", role=ColumnRole.WORST_CASE))
    return out


def combine(members: list[Cell], seeds: tuple[int, ...], reduce: Callable[..., np.ndarray],
            names: tuple[str, ...]) -> Cell:
    """A derived cell: per seed, ``reduce(stack, axis=0)`` over the members' per-episode values."""
    out = Cell(seeds)
    for seed in seeds:
        absent = [(name, m) for name, m in zip(names, members, strict=True) if seed not in m.per_seed]
        if absent:
            out.problems[seed] = f"missing: needs {absent[0][0]}"  # whose own cell says why
            continue
        hashes = {m.hashes.get(seed, "") for m in members}
        lengths = {m.per_seed[seed].size for m in members}
        if len(hashes) != 1 or len(lengths) != 1:
            out.problems[seed] = "missing: members were evaluated on different episode sets"
            continue
        if reduce is np.min and all(seed in m.per_query for m in members):
            out.per_seed[seed] = per_query_worst([m.per_query[seed] for m in members])
        else:
            out.per_seed[seed] = reduce(np.stack([m.per_seed[seed] for m in members]), axis=0)
            if reduce is np.min:
                out.bounded.add(seed)
        out.hashes[seed] = hashes.pop()
    return out


def per_query_worst(members: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """Per episode, the share of queries every member got right: ``(episodes,)`` float64 from
    each member's per-episode bool ``(queries,)`` arrays (Croce & Hein 2020's worst case)."""
    return np.array([np.logical_and.reduce(np.stack(per_episode)).mean()
                     for per_episode in zip(*members, strict=True)], dtype=np.float64)


def add_aggregates(columns: list[Column], cells: dict[tuple[str, str], Cell], rows: list[str],
                   seeds: tuple[int, ...]) -> list[Column]:
    """Append the derived cells of every row to ``cells``; returns the derived columns."""
    extra = derived_columns(columns)
    for column in extra:
        reduce = np.min if column.role is ColumnRole.WORST_CASE else np.mean
        for row in rows:
            members = [cells.get((row, m), Cell(seeds)) for m in column.members]
            cells[(row, column.label)] = combine(members, seeds, reduce, column.members)
    return extra
