"""What the line figures of a table show: accuracy against an attack's radius or steps, and
against a corruption family's severity, one line per baseline (plain data, no matplotlib).

- An **attack family** is one attack (registry name) at one norm with every parameter but the
  plotted one equal, except the step size ``alpha``: suites scale it with the radius or the
  steps (Madry et al. 2018's eps/4; ``suites/robust-glyphs.yaml``), and a curve over eps at a
  fixed ratio is what a reader wants. Where that leaves two columns at one x, alpha is kept
  in the family key after all. L2 and L-inf radii never share a figure.
- A **corruption family** is one of the four groups of Hendrycks & Dietterich 2019 (Fig. 1;
  the held-out corruptions of their appendix go to the group they extend). Its accuracy at a
  severity is the per-episode mean over the family's corruptions (`bench.report.aggregate.combine`),
  the same corruptions at every severity (`balanced`), so its interval is over episodes like
  any cell's.

A family with fewer than two x values gives no figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bench.report.aggregate import combine
from bench.report.compare import cell_result
from bench.report.model import Column
from bench.report.results import TableResult, clean_column
from bench.report.views import row_titles
from bench.stats import Interval
from bench.threats.base import ThreatKind, ThreatModel

Point = tuple[float, Interval]
LOOSE = ("alpha",)  # parameters a family may vary with the plotted one (see the module doc)
CORRUPTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "brightness", "spatter"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"),
}


@dataclass(frozen=True)
class Curve:
    """One line figure's data.

    Attributes:
        key: the file name after the setting slug (``acc-vs-eps-linf-pgd``).
        title: the title above the axes. caption: what the figure shows (family, radius).
        xlabel: x axis title. ticks: (x, tick label) at every measured x.
        lines: baseline label -> its points (x, interval), one line each.
        fixed: the parameters all members share (tells two same-named families apart).
    """

    key: str
    title: str
    caption: str
    xlabel: str
    ticks: tuple[tuple[float, str], ...]
    lines: dict[str, list[Point]]
    fixed: tuple[tuple[str, str], ...] = ()


def radius(norm: str, eps: float) -> str:
    """``8/255`` (L-inf, as papers print it) or ``0.5`` (L2): `ThreatModel.text` without the norm."""
    return ThreatModel(norm, eps).text().split(" ", 1)[1]


def radius_token(norm: str, eps: float) -> str:
    """A file-name part for a radius: ``linf-8`` (8/255) or ``l2-0.5``; never a slash."""
    text = radius(norm, eps)
    return f"{norm.lower()}-{text.removesuffix('/255')}"


def _interval(table: TableResult, label: str, column: str) -> Interval | None:
    result = table.cells.get((label, column))
    return result.interval if result is not None else None


def _value(column: Column, axis: str) -> float | None:
    """The column's x on ``axis``: the declared radius for eps, the recorded count for steps."""
    if axis == "eps":
        return column.threat_model.eps if column.threat_model is not None else None
    steps = column.param("steps")
    return float(steps) if steps is not None and steps.isdigit() else None


def _key(column: Column, axis: str, strict: bool) -> tuple:
    drop = {axis, "norm", *(() if strict else LOOSE)}
    norm = column.threat_model.norm if column.threat_model is not None else ""
    return column.name, norm, tuple(p for p in column.params if p[0] not in drop)


def attack_families(columns: list[Column], axis: str) -> list[list[Column]]:
    """The attack families along ``axis`` with two or more x values, in column order."""
    attacks = [c for c in columns
               if c.kind is ThreatKind.ATTACK and c.threat_model is not None and _value(c, axis) is not None]
    loose: dict[tuple, list[Column]] = {}
    for column in attacks:
        loose.setdefault(_key(column, axis, strict=False), []).append(column)
    families = []
    for members in loose.values():
        if len({_value(c, axis) for c in members}) == len(members):
            families.append(members)
            continue
        strict: dict[tuple, list[Column]] = {}  # two columns at one x: alpha tells them apart
        for column in members:
            strict.setdefault(_key(column, axis, strict=True), []).append(column)
        families += strict.values()
    return [f for f in families if len({_value(c, axis) for c in f}) >= 2]


def _lines(table: TableResult, columns: list[Column], axis: str, origin: Column | None) -> dict[str, list[Point]]:
    """Each baseline's points; ``origin`` (clean) at x = 0 where no member is at 0."""
    lines: dict[str, list[Point]] = {}
    titles = row_titles(table)
    for label, _ in table.data.rows:
        points = [(_value(c, axis), iv) for c in columns if (iv := _interval(table, label, c.label))]
        if origin is not None and all(x != 0 for x, _ in points) and (iv := _interval(table, label, origin.label)):
            points.append((0.0, iv))
        if points:
            lines[titles[label]] = sorted(points, key=lambda p: p[0])  # type: ignore[arg-type, return-value]
    return lines


def _varies(members: list[Column], key: str) -> bool:
    return len({m.param(key) for m in members}) > 1


def _fixed(members: list[Column], axis: str) -> tuple[tuple[str, str], ...]:
    return tuple(p for p in members[0].params if p[0] != axis and not _varies(members, p[0]))


