"""How two cells are paired and tested, and the options of intervals and tests.

Pairing: two cells are paired on a seed when both finished it on the same episode set (equal
``episodes_hash``). With one shared seed the unit is the test episode (per-episode
differences); with several, the unit is the seed (per-seed mean differences), because pooling
episodes over seeds would ignore the training-seed variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.report.model import Cell
from bench.stats import ALPHA, LEVEL, Paired, paired_test


@dataclass(frozen=True)
class Options:
    """How intervals and tests are computed.

    Attributes:
        ci: ``t`` (Student t; over seeds when several) or ``bootstrap`` (two-level percentile).
        test: paired test, ``t`` or ``wilcoxon``. level: confidence level. alpha: test level.
    """

    ci: str = "t"
    test: str = "t"
    level: float = LEVEL
    alpha: float = ALPHA



def pair(a: Cell, b: Cell, options: Options) -> Paired | None:
    """Paired comparison ``a - b``: on episodes in a one-seed table, on the seeds both cells
    finished in a several-seed table (None with fewer than 2 shared seeds there: a seed-level
    table is never compared on the episodes of one seed, whose variance omits training's)."""
    shared = [s for s in a.seeds if s in a.per_seed and s in b.per_seed
              and a.hashes.get(s) == b.hashes.get(s) and a.per_seed[s].size == b.per_seed[s].size]
    if not shared or (len(a.seeds) > 1 and len(shared) < 2):
        return None
    if len(shared) == 1:
        return paired_test(a.per_seed[shared[0]], b.per_seed[shared[0]], options.test, "episodes", options.level)
    means_a = [float(np.mean(a.per_seed[s])) for s in shared]
    means_b = [float(np.mean(b.per_seed[s])) for s in shared]
    return paired_test(means_a, means_b, options.test, "seeds", options.level)
