"""Figures of one table, PNG and SVG, named ``<setting slug>-<what they show>``:

- ``acc-vs-eps-<norm>-<attack>``: accuracy vs radius per attack family (`bench.report.plots.data`), L-inf
  radii as n/255 and L2 radii on their own figure, the clean column at eps = 0 when no attack
  ran at 0;
- ``acc-vs-steps-<attack>-<norm>-<radius>``: accuracy vs attack steps per attack family;
- ``acc-vs-severity-<family>``: accuracy vs corruption severity per ImageNet-C family (noise,
  blur, weather, digital) and over ``all`` corruptions when they span several families;
- ``clean-vs-robust-<norm>-<radius>``: clean vs robust accuracy per baseline at each threat
  model, robust being AutoAttack's worst case over the attacks run there (Croce & Hein 2020;
  `bench.report.aggregate`), or the only attack run there; without attacks
  ``clean-vs-mean-corruption``;
- ``validation``: each train run's validation accuracy by meta-update and the checkpoint kept
  (`bench.report.plots.validation`), where the runs validated.

Lines have one line per baseline with its 95% CI as a band; every figure has the chance line
at 100/way %; a family with one x value gives no figure. Drawing and byte stability:
`bench.report.plots.draw`.
"""

from __future__ import annotations

import re
from collections import Counter

from matplotlib.figure import Figure

from bench.report.model import Column, ColumnRole
from bench.report.plots.data import Curve, attack_curves, radius_token, severity_curves
from bench.report.plots.draw import line_figure, plot_style, render, scatter_figure
from bench.report.plots.validation import validation_figure
from bench.report.results import Plot, TableResult, clean_column
from bench.report.text import slug
from bench.report.views import row_titles
from bench.threats.base import ThreatKind

__all__ = ["table_figures", "table_plots"]


def _token(key: str, value: str) -> str:
    """``steps20``: a parameter in a file name (numbers at 4 significant digits)."""
    try:
        value = f"{float(value):.4g}"
    except ValueError:
        pass
    return re.sub(r"[^A-Za-z0-9._-]", "", f"{key}{value}")


def unique_keys(curves: list[Curve]) -> list[str]:
    """Each curve's key, with the parameters that tell same-keyed families apart appended
    (``acc-vs-eps-linf-pgd-steps20``), and a counter only if even those are equal."""
    counts = Counter(c.key for c in curves)
    keys = []
    for curve in curves:
        key = curve.key
        if counts[key] > 1:
            twins = [dict(c.fixed) for c in curves if c.key == key]
            differing = [k for k, v in curve.fixed if any(t.get(k) != v for t in twins)]
            key = "-".join([key, *(_token(k, dict(curve.fixed)[k]) for k in differing)])
        keys.append(key)
    seen: Counter[str] = Counter()
    out = []
    for key in keys:
        seen[key] += 1
        out.append(key if keys.count(key) == 1 else f"{key}-{seen[key]}")
    return out


def _without_radius(column: Column) -> str:
    model = column.threat_model
    return column.header.removesuffix(f", {model.radius_text()}") if model is not None else column.header


def robust_columns(columns: list[Column]) -> list[Column]:
    """The y axes of the clean-vs-robust figures: per threat model the worst case over its
    attacks, or its only attack; without attacks the mean corruption."""
    by_model: dict[tuple[str, float], Column] = {}
    for column in columns:
        model = column.threat_model
        if column.role is ColumnRole.WORST_CASE and model is not None:
            by_model[(model.norm, model.eps)] = column
    for column in columns:
        model = column.threat_model
        if column.kind is ThreatKind.ATTACK and model is not None and model.eps > 0:
            by_model.setdefault((model.norm, model.eps), column)  # a worst case, where there is one, wins
    if by_model:
        return [by_model[k] for k in sorted(by_model)]
    mean = next((c for c in columns if c.role is ColumnRole.MEAN_CORRUPTION and not c.params), None)
    return [mean] if mean is not None else []


def _robust_text(column: Column, columns: list[Column]) -> tuple[str, str, str]:
    """(file name part, y label, caption) of a clean-vs-robust figure."""
    model = column.threat_model
    if model is None:
        return "clean-vs-mean-corruption", "mean corruption accuracy (%)", (
            f"Clean vs mean corruption accuracy (mean over {len(column.members)} corruptions)")
    key, at = f"clean-vs-robust-{radius_token(model.norm, model.eps)}", f"at {model.text()}"
    if column.role is not ColumnRole.WORST_CASE:
        return key, f"{column.header} (%)", (
            f"Clean vs robust accuracy {at} (robust: {_without_radius(column)}, the only attack at this radius)")
    headers = {c.label: _without_radius(c) for c in columns}
    attacks = ", ".join(headers.get(m, m) for m in column.members)
    return key, f"worst case {at} (%)", f"Clean vs robust accuracy {at} (robust: per-episode worst case over {attacks})"


def _scatter(table: TableResult, column: Column, chance: float) -> tuple[str, str, Figure] | None:
    clean = clean_column(table.data)
    if clean is None:
        return None
    cells, titles = table.cells, row_titles(table)
    points = [(titles[label], x, y) for label, _ in table.data.rows
              if (x := cells[(label, clean.label)].interval) and (y := cells[(label, column.label)].interval)]
    if not points:
        return None
    key, ylabel, caption = _robust_text(column, table.data.columns)
    return key, caption, scatter_figure(points, ylabel, f"Clean vs {ylabel.removesuffix(' (%)')}", chance)


def table_figures(table: TableResult) -> list[tuple[str, str, Figure]]:
    """Every figure of one table as (name, caption, figure), in a fixed order: eps, steps,
    severity, clean vs robust, validation."""
    stem, level = slug(table.data.setting), table.options.level
    chance = 100 / table.data.setting.way
    out = []
    with plot_style():
        curves = attack_curves(table) + severity_curves(table)
        for key, curve in zip(unique_keys(curves), curves, strict=True):
            out.append((f"{stem}-{key}", curve.caption, line_figure(curve, chance, level)))
        for column in robust_columns(table.data.columns):
            if (scatter := _scatter(table, column, chance)) is not None:
                out.append((f"{stem}-{scatter[0]}", scatter[1], scatter[2]))
        if (validation := _validation(table, chance)) is not None:
            out.append((f"{stem}-validation", *validation))
    return out


def _validation(table: TableResult, chance: float) -> tuple[str, Figure] | None:
    """The validation curves of the table's train runs, where any validated."""
    titles, curves = row_titles(table), table.data.validation
    rows = {titles[label]: seeds for label, _ in table.data.rows
            if (seeds := {s: c for s, c in curves.get(label, {}).items() if c.points})}
    if not rows:
        return None
    caption = ("Validation accuracy during meta-training, one line per seed; a star marks the checkpoint "
               "evaluated (the best validation accuracy); a line ending before its step cap stopped early")
    return caption, validation_figure(rows, chance)


def table_plots(table: TableResult) -> list[Plot]:
    """Every figure of one table, rendered (PNG and SVG), in `table_figures`' order."""
    with plot_style():
        return [Plot(name, caption, *render(figure)) for name, caption, figure in table_figures(table)]
