"""The validation-curve figure of a table: how each baseline's validation accuracy moved during
meta-training, and which checkpoint the report's numbers come from.

One colour per baseline, one line per seed (x: meta-update, y: clean accuracy on the job's fixed
validation episodes, `bench.run.training`), a star on the checkpoint each seed kept (the best
validation, ``select: best_val``). A line that ends before the others stopped early; one whose
star sits on its last point was still improving at its step cap. Seeds are drawn, not averaged:
with early stopping they end at different steps, and a mean over the seeds still training
would jump where one stops. Many baselines, or step caps too far apart to share an x axis
(MAML's 250 meta-updates beside ProtoNet's 20,000), get one panel each.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.report.plots.draw import CHANCE, accuracy_limits, chance_label, legend_outside, new_figure
from bench.report.validation import ValidationCurve

PALETTE_SIZE = 10  # matplotlib's default cycle; more baselines than this take tab20's colours
PANELS_FROM = 4  # baselines from which each gets its own panel
RANGE_RATIO = 5.0  # or when the longest run has this many times the meta-updates of the shortest
PANEL_COLUMNS = 3
PANEL_SIZE = (3.6, 2.4)  # inches per panel


def _colours(count: int) -> list[tuple[float, ...]]:
    """tab10, or tab20's dark shades first and then its light ones (tab20 pairs a dark and a
    light shade of each hue: neighbours in its order would look alike)."""
    if count <= PALETTE_SIZE:
        return [tuple(matplotlib.colormaps["tab10"](i)) for i in range(count)]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [tuple(matplotlib.colormaps["tab20"](order[i % 20])) for i in range(count)]


def validation_figure(rows: dict[str, dict[int, ValidationCurve]], chance: float) -> Figure:
    """Validation accuracy (%) by meta-update: ``rows`` maps a baseline's title to its seeds'
    curves (seed -> `ValidationCurve`), drawn in the given order: on one axes, or one panel per
    baseline (`needs_panels`: many rows, or step ranges too far apart to share an x axis)."""
    if needs_panels(rows):
        return _panels(rows, chance)
    figure, axes = new_figure()
    values = _draw(axes, rows, _colours(len(rows)))
    _finish(axes, values, chance, "Validation accuracy during training")
    star = Line2D([], [], marker="*", markersize=8, color="0.3", linestyle="none", label="checkpoint kept")
    legend_outside(figure, axes, [star])
    return figure


def needs_panels(rows: dict[str, dict[int, ValidationCurve]]) -> bool:
    """One axes is unreadable with many baselines, or when a 250-update MAML shares an x axis
    with a 20,000-update ProtoNet (its curve is a dot at the left edge)."""
    ends = [max(s for s, _ in c.points) for seeds in rows.values() for c in seeds.values() if c.points]
    spread = max(ends) / max(min(ends), 1) if ends else 1.0
    return len(rows) >= PANELS_FROM or (len(rows) > 1 and spread >= RANGE_RATIO)


def _panels(rows: dict[str, dict[int, ValidationCurve]], chance: float) -> Figure:
    count = len(rows)
    columns = min(PANEL_COLUMNS, count)
    lines = math.ceil(count / columns)
    figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * lines + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(lines, columns, squeeze=False, sharey=True)
    for axes, colour, (title, seeds) in zip(grid.flat, _colours(count), rows.items(), strict=False):
        _finish(axes, _draw(axes, {title: seeds}, [colour]), chance, title)
    for axes in list(grid.flat)[count:]:
        axes.set_visible(False)
    figure.suptitle("Validation accuracy during training (a star: the checkpoint kept)")
    return figure


def _draw(axes: Any, rows: dict[str, dict[int, ValidationCurve]], colours: list[tuple[float, ...]]) -> list[float]:
    """Each seed's curve and its kept checkpoint; returns the accuracies drawn."""
    values: list[float] = []
    for colour, (title, seeds) in zip(colours, rows.items(), strict=True):
        for i, (_, curve) in enumerate(sorted(seeds.items())):
            steps, accuracy = [s for s, _ in curve.points], [a for _, a in curve.points]
            axes.plot(steps, accuracy, color=colour, linewidth=1.0, alpha=0.85, label=title if i == 0 else None)
            values += accuracy
            kept = curve.accuracy_at(curve.selected) if curve.selected is not None else None
            if kept is not None:
                axes.plot([curve.selected], [kept], marker="*", markersize=8, color=colour, linestyle="none")
    return values


def _finish(axes: Any, values: list[float], chance: float, title: str) -> None:
    axes.axhline(chance, label=chance_label(chance), **CHANCE)
    axes.set_ylim(*accuracy_limits(values, chance))
    axes.set(xlabel="meta-update", ylabel="validation accuracy (%)", title=title)
    axes.grid(alpha=0.3)