def eps_curve(table: TableResult, members: list[Column]) -> Curve:
    """Accuracy vs radius of one attack family; clean accuracy at eps = 0."""
    norm = members[0].threat_model.norm  # type: ignore[union-attr]
    clean = clean_column(table.data)
    lines = _lines(table, members, "eps", clean)
    xs = sorted({x for points in lines.values() for x, _ in points})
    suffix = f", {members[0].threat_model.radius_text()}"  # type: ignore[union-attr]
    attack = members[0].header.removesuffix(suffix)
    symbol = "ε" if norm == "Linf" else "ε₂"
    notes = ["α scaled with the radius"] if any(_varies(members, k) for k in LOOSE) else []
    notes += [f"{symbol} = 0: clean accuracy"] if clean is not None else []
    norm_text = "L∞" if norm == "Linf" else norm
    caption = f"Accuracy vs {norm_text} radius, {attack}" + (f" ({'; '.join(notes)})" if notes else "")
    return Curve(f"acc-vs-eps-{norm.lower()}-{members[0].name}", f"{attack}: accuracy vs {norm_text} radius",
                 caption, f"{norm_text} radius {symbol}", tuple((x, radius(norm, x) if x else "0") for x in xs),
                 lines, _fixed(members, "eps"))


def steps_curve(table: TableResult, members: list[Column]) -> Curve:
    """Accuracy vs attack steps of one attack family (one radius)."""
    model = members[0].threat_model
    assert model is not None  # attack_families keeps attacks with a threat model only
    steps = members[0].param("steps")
    attack = re.sub(rf"-{steps}(?=×|,|$)", "", members[0].header, count=1)  # ``PGD-20, ε = 8/255`` -> ``PGD, ...``
    scaled = " (α scaled with the steps)" if any(_varies(members, k) for k in LOOSE) else ""
    lines = _lines(table, members, "steps", None)
    xs = sorted({x for points in lines.values() for x, _ in points})
    return Curve(f"acc-vs-steps-{members[0].name}-{radius_token(model.norm, model.eps)}",
                 f"{attack}: accuracy vs steps", f"Accuracy vs attack steps, {attack}{scaled}",
                 "attack steps", tuple((x, f"{x:g}") for x in xs), lines, _fixed(members, "steps"))


def corruption_family(name: str) -> str:
    return next((family for family, names in CORRUPTION_FAMILIES.items() if name in names), "other")


def _severity(column: Column) -> int | None:
    severity = column.param("severity")
    return int(severity) if severity is not None and severity.isdigit() else None


def balanced(members: list[Column]) -> dict[int, list[Column]]:
    """Severity -> the corruptions a severity curve averages: the same ones at every severity
    (else a trend could be a change of corruptions). The severity set chosen, one that some
    corruption was run at, keeps the most (corruption, severity) cells; ties: more severities."""
    runs: dict[str, dict[int, Column]] = {}
    for column in members:
        if (severity := _severity(column)) is not None:
            runs.setdefault(column.name, {})[severity] = column
    sets = [frozenset(r) for r in runs.values() if len(r) >= 2]
    if not sets:
        return {}
    best = max(sets, key=lambda s: (len(s) * sum(s <= set(r) for r in runs.values()), len(s)))
    return {s: [r[s] for r in runs.values() if best <= set(r)] for s in sorted(best)}


def severity_curve(table: TableResult, family: str, members: list[Column]) -> Curve | None:
    """Accuracy vs severity, per episode the mean over the family's corruptions (`balanced`);
    None with fewer than two severities."""
    by_severity = balanced(members)
    if not by_severity:
        return None
    lines: dict[str, list[Point]] = {}
    titles = row_titles(table)
    for label, _ in table.data.rows:
        for level, columns in by_severity.items():
            cells = [table.data.cells[(label, c.label)] for c in columns]
            merged = combine(cells, table.data.seeds, np.mean, tuple(c.label for c in columns))
            if (iv := cell_result(merged, table.options).interval) is not None:
                lines.setdefault(titles[label], []).append((float(level), iv))
    kept = next(iter(by_severity.values()))
    names = ", ".join(c.header.split(", s")[0] for c in kept)
    title = "all corruptions" if family == "all" else f"{family} corruptions"
    both = " (support and queries corrupted)" if kept[0].param("target") == "both" else ""
    return Curve(f"acc-vs-severity-{family}", f"{title.capitalize()}: accuracy vs severity",
                 f"Accuracy vs corruption severity, {title}{both} ({'mean of ' * (len(kept) > 1)}{names})",
                 "corruption severity", tuple((float(s), str(s)) for s in by_severity), lines,
                 _fixed(members, "severity"))


def severity_curves(table: TableResult) -> list[Curve]:
    """Per corruption family (and ``target``: queries only, or support too) one curve, and one
    over all corruptions when they span several families at one target, unless it is the one
    family curve again."""
    corruptions = [c for c in table.data.columns if c.kind is ThreatKind.CORRUPTION]
    groups: dict[tuple[str, str | None], list[Column]] = {}
    for column in corruptions:  # a corruption's own options (elastic's table) do not split a family
        groups.setdefault((corruption_family(column.name), column.param("target")), []).append(column)
    order = [*CORRUPTION_FAMILIES, "other"]
    pairs = [(family, members) for (family, _), members in sorted(groups.items(), key=lambda g: order.index(g[0][0]))]
    if len({family for family, _ in pairs}) > 1 and len({rest for _, rest in groups}) == 1:
        pairs.append(("all", corruptions))
    curves = [severity_curve(table, family, members) for family, members in pairs]
    kept = [c for c in curves if c is not None and any(len(p) >= 2 for p in c.lines.values())]
    families = [c for c in kept if not c.key.endswith("-all")]
    return [c for c in kept if not (c.key.endswith("-all") and len(families) == 1)]  # all = that one


def attack_curves(table: TableResult) -> list[Curve]:
    """Accuracy vs eps, then vs steps, per attack family (curves, not isolated points)."""
    columns = table.data.columns
    curves = [eps_curve(table, f) for f in attack_families(columns, "eps")]
    curves += [steps_curve(table, f) for f in attack_families(columns, "steps")]
    return [c for c in curves if any(len(p) >= 2 for p in c.lines.values())]
