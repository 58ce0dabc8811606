"""Figures of one table (matplotlib, Agg renderer, no pyplot global state), PNG and SVG.

- accuracy vs eps, per attack family (attacks with an ``eps`` parameter; the clean column is
  drawn at eps = 0 when there is no eps-0 attack);
- accuracy vs attack steps, per attack family (attacks with a ``steps`` parameter);
- accuracy vs corruption severity (mean over the corruptions of each severity, per episode);
- clean vs robust accuracy, one point per baseline (robust: the worst case over attacks, else
  the only attack, else the mean corruption).

Byte-stable: fixed ``svg.hashsalt``, text kept as text in SVG, and no date or software
version in the files' metadata.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from bench.report.aggregate import combine, severity_groups
from bench.report.compare import TableResult, cell_result
from bench.report.model import Column, Plot
from bench.report.text import slug
from bench.stats import Interval

Point = tuple[float, Interval]
STYLE: dict[str, Any] = {"svg.hashsalt": "fewshot-bench", "svg.fonttype": "none", "font.family": "DejaVu Sans",
                         "font.size": 9, "figure.dpi": 100, "savefig.dpi": 100}


@contextmanager
def _style() -> Iterator[None]:
    """matplotlib's default style (a user's matplotlibrc must not change the files) plus ours."""
    with matplotlib.style.context("default"), matplotlib.rc_context(cast(Any, STYLE)):
        yield


def _render(figure: Figure) -> tuple[bytes, bytes]:
    png, svg = io.BytesIO(), io.BytesIO()
    figure.savefig(png, format="png", metadata={"Software": None})
    figure.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return png.getvalue(), svg.getvalue()


def _figure() -> tuple[Figure, Any]:
    """A figure with fixed margins (an automatic layout costs more than the drawing)."""
    figure = Figure(figsize=(5.5, 3.6))
    figure.subplots_adjust(left=0.11, right=0.97, bottom=0.13, top=0.91)
    return figure, figure.subplots()


def line_figure(series: dict[str, list[Point]], xlabel: str, title: str) -> Figure:
    """One line with 95% CI error bars per baseline; ``series``: label -> [(x, interval)]."""
    figure, axes = _figure()
    for label, points in series.items():
        points = sorted(points, key=lambda p: p[0])
        axes.errorbar([x for x, _ in points], [100 * iv.mean for _, iv in points],
                      yerr=[0 if iv.half != iv.half else 100 * iv.half for _, iv in points],
                      marker="o", capsize=3, label=label)
    ticks = sorted({x for points in series.values() for x, _ in points})
    axes.set_xticks(ticks, [f"{x:g}" for x in ticks])  # the measured values, not fractions of them
    axes.set(xlabel=xlabel, ylabel="accuracy (%)", title=title)
    _clip(axes)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    return figure


def _interval(table: TableResult, label: str, column: str) -> Interval | None:
    return table.cells[(label, column)].interval


def _family(column: Column, axis: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return column.name, tuple(p for p in column.params if p[0] != axis)


def param_series(table: TableResult, axis: str) -> list[tuple[str, dict[str, list[Point]]]]:
    """Per attack family (name and the other parameters), each baseline's accuracy against ``axis``."""
    families: dict[tuple[str, tuple[tuple[str, str], ...]], list[Column]] = {}
    for column in table.data.columns:
        if column.kind == "attack" and column.param(axis) is not None:
            families.setdefault(_family(column, axis), []).append(column)
    clean = next((c for c in table.data.columns if c.kind == "clean"), None)
    out = []
    for (name, _), columns in families.items():
        if len({c.param(axis) for c in columns}) < 2:
            continue
        series: dict[str, list[Point]] = {}
        for label, _ in table.data.rows:
            points = [(float(c.param(axis) or 0), iv) for c in columns if (iv := _interval(table, label, c.label))]
            origin = _interval(table, label, clean.label) if axis == "eps" and clean else None
            if origin is not None and all(x != 0 for x, _ in points):
                points.append((0.0, origin))
            if points:
                series[label] = [(x * 255 if axis == "eps" else x, iv) for x, iv in points]
        if any(len(points) >= 2 for points in series.values()):  # a curve, not isolated points
            out.append((name, series))
    return out


