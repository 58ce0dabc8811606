"""Confidence intervals and paired tests on per-episode accuracies (scipy.stats).

Few-shot papers report a 95% CI over test episodes of one trained model: Student t with
``n - 1`` degrees of freedom on the per-episode accuracies. Over seeds, the cell value is the
mean of the seed means with a t interval over seeds (the seed is the unit that was sampled
independently), or optionally a two-level bootstrap that resamples seeds, then episodes within
each drawn seed. Because every baseline and threat sees the same test episodes, two cells are
compared on their per-episode differences (paired), and the family of comparisons of one
table is corrected with Holm's step-down method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from scipy import stats

Values: TypeAlias = Sequence[float] | np.ndarray  # accuracies, one per episode (or seed)

LEVEL = 0.95
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval (fractions, not percent).

    Attributes:
        mean: point estimate. low, high: interval bounds (NaN when undefined).
        rule: ``episodes``, ``seeds``, ``bootstrap-episodes`` or ``bootstrap-seeds``.
        n: number of units the interval is over (episodes or seeds).
    """

    mean: float
    low: float
    high: float
    rule: str
    n: int

    @property
    def half(self) -> float:
        """Half the interval's width (the ``±`` value; for a bootstrap, half the percentile width)."""
        return (self.high - self.low) / 2


def mean_ci(values: Values, level: float = LEVEL) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval.

    Args:
        values: ``(n,)`` per-episode (or per-seed) accuracies.
        level: confidence level.

    Returns:
        ``(mean, half_width)``; the half width is NaN for fewer than two values and 0 when all
        values are equal.
    """
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean()) if data.size else float("nan")
    if data.size < 2:
        return mean, float("nan")
    if float(np.ptp(data)) == 0.0:  # sem would be rounding noise, not 0
        return mean, 0.0
    sem = float(stats.sem(data))
    return mean, float(sem * stats.t.ppf(0.5 + level / 2, data.size - 1))


def seed_level_ci(per_seed: Sequence[Values], level: float = LEVEL) -> tuple[float, float, str]:
    """Cell value over seeds: with one seed, the episode CI; with several, the t CI of seed means.

    Returns:
        ``(mean, half_width, rule)`` where ``rule`` says which interval was used.
    """
    if len(per_seed) == 1:
        mean, half = mean_ci(per_seed[0], level)
        return mean, half, "episodes"
    means = [float(np.mean(s)) for s in per_seed]
    mean, half = mean_ci(means, level)
    return mean, half, "seeds"


def t_interval(per_seed: Sequence[Values], level: float = LEVEL) -> Interval:
    """`seed_level_ci` as an `Interval`."""
    mean, half, rule = seed_level_ci(per_seed, level)
    return Interval(mean, mean - half, mean + half, rule, len(per_seed[0]) if rule == "episodes" else len(per_seed))


def bootstrap_interval(per_seed: Sequence[Values], level: float = LEVEL,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Two-level (seed x episode) percentile bootstrap of the mean of seed means.

    Each resample draws ``S`` seeds with replacement and, independently for every drawn seed,
    that seed's episodes with replacement; the statistic is the mean of the resampled seed
    means. With one seed this is the ordinary episode bootstrap. Deterministic for a given
    ``seed``.

    Args:
        per_seed: ``S`` arrays ``(n_s,)`` of per-episode accuracies.
        level: confidence level. resamples: bootstrap resamples. seed: generator seed.
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in per_seed]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(arrays), size=(resamples, len(arrays)))
    seed_means = np.empty(picks.shape)
    for index, data in enumerate(arrays):
        chosen = picks == index
        draws = rng.integers(0, data.size, size=(int(chosen.sum()), data.size))
        seed_means[chosen] = data[draws].mean(axis=1)
    boot = seed_means.mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    mean = float(np.mean([a.mean() for a in arrays]))
    rule = "bootstrap-episodes" if len(arrays) == 1 else "bootstrap-seeds"
    return Interval(mean, float(low), float(high), rule, arrays[0].size if len(arrays) == 1 else len(arrays))


@dataclass(frozen=True)
class Paired:
    """A paired comparison ``a - b``.

    Attributes:
        diff: mean difference (fraction). half: half-width of its Student-t CI.
        p: two-sided p-value of the paired test. test: ``t`` or ``wilcoxon``.
        unit: ``episodes`` (one shared seed) or ``seeds`` (per-seed mean differences). n: units.
    """

    diff: float
    half: float
    p: float
    test: str
    unit: str
    n: int


def paired_test(a: Values, b: Values, test: str = "t", unit: str = "episodes",
                level: float = LEVEL) -> Paired:
    """Paired comparison of two equally long samples on the same units.

    Args:
        a, b: ``(n,)`` accuracies on the same episodes (or seeds), in the same order.
        test: ``t`` (`scipy.stats.ttest_rel`) or ``wilcoxon`` (`scipy.stats.wilcoxon`,
            zero differences dropped).
        unit: what one value is (recorded in the result).
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    diff, half = mean_ci(x - y, level)
    if x.size < 2 or not np.any(x - y):  # no evidence either way: the tests are undefined
        return Paired(diff, half, 1.0, test, unit, int(x.size))
    if test == "t" and float(np.ptp(x - y)) <= 1e-12:
        # the same nonzero difference everywhere: t is infinite and its p of 0 would call two seeds
        # conclusive; use the exact sign-flip (permutation) p of n equal signs, 2 / 2**n, instead
        return Paired(diff, half, float(2.0 ** (1 - x.size)), test, unit, int(x.size))
    if test == "wilcoxon":
        p = float(stats.wilcoxon(x, y, zero_method="wilcox").pvalue)
    elif test == "t":
        p = float(stats.ttest_rel(x, y).pvalue)
    else:
        raise ValueError(f"unknown paired test {test!r}; use 't' or 'wilcoxon'")
    return Paired(diff, half, 1.0 if p != p else p, test, unit, int(x.size))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order.

    The ``k``-th smallest p-value (``k = 0..m-1``) is multiplied by ``m - k``; adjusted values
    are made monotone (running maximum) and capped at 1.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, float((p.size - rank) * p[index])))
        adjusted[index] = running
    return [float(v) for v in adjusted]
