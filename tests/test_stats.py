"""The confidence intervals against scipy.stats and against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bench.stats import mean_ci, seed_level_ci


def test_mean_ci_matches_scipy_t_interval() -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(0.3, 0.9, size=200)
    mean, half = mean_ci(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean())
    assert half == pytest.approx((high - low) / 2, rel=1e-12)


def test_mean_ci_by_hand() -> None:
    # values 0, 1: mean 0.5, sd 0.7071, sem 0.5, t(0.975, 1) = 12.7062
    mean, half = mean_ci([0.0, 1.0])
    assert mean == 0.5
    assert half == pytest.approx(0.5 * 12.706204736, rel=1e-8)


def test_degenerate_cases() -> None:
    assert mean_ci([0.7, 0.7, 0.7]) == (pytest.approx(0.7), 0.0)
    mean, half = mean_ci([0.4])
    assert mean == 0.4 and math.isnan(half)


def test_seed_level_uses_seed_means_with_several_seeds() -> None:
    mean, half, rule = seed_level_ci([[0.2, 0.4], [0.6, 0.8], [0.5, 0.5]])
    assert rule == "seeds"
    expected_mean, expected_half = mean_ci([0.3, 0.7, 0.5])
    assert (mean, half) == (pytest.approx(expected_mean), pytest.approx(expected_half))
    assert seed_level_ci([[0.2, 0.4]])[2] == "episodes"
