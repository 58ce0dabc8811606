"""The report's figures, inspected as matplotlib figures before rendering and as SVG text.

The fixture is a robust-glyphs-like table (plain `RunRecord` values, no MLflow store): four
baselines; FGSM, PGD-20, APGD-CE and Square at three L-inf radii; PGD at 8/255 with 5, 10
and 20 steps; PGD-L2 at three L2 radii; noise and blur corruptions and elastic transform (a
digital corruption with an option of its own) at severities 1, 3, 5, contrast at 3 only (left
out of the digital mean) and fog at 3 only (weather: a one-point family, no figure).
Accuracies fall with the radius, the steps and the severity, so every figure has curves.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bench.report.views import row_titles

SUITE = """\
name: plots
description: Fixture suite of the plot tests (synthetic records).
seeds: [0]
datasets:
  - {name: glyphs, way: 5, shot: 1, query: 4}
train: {steps: 3, meta_batch: 2}
eval: {episodes: 12}
baselines:
  - protonet
  - {name: protonet, label: protonet-aq, params: {lr: 0.002}}
  - maml
  - {name: maml, label: maml-aq, params: {inner_lr: 0.02}}
threats:
  - clean
  - {name: fgsm, params: {eps: [2/255, 8/255, 32/255]}}
  - {name: pgd, params: {eps: 2/255, alpha: 0.5/255, steps: 20}}
  - {name: pgd, params: {eps: 8/255, alpha: 2/255, steps: [5, 10, 20]}}
  - {name: pgd, params: {eps: 32/255, alpha: 8/255, steps: 20}}
  - {name: apgd_ce, params: {eps: [2/255, 8/255, 32/255], steps: 20}}
  - {name: square, params: {eps: [2/255, 8/255, 32/255], n_queries: 500}}
  - {name: pgd_l2, params: {eps: [0.25, 0.5, 1.0]}}
  - {name: gaussian_noise, params: {severity: [1, 3, 5]}}
  - {name: shot_noise, params: {severity: [1, 3, 5]}}
  - {name: defocus_blur, params: {severity: [1, 3, 5]}}
  - {name: fog, params: {severity: 3}}
  - {name: contrast, params: {severity: 3}}
  - {name: elastic_transform, params: {severity: [1, 3, 5]}}
"""
STEM = "glyphs-5w1s-28px-q4"
NAMES = [f"{STEM}-{n}" for n in (
    "acc-vs-eps-linf-fgsm", "acc-vs-eps-linf-pgd", "acc-vs-eps-linf-apgd_ce", "acc-vs-eps-linf-square",
    "acc-vs-eps-l2-pgd_l2", "acc-vs-steps-pgd-linf-8", "acc-vs-severity-noise", "acc-vs-severity-blur",
    "acc-vs-severity-digital", "acc-vs-severity-all", "clean-vs-robust-l2-0.25", "clean-vs-robust-l2-0.5",
    "clean-vs-robust-l2-1", "clean-vs-robust-linf-2", "clean-vs-robust-linf-8", "clean-vs-robust-linf-32")]


def _unit(*parts: object) -> float:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:12], 16) / 16**12


def _accuracies(label: str, job, params: dict[str, str], episodes: int) -> list[float]:
    """Twentieths that fall with the radius (L2 scaled to L-inf's range), steps and severity."""
    eps = float(params.get("threat.config.eps", 0)) * (0.1 if job.threat.name == "pgd_l2" else 1)
    steps = float(params.get("threat.config.steps", 1))
    severity = float(params.get("threat.config.severity", 0))
    base = {"protonet": 0.9, "protonet-aq": 0.85, "maml": 0.8, "maml-aq": 0.78}[label]
    robust = 4.0 if label.endswith("-aq") else 9.0
    mean = base - robust * eps * (1 + np.log10(steps) / 4) - 0.06 * severity
    return [round(min(max(mean + 0.2 * (_unit(label, job.threat.label, i) - 0.5), 0), 1) * 20) / 20
            for i in range(episodes)]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory):
    """The analysed table of the fixture suite, every job finished."""
    from bench.plan.jobs import make_plan
    from bench.report.cells import collect
    from bench.report.compare import Options, analyse
    from bench.report.filters import Filters
    from bench.suite.load import load_suite
    from bench.tracking import RunRecord
    from bench.tracking.records import EPISODES_HASH
    from bench.tracking.tags import flatten, identity_tags

    path = tmp_path_factory.mktemp("plots") / "plots.yaml"
    path.write_text(SUITE)
    suite = load_suite(str(path))
    records = []
    for job in make_plan(suite).all_eval_jobs():
        tags = {**identity_tags(suite.name, job), EPISODES_HASH: "e" * 16}
        params = flatten("", job.identity)
        values = _accuracies(job.train.variant.baseline.label, job, params, suite.eval.episodes)
        records.append(RunRecord(job.key, "FINISHED", tags, params, {"device_seconds": 1.0}, values))
    return analyse(collect(suite, records, Filters(), None).settings[0], Options())  # as `build_report` does


