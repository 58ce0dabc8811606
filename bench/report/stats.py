"""Confidence intervals on per-episode accuracies (scipy.stats; no hand-written distributions).

Few-shot papers report a 95% CI over test episodes of one trained model: Student t with
``n - 1`` degrees of freedom on the per-episode accuracies. Over seeds, the cell value is the
mean of the seed means with a t interval over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95


def mean_ci(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
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


def seed_level_ci(per_seed: Sequence[Sequence[float]], level: float = LEVEL) -> tuple[float, float, str]:
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
