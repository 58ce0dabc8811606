"""Drawing the report's figures (matplotlib, Agg canvas, no pyplot global state), PNG and SVG.

Every accuracy axis carries a dashed chance line at 100/way % (an accuracy at chance is no
robustness at all). Legends sit to the right of the axes, never over a line or band: the
legend is measured and the figure widened to hold it, while the axes keep one size in inches
(figures line up side by side). The width is rounded up to a quarter inch so a font-metric
difference of a pixel does not change the image size.

Byte-stable: matplotlib's default style (a user's matplotlibrc must not change the files),
fixed ``svg.hashsalt``, text kept as text in SVG, no date or software version in the metadata.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.report.plots.data import Curve
from bench.stats import Interval

STYLE: dict[str, Any] = {"svg.hashsalt": "fewshot-bench", "svg.fonttype": "none", "font.family": "DejaVu Sans",
                         "font.size": 9, "figure.dpi": 100, "savefig.dpi": 100}
LEFT, WIDTH, BOTTOM, HEIGHT, TOP = 0.65, 4.3, 0.5, 2.75, 0.35  # axes placement, inches
GAP, QUANTUM, MAX_ROWS = 0.15, 0.25, 14  # legend gap and width step (inches), entries per legend column
CROWDED = 0.1  # adjacent x ticks closer than this fraction of the range crowd a linear axis
CHANCE = {"color": "0.35", "linestyle": "--", "linewidth": 1.0}


@contextmanager
def plot_style() -> Iterator[None]:
    """matplotlib's default style plus ours, for drawing and for saving."""
    with matplotlib.style.context("default"), matplotlib.rc_context(cast(Any, STYLE)):
        yield


def render(figure: Figure) -> tuple[bytes, bytes]:
    """PNG and SVG bytes of ``figure`` (call inside `plot_style`)."""
    png, svg = io.BytesIO(), io.BytesIO()
    figure.savefig(png, format="png", metadata={"Software": None})
    figure.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return png.getvalue(), svg.getvalue()


def new_figure() -> tuple[Figure, Any]:
    figure = Figure(figsize=(LEFT + WIDTH + GAP, BOTTOM + HEIGHT + TOP))
    FigureCanvasAgg(figure)  # a renderer to measure the legend with
    return figure, figure.subplots()


def chance_label(chance: float) -> str:
    return f"chance ({chance:.3g}%)"


def accuracy_limits(values: list[float], chance: float | None) -> tuple[float, float]:
    """An accuracy range holding the data (and the chance line, unless None), within [-2, 102]."""
    finite = [v for v in (*values, *([] if chance is None else [chance])) if math.isfinite(v)]
    return max(min(finite) - 4.0, -2.0), min(max(finite) + 4.0, 102.0)


def legend_outside(figure: Figure, axes: Any, extra: list[Any]) -> None:
    """The legend to the right of the axes, the figure widened to hold it."""
    handles, labels = axes.get_legend_handles_labels()
    handles += extra
    labels += [h.get_label() for h in extra]
    columns = math.ceil(len(handles) / MAX_ROWS)
    legend = axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0 + GAP / WIDTH, 1.0),
                         borderaxespad=0.0, fontsize=8, ncols=columns)  # anchored in axes fractions
    renderer = cast(FigureCanvasAgg, figure.canvas).get_renderer()
    width = legend.get_window_extent(renderer).width / figure.dpi
    total = math.ceil((LEFT + WIDTH + GAP + width + 0.1) / QUANTUM) * QUANTUM
    height = BOTTOM + HEIGHT + TOP
    figure.set_size_inches(total, height)
    figure.subplots_adjust(left=LEFT / total, right=(LEFT + WIDTH) / total, bottom=BOTTOM / height,
                           top=(BOTTOM + HEIGHT) / height)


def _x_scale(axes: Any, ticks: tuple[tuple[float, str], ...]) -> str:
    """A log x axis where a linear one would crowd the labels (radii 0, 2/255, 8/255, 32/255;
    steps 1, 10, 100): symmetric-log, linear up to the smallest value, when 0 is on the axis.
    Returns what the axis title adds to say so."""
    xs = [x for x, _ in ticks]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    if len(xs) < 3 or min(gaps) >= CROWDED * (xs[-1] - xs[0]):
        return ""
    if xs[0] > 0:
        axes.set_xscale("log")
        return " (log scale)"
    axes.set_xscale("symlog", linthresh=xs[1], linscale=1.0)
    return f" (log scale above {ticks[1][1]})"