@pytest.fixture(scope="module")
def figures(table) -> dict:
    from bench.report.plots.figures import table_figures

    return {name: (caption, figure) for name, caption, figure in table_figures(table)}


def _axes(figure):
    return figure.axes[0]


def test_names_say_what_each_figure_shows(figures: dict) -> None:
    assert list(figures) == NAMES  # weather (fog at one severity) and PGD at one radius give none


def test_captions_name_the_radius_and_the_family(figures: dict) -> None:
    caption = figures[f"{STEM}-clean-vs-robust-linf-8"][0]
    assert caption.startswith("Clean vs robust accuracy at L∞ 8/255 (robust: per-episode worst case over FGSM,")
    assert "PGD-20" in caption and "Square-500" in caption
    alone = figures[f"{STEM}-clean-vs-robust-l2-0.5"][0]
    assert alone == "Clean vs robust accuracy at L2 0.5 (robust: PGD-L2-20, the only attack at this radius)"
    assert figures[f"{STEM}-acc-vs-severity-noise"][0] == (
        "Accuracy vs corruption severity, noise corruptions (mean of Gaussian noise, Shot noise)")
    assert figures[f"{STEM}-acc-vs-eps-linf-pgd"][0] == (
        "Accuracy vs L∞ radius, PGD-20 (α scaled with the radius; ε = 0: clean accuracy)")
    assert figures[f"{STEM}-acc-vs-eps-l2-pgd_l2"][0] == "Accuracy vs L2 radius, PGD-L2-20 (ε₂ = 0: clean accuracy)"
    assert figures[f"{STEM}-acc-vs-steps-pgd-linf-8"][0] == "Accuracy vs attack steps, PGD, ε = 8/255"
    assert figures[f"{STEM}-acc-vs-severity-digital"][0] == (  # contrast, at one severity only, is left out
        "Accuracy vs corruption severity, digital corruptions (Elastic transform)")
    assert figures[f"{STEM}-acc-vs-severity-all"][0] == ("Accuracy vs corruption severity, all corruptions (mean of "
                                                         "Gaussian noise, Shot noise, Defocus blur, Elastic transform)")


def test_linf_radii_are_fractions_of_255_and_l2_radii_are_not_scaled(figures: dict) -> None:
    linf = _axes(figures[f"{STEM}-acc-vs-eps-linf-fgsm"][1])
    assert [t.get_text() for t in linf.get_xticklabels()] == ["0", "2/255", "8/255", "32/255"]
    assert np.allclose(linf.get_xticks(), [0, 2 / 255, 8 / 255, 32 / 255])
    assert "L∞" in linf.get_xlabel()
    l2 = _axes(figures[f"{STEM}-acc-vs-eps-l2-pgd_l2"][1])
    assert np.allclose(l2.get_xticks(), [0, 0.25, 0.5, 1.0])  # never x 255
    assert [t.get_text() for t in l2.get_xticklabels()] == ["0", "0.25", "0.5", "1"]
    assert "L2" in l2.get_xlabel() and all("/255" not in t.get_text() for t in l2.get_xticklabels())


def test_every_figure_has_a_labelled_chance_line(figures: dict) -> None:
    for name, (_, figure) in figures.items():
        lines = [line for line in _axes(figure).get_lines() if line.get_label() == "chance (20%)"]
        assert len(lines) == 1, name
        assert list(lines[0].get_ydata()) == [20, 20], name
        low, high = _axes(figure).get_ylim()
        assert low < 20 < high, name
        legend = [t.get_text() for t in _axes(figure).get_legend().get_texts()]
        assert "chance (20%)" in legend, name


def test_lines_have_ci_bands_and_one_line_per_baseline(figures: dict, table) -> None:
    rows = [row_titles(table)[label] for label, _ in table.data.rows]  # as the tables name them
    for name, (_, figure) in figures.items():
        if "-acc-vs-" not in name:
            continue
        axes = _axes(figure)
        drawn = [line.get_label() for line in axes.get_lines() if not line.get_label().startswith("chance")]
        assert drawn == rows, name
        assert len(axes.collections) == len(rows), name  # one fill_between band each
        assert "95% CI" in [t.get_text() for t in axes.get_legend().get_texts()], name


def test_legends_are_outside_the_axes(figures: dict) -> None:
    for name, (_, figure) in figures.items():
        renderer = figure.canvas.get_renderer()
        box = _axes(figure).get_legend().get_window_extent(renderer)
        axes = _axes(figure).get_window_extent(renderer)
        assert box.x0 > axes.x1, name  # entirely to the right: it covers no line, band or bar
        assert box.x1 <= figure.bbox.x1 and box.y0 >= figure.bbox.y0, name  # and within the figure


def test_family_severity_is_the_per_episode_mean_over_its_corruptions(figures: dict, table) -> None:
    axes = _axes(figures[f"{STEM}-acc-vs-severity-noise"][1])
    line = next(line for line in axes.get_lines() if line.get_label() == "MAML (transductive)")
    assert list(line.get_xdata()) == [1, 3, 5]
    cells = table.data.cells
    expected = [100 * np.mean([cells[("maml", f"{n}[severity={s}]")].per_seed[0] for n in ("gaussian_noise",
                                                                                           "shot_noise")])
                for s in (1, 3, 5)]
    assert np.allclose(line.get_ydata(), expected)


