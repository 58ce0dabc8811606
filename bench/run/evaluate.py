"""Evaluate one threat on a fixed test-episode set: per-episode accuracies.

Every baseline and every threat sees the same `EpisodeSet`, so results are paired. The seed
of episode ``i`` under a threat depends on (suite seed, episode-set hash, threat, i), never on
the baseline, so two baselines also face the same attack random starts and corruptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from bench.baseline import Baseline
from bench.data.episodes import Episode, EpisodeSet
from bench.seeding import derive_seed
from bench.threats.base import Threat


class Episodes(Protocol):
    """What `evaluate_threat` reads from an episode set: `EpisodeSet`, or the Python API's
    list of a caller's own episodes (`bench.api`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Episode: ...

    def with_outliers(self, index: int, seed: int) -> Episode: ...


def threat_seeds(root: int, episodes: EpisodeSet, threat_key: str) -> list[int]:
    """One seed per test episode for one threat."""
    return [derive_seed(root, episodes.hash, threat_key, i) for i in range(len(episodes))]


def evaluate_threat(baseline: Baseline, episodes: Episodes, threat: Threat, seeds: list[int],
                    on_episode: Callable[[], None] | None = None) -> list[float]:
    """Accuracy of ``baseline`` under ``threat`` on each episode: ``len(episodes)`` floats."""
    hits, sizes = [], []
    for i in range(len(episodes)):
        # The outlier pool has a stream of its own: the threat's seed stream stays as it was.
        episode = episodes.with_outliers(i, derive_seed(seeds[i], "outliers")) if threat.needs_outliers \
            else episodes[i]
        correct = threat.evaluate(baseline.adapt, episode, seeds[i])
        # Counts stay on the device until the end: no host sync per episode.
        hits.append(correct.sum())
        sizes.append(correct.numel())
        if on_episode is not None:
            on_episode()
    counts = torch.stack(hits).cpu().to(torch.float64)
    return (counts / torch.tensor(sizes, dtype=torch.float64)).tolist()
