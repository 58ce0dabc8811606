"""Evaluate one threat on a fixed test-episode set: per-episode accuracies.

Every baseline and every threat sees the same `EpisodeSet`, so results are paired. The seed
of episode ``i`` under a threat depends on (suite seed, episode-set hash, threat, i), never on
the baseline, so two baselines also face the same attack random starts and corruptions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from bench.baseline import Baseline
from bench.data.episodes import Episode, EpisodeSet
from bench.seeding import derive_seed, torch_rng
from bench.threats.base import Adaptation, Threat


class Episodes(Protocol):
    """What `evaluate_threat` reads from an episode set: `EpisodeSet`, or the Python API's
    list of a caller's own episodes (`bench.api`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Episode: ...

    def with_outliers(self, index: int, seed: int) -> Episode: ...


def threat_seeds(root: int, episodes: EpisodeSet, threat_key: str) -> list[int]:
    """One seed per test episode for one threat."""
    return [derive_seed(root, episodes.hash, threat_key, i) for i in range(len(episodes))]


@dataclass(frozen=True)
class Outcome:
    """Per-episode accuracies and, per episode, which queries were classified correctly.

    Attributes:
        accuracies: ``len(episodes)`` floats (the fraction of each episode's queries right).
        correct: per episode, a bool ``(queries,)`` on the CPU in the episode's query order:
            what a per-query worst case across attacks needs (Croce & Hein 2020 count a query
            robust only if every attack failed on it). A caller's own episodes may differ in
            size, so it is a list.
    """

    accuracies: list[float]
    correct: list[torch.Tensor]


def evaluate_threat(baseline: Baseline, episodes: Episodes, threat: Threat, seeds: list[int],
                    on_episode: Callable[[], None] | None = None) -> list[float]:
    """Accuracy of ``baseline`` under ``threat`` on each episode: ``len(episodes)`` floats."""
    return evaluate_queries(baseline, episodes, threat, seeds, on_episode).accuracies


def evaluate_queries(baseline: Baseline, episodes: Episodes, threat: Threat, seeds: list[int],
                     on_episode: Callable[[], None] | None = None) -> Outcome:
    """Per-episode accuracies and per-query results of ``baseline`` under ``threat``.

    A stochastic baseline's adaptation draws come from a stream of each episode's own (seeded
    from the episode's threat seed), so an episode's result does not depend on the others.
    """
    adapt = Adaptation(baseline.adapt, type(baseline).stochastic)
    results = []
    for i in range(len(episodes)):
        # The outlier pool has a stream of its own: the threat's seed stream stays as it was.
        episode = episodes.with_outliers(i, derive_seed(seeds[i], "outliers")) if threat.needs_outliers \
            else episodes[i]
        draws = torch_rng(derive_seed(seeds[i], "adaptation"), episode.query_x.device) if adapt.stochastic \
            else contextlib.nullcontext()
        with draws:
            # Results stay on the device until the end: no host sync per episode.
            results.append(threat.evaluate(adapt, episode, seeds[i]).reshape(-1))
        if on_episode is not None:
            on_episode()
    if not results:
        return Outcome([], [])
    counts = torch.stack([r.sum() for r in results]).cpu().to(torch.float64)
    sizes = torch.tensor([r.numel() for r in results], dtype=torch.float64)
    correct = torch.cat(results).cpu().to(torch.bool).split([r.numel() for r in results])
    return Outcome((counts / sizes).tolist(), list(correct))