def test_eps_curves_start_at_clean_accuracy(figures: dict, table) -> None:
    axes = _axes(figures[f"{STEM}-acc-vs-eps-linf-apgd_ce"][1])
    line = next(line for line in axes.get_lines() if line.get_label() == "ProtoNet")
    assert line.get_xdata()[0] == 0
    assert np.isclose(line.get_ydata()[0], 100 * table.cells[("protonet", "clean")].interval.mean)


def test_svg_text_and_bytes_are_stable(table, tmp_path: Path) -> None:
    from bench.report.plots.figures import table_plots

    first, second = table_plots(table), table_plots(table)
    assert [(p.name, p.png, p.svg) for p in first] == [(p.name, p.png, p.svg) for p in second]
    svg = next(p.svg for p in first if p.name.endswith("acc-vs-eps-l2-pgd_l2")).decode()
    assert "chance (20%)" in svg and "L2 radius" in svg and "/255" not in svg
    assert all(b"Date" not in p.svg and b"Matplotlib v" not in p.svg for p in first)


def test_same_named_families_get_the_parameters_that_differ() -> None:
    from bench.report.plots.data import Curve
    from bench.report.plots.figures import unique_keys

    def curve(key: str, **fixed: str) -> Curve:
        return Curve(key, "", "", "", ((0.0, "0"),), {}, tuple(fixed.items()))

    curves = [curve("acc-vs-eps-linf-pgd", steps="20", random_start="True"),
              curve("acc-vs-eps-linf-pgd", steps="5", random_start="True"), curve("acc-vs-eps-linf-fgsm"),
              curve("acc-vs-eps-linf-x"), curve("acc-vs-eps-linf-x")]
    assert unique_keys(curves) == ["acc-vs-eps-linf-pgd-steps20", "acc-vs-eps-linf-pgd-steps5",
                                   "acc-vs-eps-linf-fgsm", "acc-vs-eps-linf-x-1", "acc-vs-eps-linf-x-2"]


def test_severity_curves_average_the_same_corruptions_at_every_severity() -> None:
    from bench.report.model import Column
    from bench.report.plots.data import balanced
    from bench.threats.base import ThreatKind

    def run(name: str, severity: int) -> Column:
        return Column(f"{name}[severity={severity}]", ThreatKind.CORRUPTION, name=name,
                      params=(("severity", str(severity)),))

    fog, snow, frost = [run("fog", s) for s in (1, 3, 5)], [run("snow", s) for s in (1, 3, 5)], [run("frost", 3)]
    chosen = balanced(fog + snow + frost)
    assert list(chosen) == [1, 3, 5] and all([c.name for c in v] == ["fog", "snow"] for v in chosen.values())
    assert balanced(frost) == {}  # one severity: no curve
    wide = balanced([run("fog", s) for s in (1, 2, 3, 4, 5)] + snow)  # 5 + 3 cells of fog at 1, 3, 5 and snow
    assert list(wide) == [1, 3, 5]


def test_scatter_axes_are_fitted_to_the_clean_and_the_robust_data_each() -> None:
    """Clean accuracies near 97% and robust ones near 20% each get their own range (issue 25)."""
    from bench.report.plots.draw import scatter_figure
    from bench.stats import Interval

    def at(mean: float) -> Interval:
        return Interval(mean, mean - 0.01, mean + 0.01, "episodes", 100)

    figure = scatter_figure([("ProtoNet", at(0.97), at(0.20)), ("MAML", at(0.95), at(0.35))], "worst (%)", "t", 20.0)
    axes = figure.axes[0]
    assert axes.get_xlim()[0] >= 90 and axes.get_xlim()[1] <= 102  # not down to chance (20%)
    assert axes.get_ylim()[0] <= 20 and axes.get_ylim()[1] < 41  # chance (20%) bounds y only


def test_validation_curves_of_far_apart_step_caps_or_many_rows_get_one_panel_each() -> None:
    from bench.report.plots.validation import needs_panels, validation_figure
    from bench.report.validation import ValidationCurve

    def run(cap: int, every: int) -> dict[int, ValidationCurve]:
        points = tuple((s, 50.0 + 40 * s / cap) for s in range(every, cap + 1, every))
        return {0: ValidationCurve(points, points[-1][0])}

    close = {"ProtoNet": run(2000, 500), "MAML": run(1500, 250)}
    apart = {"ProtoNet": run(20000, 500), "MAML": run(250, 50)}
    many = {f"b{i}": run(1000, 250) for i in range(5)}
    assert not needs_panels(close) and needs_panels(apart) and needs_panels(many)
    assert len(validation_figure(close, 20.0).axes) == 1
    panels = [a for a in validation_figure(apart, 20.0).axes if a.get_visible()]
    assert [a.get_title() for a in panels] == ["ProtoNet", "MAML"] and panels[1].get_xlim()[1] < 300
    assert len([a for a in validation_figure(many, 20.0).axes if a.get_visible()]) == 5
