"""The validation-curve figure of a table: how each baseline's validation accuracy moved during
meta-training, and which checkpoint the report's numbers come from.

One colour per baseline, one line per seed (x: meta-update, y: clean accuracy on the job's fixed
validation episodes, `bench.run.training`), a star on the checkpoint each seed kept (the best
validation, ``select: best_val``). A line that ends before the others stopped early; one whose
star sits on its last point was still improving at its step cap. Seeds are drawn, not averaged:
with early stopping they end at different steps, and a mean over the seeds still training
would jump where one stops.
"""

from __future__ import annotations

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.report.plots.draw import CHANCE, accuracy_limits, chance_label, legend_outside, new_figure
from bench.report.validation import ValidationCurve

PALETTE_SIZE = 10  # matplotlib's default cycle; more baselines than this take tab20's colours


def _colours(count: int) -> list[tuple[float, ...]]:
    """tab10, or tab20's dark shades first and then its light ones (tab20 pairs a dark and a
    light shade of each hue: neighbours in its order would look alike)."""
    if count <= PALETTE_SIZE:
        return [tuple(matplotlib.colormaps["tab10"](i)) for i in range(count)]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [tuple(matplotlib.colormaps["tab20"](order[i % 20])) for i in range(count)]


def validation_figure(rows: dict[str, dict[int, ValidationCurve]], chance: float) -> Figure:
    """Validation accuracy (%) by meta-update: ``rows`` maps a baseline's title to its seeds'
    curves (seed -> `ValidationCurve`), drawn in the given order."""
    figure, axes = new_figure()
    values: list[float] = []
    for colour, (title, seeds) in zip(_colours(len(rows)), rows.items(), strict=True):
        for i, (_, curve) in enumerate(sorted(seeds.items())):
            steps, accuracy = [s for s, _ in curve.points], [a for _, a in curve.points]
            axes.plot(steps, accuracy, color=colour, linewidth=1.0, alpha=0.85, label=title if i == 0 else None)
            values += accuracy
            kept = curve.accuracy_at(curve.selected) if curve.selected is not None else None
            if kept is not None:
                axes.plot([curve.selected], [kept], marker="*", markersize=8, color=colour, linestyle="none")
    axes.axhline(chance, label=chance_label(chance), **CHANCE)
    axes.set_ylim(*accuracy_limits(values, chance))
    axes.set(xlabel="meta-update", ylabel="validation accuracy (%)", title="Validation accuracy during training")
    axes.grid(alpha=0.3)
    star = Line2D([], [], marker="*", markersize=8, color="0.3", linestyle="none", label="checkpoint kept")
    legend_outside(figure, axes, [star])
    return figure