def severity_series(table: TableResult) -> dict[str, list[Point]]:
    """Each baseline's mean accuracy over the corruptions of each severity (per-episode means)."""
    groups = severity_groups(table.data.columns)
    series: dict[str, list[Point]] = {}
    for label, _ in table.data.rows:
        for severity, members in groups.items():
            cells = [table.data.cells[(label, m)] for m in members]
            result = cell_result(combine(cells, table.data.seeds, np.mean, tuple(members)), table.options)
            if result.interval is not None:
                series.setdefault(label, []).append((float(severity), result.interval))
    return series if any(len(points) >= 2 for points in series.values()) else {}


def _robust_column(columns: list[Column]) -> Column | None:
    """The y axis of the clean-vs-robust plot: the worst case at the threat model with the most
    attacks (the smallest radius on a tie), else a lone attack, else the mean corruption. Its
    label, which names the radius, is the axis title."""
    worst = [c for c in columns if c.kind == "worst-case" and c.threat_model is not None]
    if worst:
        return max(worst, key=lambda c: (len(c.members), -c.threat_model.eps))  # type: ignore[union-attr]
    attacks = [c for c in columns if c.kind == "attack"]
    if len(attacks) == 1:
        return attacks[0]
    return next((c for c in columns if c.kind == "mean-corruption"), None)


def scatter_figure(table: TableResult) -> tuple[Figure, str] | None:
    """Clean vs robust accuracy per baseline, or None without a clean and a robust column."""
    columns = table.data.columns
    clean = next((c for c in columns if c.kind == "clean"), None)
    robust = _robust_column(columns)
    if clean is None or robust is None:
        return None
    points = [(label, x, y) for label, _ in table.data.rows
              if (x := _interval(table, label, clean.label)) and (y := _interval(table, label, robust.label))]
    if not points:
        return None
    figure, axes = _figure()
    for label, x, y in points:
        axes.errorbar([100 * x.mean], [100 * y.mean], xerr=[_bar(x)], yerr=[_bar(y)], marker="o", capsize=3,
                      label=label)
    axes.set(xlabel="clean accuracy (%)", ylabel=f"{robust.label} accuracy (%)", title=f"clean vs {robust.label}")
    _clip(axes)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    return figure, robust.label


def _clip(axes: Any) -> None:
    """Keep the axes within accuracy's range when wide intervals would reach past it."""
    low, high = axes.get_ylim()
    axes.set_ylim(max(low, -2.0), min(high, 102.0))


def _bar(interval: Interval) -> float:
    return 0.0 if interval.half != interval.half else 100 * interval.half


def table_plots(table: TableResult) -> list[Plot]:
    """Every figure of one table, in a fixed order."""
    stem, out = slug(table.data.setting), []
    with _style():
        for axis, xlabel in (("eps", "eps (x/255)"), ("steps", "attack steps")):
            for index, (name, series) in enumerate(param_series(table, axis)):
                suffix = f"-{index}" if index else ""
                figure = line_figure(series, xlabel, f"{name}: accuracy vs {axis}")
                out.append(Plot(f"{stem}-{axis}-{name}{suffix}", f"accuracy vs {axis} ({name})", *_render(figure)))
        severity = severity_series(table)
        if severity:
            figure = line_figure(severity, "corruption severity", "mean over corruptions vs severity")
            out.append(Plot(f"{stem}-severity", "accuracy vs corruption severity", *_render(figure)))
        scatter = scatter_figure(table)
        if scatter is not None:
            out.append(Plot(f"{stem}-clean-vs-robust", f"clean vs {scatter[1]}", *_render(scatter[0])))
    return out
