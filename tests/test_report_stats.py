"""The report's statistics against scipy.stats and against values computed by hand.

Also the parts built on them, on fixed numbers in memory: pairing on shared episodes, best
marks with the Holm correction, derived columns (mean corruption, worst case), published
numbers and filters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bench.errors import BenchError
from bench.registry import THREATS
from bench.report.aggregate import add_aggregates
from bench.report.compare import Options, analyse, pair
from bench.report.filters import parse_filters
from bench.report.model import Cell, Column, ColumnRole, SettingData
from bench.report.text import cell_text, problem_lines
from bench.stats import bootstrap_interval, holm, mean_ci, paired_test, seed_level_ci, t_interval
from bench.suite.load import DataSetting
from bench.suite.published import parse_value
from bench.threats.base import ThreatKind


def test_mean_ci_matches_scipy_t_interval() -> None:
    values = np.random.default_rng(0).uniform(0.3, 0.9, size=200)
    mean, half = mean_ci(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean()) and half == pytest.approx((high - low) / 2, rel=1e-12)


def test_mean_ci_by_hand_and_degenerate_cases() -> None:
    # values 0, 1: mean 0.5, sd 0.7071, sem 0.5, t(0.975, 1) = 12.7062
    mean, half = mean_ci([0.0, 1.0])
    assert mean == 0.5 and half == pytest.approx(0.5 * 12.706204736, rel=1e-8)
    assert mean_ci([0.7, 0.7, 0.7]) == (pytest.approx(0.7), 0.0)  # equal values: no spread
    mean, half = mean_ci([0.4])
    assert mean == 0.4 and math.isnan(half)  # one value: no interval


def test_seed_interval_by_hand() -> None:
    # seed means 0.3, 0.7, 0.5: mean 0.5, sd 0.2, sem 0.2 / sqrt(3), t(0.975, 2) = 4.302653
    interval = t_interval([[0.2, 0.4], [0.6, 0.8], [0.5, 0.5]])
    assert interval.rule == "seeds" and interval.n == 3
    assert interval.mean == pytest.approx(0.5) and interval.half == pytest.approx(0.2 / math.sqrt(3) * 4.302653, 1e-6)
    one = t_interval([[0.0, 1.0]])  # one seed: the episode interval, 0.5 +- 0.5 * t(0.975, 1)
    assert one.rule == "episodes" and one.half == pytest.approx(0.5 * 12.706204736, rel=1e-8)
    # `seed_level_ci`, under `t_interval`: with several seeds, the t interval of the seed means
    mean, half, rule = seed_level_ci([[0.2, 0.4], [0.6, 0.8], [0.5, 0.5]])
    expected_mean, expected_half = mean_ci([0.3, 0.7, 0.5])
    assert (mean, half, rule) == (pytest.approx(expected_mean), pytest.approx(expected_half), "seeds")
    assert seed_level_ci([[0.2, 0.4]])[2] == "episodes"


def test_bootstrap_is_deterministic_and_agrees_with_scipy_on_one_seed() -> None:
    values = np.random.default_rng(1).binomial(20, 0.6, size=300) / 20
    first, again = bootstrap_interval([values]), bootstrap_interval([values])
    assert first == again and first.rule == "bootstrap-episodes"
    reference = stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile",
                                random_state=np.random.default_rng(7)).confidence_interval
    assert first.low == pytest.approx(reference.low, abs=0.004)
    assert first.high == pytest.approx(reference.high, abs=0.004)
    _, half = mean_ci(values)
    assert first.half == pytest.approx(half, rel=0.1)  # large n: close to the t interval


def test_two_level_bootstrap_by_hand() -> None:
    # constant episodes per seed: a resample is the mean of two seed draws from {0.2, 0.4}, so its
    # distribution is 0.2, 0.3, 0.4 with probabilities 1/4, 1/2, 1/4: the 95% interval is [0.2, 0.4]
    interval = bootstrap_interval([[0.2] * 10, [0.4] * 10])
    assert (interval.low, interval.high, interval.mean) == (pytest.approx(0.2), pytest.approx(0.4), pytest.approx(0.3))
    assert interval.rule == "bootstrap-seeds" and interval.n == 2


def test_paired_t_against_scipy_and_by_hand() -> None:
    # differences 1, 0, 0, 1: t = sqrt(3) with 3 df, whose two-sided p is 1/2 - 1/pi exactly
    result = paired_test([1, 0, 1, 1], [0, 0, 1, 0])
    assert result.p == pytest.approx(0.5 - 1 / math.pi, rel=1e-10)
    assert result.p == pytest.approx(stats.ttest_rel([1, 0, 1, 1], [0, 0, 1, 0]).pvalue)
    assert result.diff == 0.5 and result.half == pytest.approx(math.sqrt(1 / 3) / 2 * 3.182446305, rel=1e-8)


def test_wilcoxon_against_scipy_and_by_hand() -> None:
    a, b = [0.9, 0.8, 0.7, 0.95, 0.6, 0.85], [0.5, 0.6, 0.72, 0.5, 0.4, 0.3]
    result = paired_test(a, b, test="wilcoxon")
    # one negative difference, the smallest |d|: W = 1; exact two-sided p = 2 * 2 / 2**6
    assert result.test == "wilcoxon" and result.p == pytest.approx(0.0625)
    assert result.p == pytest.approx(stats.wilcoxon(a, b).pvalue)


def test_degenerate_differences() -> None:
    assert paired_test([0.5, 0.7, 0.2], [0.5, 0.7, 0.2]).p == 1.0
    assert paired_test([0.5, 0.7, 0.2], [0.5, 0.7, 0.2], test="wilcoxon").p == 1.0
    # a constant nonzero difference: t is infinite; the exact sign-flip p is 2 / 2**n
    assert paired_test([0.6, 0.8], [0.4, 0.6]).p == 0.5
    assert paired_test([1.0] * 6, [0.5] * 6).p == pytest.approx(stats.wilcoxon([1.0] * 6, [0.5] * 6).pvalue)


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def _cell(values: dict[int, list[float]], seeds: tuple[int, ...] = (0,), hashes: str = "h") -> Cell:
    cell = Cell(seeds, {s: np.asarray(v, dtype=float) for s, v in values.items()}, {s: hashes for s in values})
    cell.problems = {s: "missing: not run" for s in seeds if s not in values}
    return cell


def test_pairing_unit_follows_the_shared_seeds() -> None:
    a = _cell({0: [1, 1, 0, 1], 1: [1, 0, 0, 1]}, (0, 1))
    b = _cell({0: [0, 1, 0, 1], 1: [0, 0, 0, 1]}, (0, 1))
    assert pair(a, b, Options()).unit == "seeds"  # per-seed means 0.75 - 0.5 and 0.5 - 0.25
    assert pair(a, _cell({0: [0, 1, 0, 1]}, (0, 1)), Options()) is None  # one shared seed of two: not compared
    assert pair(_cell({0: [1, 1, 0, 1]}, (0,)), _cell({0: [0, 1, 0, 1]}, (0,)), Options()).unit == "episodes"
    assert pair(a, _cell({0: [0, 1, 0, 1]}, (0, 1), hashes="other"), Options()) is None  # not the same episodes


def _table(cells: dict[str, Cell], columns: tuple[str, ...] = ("clean",)) -> SettingData:
    """One table whose every column holds the same ``cells`` (row label -> cell)."""
    rows = [(label, label) for label in cells]
    threats = [Column(c, THREATS.get(c).kind, (), c) for c in columns]  # kinds as the classes declare them
    return SettingData(DataSetting("glyphs", 28, 5, 1, 4), rows, threats,
                       {(label, c): cell for label, cell in cells.items() for c in columns}, (0,), {})


def test_best_is_bold_only_when_significant_and_ties_are_marked() -> None:
    strong = [0.9, 0.95, 0.85, 0.9, 0.95, 0.9, 0.85, 0.95]
    weak = [0.5, 0.55, 0.45, 0.5, 0.6, 0.5, 0.45, 0.55]
    result = analyse(_table({"a": _cell({0: strong}), "b": _cell({0: weak})}), Options())
    assert result.cells[("a", "clean")].bold and not result.cells[("a", "clean")].tie
    close = [v + d for v, d in zip(strong, [0.05, -0.05, 0.0, 0.05, -0.05, 0.0, 0.05, -0.1], strict=True)]
    result = analyse(_table({"a": _cell({0: strong}), "b": _cell({0: close}), "c": _cell({0: weak})}), Options())
    marks = {label: (result.cells[(label, "clean")].bold, result.cells[(label, "clean")].tie) for label in "abc"}
    assert marks == {"a": (False, True), "b": (False, True), "c": (False, False)}
    assert len(result.comparisons) == 2 and all(c.p_holm >= c.paired.p for c in result.comparisons)


def test_holm_can_remove_a_marginal_win() -> None:
    # a beats b with p = 0.037 in one column; with the same comparison in a second column, Holm
    # multiplies the smaller p by 2 (0.074 > 0.05), so neither column has a bold best
    a, b = [1.0] * 10, [0.0] * 4 + [1.0] * 6
    assert 0.025 < stats.ttest_rel(a, b).pvalue < 0.05
    alone = analyse(_table({"a": _cell({0: a}), "b": _cell({0: b})}), Options())
    assert alone.cells[("a", "clean")].bold
    family = analyse(_table({"a": _cell({0: a}), "b": _cell({0: b})}, ("clean", "fgsm")), Options())
    assert [c.p_holm for c in family.comparisons] == pytest.approx([2 * stats.ttest_rel(a, b).pvalue] * 2)
    assert not family.cells[("a", "clean")].bold and family.cells[("b", "fgsm")].tie


def test_mean_corruption_and_worst_case_per_episode() -> None:
    from bench.threats.base import ThreatModel

    at8, at32 = ThreatModel("Linf", 8 / 255), ThreatModel("Linf", 32 / 255)
    columns = [Column("fgsm", ThreatKind.ATTACK, threat_model=at8), Column("pgd", ThreatKind.ATTACK, threat_model=at8),
               Column("pgd32", ThreatKind.ATTACK, threat_model=at32),
               Column("noise", ThreatKind.CORRUPTION, params=(("severity", "1"),)),
               Column("blur", ThreatKind.CORRUPTION, params=(("severity", "1"),))]
    cells = {("r", "fgsm"): _cell({0: [0.6, 0.2, 0.8]}), ("r", "pgd"): _cell({0: [0.4, 0.3, 0.9]}),
             ("r", "pgd32"): _cell({0: [0.0, 0.0, 0.1]}),
             ("r", "noise"): _cell({0: [1.0, 0.5, 0.0]}), ("r", "blur"): Cell((0,), problems={0: "FAILED: boom"})}
    derived = add_aggregates(columns, cells, ["r"], (0,))
    assert [c.label for c in derived] == ["mean corruption", "worst L∞ 8/255"]  # one radius, never mixed
    assert cells[("r", "worst L∞ 8/255")].per_seed[0].tolist() == [0.4, 0.2, 0.8]
    assert cells[("r", "mean corruption")].problems == {0: "missing: needs blur"}
    cells[("r", "blur")] = _cell({0: [0.0, 0.5, 1.0]})
    add_aggregates(columns, cells, ["r"], (0,))
    assert cells[("r", "mean corruption")].per_seed[0].tolist() == [0.5, 0.5, 0.5]


def test_failed_cells_say_why() -> None:
    data = _table({"a": _cell({0: [0.5, 0.6]}), "b": Cell((0,), problems={0: "FAILED: RuntimeError: boom"})})
    result = analyse(data, Options())
    assert cell_text(result.cells[("b", "clean")]) == "FAILED: RuntimeError: boom"
    assert cell_text(result.cells[("b", "clean")], reasons=False) == "FAILED"
    assert problem_lines(result) == ["b, seed 0: FAILED: RuntimeError: boom (clean)"]
    assert not result.cells[("a", "clean")].bold  # nothing to be better than


def test_published_values() -> None:
    assert parse_value("49.42 +- 0.78", "p").text() == "49.42 ± 0.78"
    assert parse_value("49.42 ± 0.78", "p").text() == "49.42 ± 0.78"
    assert parse_value(63.1, "p").text() == "63.1"
    assert parse_value({"accuracy": "70 +- 1", "source": "Table 2"}, "p").source == "Table 2"
    with pytest.raises(BenchError, match="49.42 \\+- 0.78"):
        parse_value("about fifty", "published.protonet")


def test_filters_compare_numbers_by_value() -> None:
    variants = [("protonet", "protonet"), ("protonet-aq", "protonet"), ("maml", "maml")]
    filters = parse_filters(["threat=pgd,clean", "threat.config.eps=8/255"], "protonet")
    filters = filters.resolve(["threat", "threat.config.eps", "label"], variants)
    tags = {"threat": "pgd", "threat.config.eps": str(8 / 255), "label": "protonet", "baseline": "protonet"}
    assert filters.matches(tags)
    assert not filters.matches({**tags, "threat": "fgsm"})
    assert not filters.matches({**tags, "label": "protonet-aq"})  # a label names one variant only
    assert not filters.matches({**tags, "label": "maml", "baseline": "maml"})
    assert parse_filters([], "maml,protonet-aq").resolve([], variants).baselines == ("maml", "protonet-aq")
    with pytest.raises(BenchError, match="Did you mean 'threat'"):
        parse_filters(["treat=pgd"], None).resolve(["threat", "label"], variants)
    with pytest.raises(BenchError, match="Did you mean 'maml'"):
        parse_filters([], "mamll").resolve([], variants)
    with pytest.raises(BenchError, match="KEY=VALUE"):
        parse_filters(["threat"], None)


def test_a_partial_multi_seed_cell_is_not_compared_on_episodes() -> None:
    """Before, a row with one finished seed of three was tested on its episodes (p ~ 1e-21, bold)
    inside a seed-level table; now it is compared on shared seeds only, or not at all."""
    from bench.report.compare import Options, pair
    from bench.report.model import Cell

    rng = np.random.default_rng(0)
    full = Cell((0, 1, 2), {s: rng.uniform(0.8, 1.0, 60) for s in (0, 1, 2)}, {s: "h" for s in (0, 1, 2)})
    partial = Cell((0, 1, 2), {0: rng.uniform(0.0, 0.2, 60)}, {0: "h"})
    assert pair(full, partial, Options()) is None
    two = Cell((0, 1, 2), {0: rng.uniform(0.0, 0.2, 60), 1: rng.uniform(0.0, 0.2, 60)}, {0: "h", 1: "h"})
    assert pair(full, two, Options()).unit == "seeds"
    one_seed = Cell((0,), {0: full.per_seed[0]}, {0: "h"})
    assert pair(one_seed, Cell((0,), {0: partial.per_seed[0]}, {0: "h"}), Options()).unit == "episodes"


# ---- the tests a mutation run asked for: each fails for one wrong implementation -------------


def _columns_table(columns: list[Column], values: dict[tuple[str, str], dict[int, list[float]]],
                   seeds: tuple[int, ...] = (0,)) -> SettingData:
    """A table with the given columns; ``values``: (row, column) -> seed -> per-episode accuracies."""
    rows = list(dict.fromkeys(row for row, _ in values))
    cells = {(row, c.label): _cell(values.get((row, c.label), {}), seeds) for row in rows for c in columns}
    derived = add_aggregates(columns, cells, rows, seeds)
    return SettingData(DataSetting("glyphs", 28, 5, 1, 4), [(r, "protonet") for r in rows], columns + derived,
                       cells, seeds, {})


def test_pairing_on_several_seeds_tests_the_seed_means_not_the_pooled_episodes() -> None:
    # Per-seed means a 0.75, 0.5, 0.75, 1.0 and b 0.5, 0.5, 0.25, 0.75: differences 0.25, 0, 0.5,
    # 0.25 on n = 4 seeds (p = 0.092); pooling the 16 episodes would give n = 16 and p = 0.041.
    a_values = {0: [1, 1, 0, 1], 1: [1, 0, 0, 1], 2: [1, 1, 1, 0], 3: [1, 1, 1, 1]}
    b_values = {0: [0, 1, 0, 1], 1: [1, 0, 0, 1], 2: [0, 1, 0, 0], 3: [1, 0, 1, 1]}
    seeds = (0, 1, 2, 3)
    result = pair(_cell(a_values, seeds), _cell(b_values, seeds), Options())
    means_a = [float(np.mean(a_values[s])) for s in seeds]
    means_b = [float(np.mean(b_values[s])) for s in seeds]
    differences = np.subtract(means_a, means_b)
    assert result is not None and (result.unit, result.n) == ("seeds", 4)
    assert result.diff == pytest.approx(differences.mean())
    assert result.half == pytest.approx(mean_ci(differences)[1])
    assert result.p == pytest.approx(stats.ttest_rel(means_a, means_b).pvalue, rel=1e-10)
    pooled = stats.ttest_rel(sum(a_values.values(), []), sum(b_values.values(), [])).pvalue
    assert pooled < 0.05 < result.p  # pooling would call a difference significant that the seeds do not show


def test_robust_gap_is_clean_minus_threat() -> None:
    columns = [Column("clean", ThreatKind.CLEAN), Column("fgsm", ThreatKind.ATTACK, name="fgsm")]
    clean, attacked = [0.9, 0.8, 1.0, 0.7, 0.9], [0.5, 0.6, 0.4, 0.3, 0.5]
    result = analyse(_columns_table(columns, {("a", "clean"): {0: clean}, ("a", "fgsm"): {0: attacked}}), Options())
    gap = result.gaps[("a", "fgsm")]
    assert gap is not None and gap.diff == pytest.approx(0.4) and gap.diff > 0  # robust accuracy is lower
    assert ("a", "clean") not in result.gaps  # no gap of clean against itself


def test_mean_corruption_is_the_mean_not_the_median_of_the_corruptions() -> None:
    # Per episode, the three corruptions give 0.0, 0.3, 0.9 (mean 0.4, median 0.3).
    columns = [Column(name, ThreatKind.CORRUPTION, name=name, params=(("severity", "1"),))
               for name in ("noise", "blur", "fog")]
    values = {("r", "noise"): {0: [0.0, 0.9, 0.3]}, ("r", "blur"): {0: [0.3, 0.0, 0.9]},
              ("r", "fog"): {0: [0.9, 0.3, 0.0]}}
    data = _columns_table(columns, values)
    assert data.cells[("r", "mean corruption")].per_seed[0].tolist() == pytest.approx([0.4, 0.4, 0.4])
    assert analyse(data, Options()).cells[("r", "mean corruption")].interval.mean == pytest.approx(0.4)


def test_per_severity_mean_corruption_groups_by_the_recorded_severity() -> None:
    # The labels do not carry the severity and the columns alternate severities: only the
    # recorded ``severity`` parameter can group them.
    spec = [("c-a", "noise", "3"), ("c-b", "noise", "1"), ("c-c", "blur", "3"), ("c-d", "blur", "1")]
    columns = [Column(label, ThreatKind.CORRUPTION, name=name, params=(("severity", s),)) for label, name, s in spec]
    values = {("r", "c-a"): {0: [0.2, 0.4]}, ("r", "c-b"): {0: [0.8, 1.0]}, ("r", "c-c"): {0: [0.0, 0.2]},
              ("r", "c-d"): {0: [0.6, 0.6]}}
    data = _columns_table(columns, values)
    derived = {c.label: c for c in data.columns if c.role is ColumnRole.MEAN_CORRUPTION}
    assert list(derived) == ["mean corruption", "mean corruption s=1", "mean corruption s=3"]
    assert derived["mean corruption"].members == ("c-a", "c-b", "c-c", "c-d")
    assert derived["mean corruption s=1"].members == ("c-b", "c-d")
    assert derived["mean corruption s=3"].members == ("c-a", "c-c")
    assert derived["mean corruption s=3"].param("severity") == "3"
    assert data.cells[("r", "mean corruption s=1")].per_seed[0].tolist() == pytest.approx([0.7, 0.8])
    assert data.cells[("r", "mean corruption s=3")].per_seed[0].tolist() == pytest.approx([0.1, 0.3])
    assert data.cells[("r", "mean corruption")].per_seed[0].tolist() == pytest.approx([0.4, 0.55])
