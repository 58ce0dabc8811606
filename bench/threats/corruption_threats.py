"""Every corruption of `bench.threats.corruptions` as a threat (ImageNet-C protocol).

The queries are corrupted, the support set stays clean (the model adapts on clean data and
is tested on shifted data, as in Hendrycks & Dietterich 2019); ``target: both`` corrupts the
support set too. Each image's corruption is seeded by (episode seed, image position), so the
same episode gets the same corruption in every run and for every baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from bench.data.episodes import Episode
from bench.registry import THREATS
from bench.threats.base import AdaptFn, Threat, adapted_correct
from bench.threats.corruptions import CORRUPTIONS, corrupt

SOURCE = "Hendrycks & Dietterich 2019, Benchmarking Neural Network Robustness to Common Corruptions"


@dataclass(frozen=True)
class CorruptionConfig:
    """Attributes:
        severity: 1 (mild) to 5 (severe), rescaled to the image size (docs/corruptions.md).
        target: ``"query"`` corrupts the queries only; ``"both"`` the support set as well.
    """

    severity: Literal[1, 2, 3, 4, 5] = 3
    target: Literal["query", "both"] = "query"


def image_seeds(seed: int, count: int, offset: int, device: torch.device) -> torch.Tensor:
    """One int64 seed per image: ``(count,)``, distinct per position within the episode."""
    return (torch.arange(count, dtype=torch.int64) + offset + seed % (2**62)).to(device)


class Corruption(Threat):
    """Classify corrupted queries after adapting on the (clean by default) support set."""

    kind = "corruption"
    source = SOURCE
    Config = CorruptionConfig

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        severity, support_x = self.config.severity, episode.support_x
        n_support, n_query = support_x.shape[0], episode.query_x.shape[0]
        if self.config.target == "both":
            seeds = image_seeds(seed, n_support, n_query, support_x.device)
            support_x = corrupt(support_x, self.name, severity, seeds)
        query_seeds = image_seeds(seed, n_query, 0, support_x.device)
        query_x = corrupt(episode.query_x, self.name, severity, query_seeds)
        return adapted_correct(adapt, support_x, episode.support_y, query_x, episode.query_y)


def _register_all() -> None:
    for corruption in CORRUPTIONS:
        cls = type(corruption, (Corruption,), {"name": corruption, "__module__": __name__,
                                               "__doc__": f"The {corruption} corruption. {SOURCE}."})
        THREATS.add(corruption, cls)


_register_all()