def _ticks(axes: Any, ticks: tuple[tuple[float, str], ...]) -> None:
    """Ticks at the measured x values only, labelled as the suite writes them, and a 5% margin
    each side measured on the axis' own scale (matplotlib's on a symlog axis is lopsided)."""
    axes.set_xticks([x for x, _ in ticks], [text for _, text in ticks])
    axes.minorticks_off()
    scale = axes.xaxis.get_transform()
    low, high = scale.transform([ticks[0][0], ticks[-1][0]])
    pad = 0.05 * (high - low)
    axes.set_xlim(*scale.inverted().transform([low - pad, high + pad]))


def line_figure(curve: Curve, chance: float, level: float) -> Figure:
    """One line per baseline with its CI as a band, the chance line, the legend outside."""
    figure, axes = new_figure()
    values: list[float] = []
    for label, points in curve.lines.items():
        xs = [x for x, _ in points]
        mean = [100 * iv.mean for _, iv in points]
        low, high = [100 * iv.low for _, iv in points], [100 * iv.high for _, iv in points]
        (line,) = axes.plot(xs, mean, marker="o", markersize=4, label=label)
        axes.fill_between(xs, low, high, color=line.get_color(), alpha=0.18, linewidth=0)  # NaN bounds: no band
        values += mean + low + high
    axes.axhline(chance, label=chance_label(chance), **CHANCE)
    axes.set_ylim(*accuracy_limits(values, chance))
    scale = _x_scale(axes, curve.ticks)  # before the ticks: a new scale resets them
    _ticks(axes, curve.ticks)
    axes.set(xlabel=curve.xlabel + scale, ylabel="accuracy (%)", title=curve.title)
    axes.grid(alpha=0.3)
    legend_outside(figure, axes, [Patch(facecolor="0.5", alpha=0.3, label=f"{level:.0%} CI")])
    return figure


def _bars(interval: Interval) -> list[list[float]]:
    """Asymmetric error bars (a bootstrap interval need not be centred); none where undefined."""
    below, above = 100 * (interval.mean - interval.low), 100 * (interval.high - interval.mean)
    return [[below if math.isfinite(below) else 0.0], [above if math.isfinite(above) else 0.0]]


def scatter_figure(points: list[tuple[str, Interval, Interval]], ylabel: str, title: str,
                   chance: float) -> Figure:
    """Clean (x) vs robust (y) accuracy, one point with CI bars per baseline, each axis fitted to
    its data; chance where it falls in range and the diagonal robust = clean (no accuracy lost)
    where the two ranges overlap."""
    figure, axes = new_figure()
    xs: list[float] = []
    ys: list[float] = []
    for label, x, y in points:
        axes.errorbar([100 * x.mean], [100 * y.mean], xerr=_bars(x), yerr=_bars(y), marker="o", capsize=3,
                      label=label)
        xs += [100 * v for v in (x.mean, x.low, x.high)]
        ys += [100 * v for v in (y.mean, y.low, y.high)]
    # each axis fitted to its own data: clean accuracies of 95-99% and robust ones of 5-60% would
    # otherwise share one 0-100 range and the clean ones crowd one edge; chance bounds only y
    x_range, y_range = accuracy_limits(xs, None), accuracy_limits(ys, chance)
    axes.axhline(chance, label=chance_label(chance), **CHANCE)
    if x_range[0] <= chance <= x_range[1]:
        axes.axvline(chance, **CHANCE)
    low, high = max(x_range[0], y_range[0]), min(x_range[1], y_range[1])
    if low < high:
        axes.plot([low, high], [low, high], color="0.6", linestyle=":", linewidth=1.0, label="robust = clean")
    axes.set(xlim=x_range, ylim=y_range, xlabel="clean accuracy (%)", ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    legend_outside(figure, axes, [])
    return figure
