"""Domain shift: a model trained on one data set, tested on episodes of another.

The support and query sets both come from the target data set's test split (converted to
the training data's channels and size by `bench.data.transform.match_format`), so the
model must adapt to new classes of a new domain from the support set alone, as in the
cross-domain protocol of Chen et al. 2019 ("A Closer Look at Few-shot Classification").
The runner draws these episodes; this threat evaluates them cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bench.data.episodes import Episode
from bench.fields import dataset_name
from bench.registry import DATASETS, THREATS
from bench.threats.base import AdaptFn, Threat, ThreatKind, clean_correct


@dataclass(frozen=True)
class DomainShiftConfig:
    """Attributes: dataset: the registered data set whose test episodes are used."""

    dataset: str = dataset_name("mnist")

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}. Allowed: {', '.join(DATASETS.names())}")


@THREATS.register
class DomainShift(Threat):
    """Clean accuracy on the episodes of another data set (the runner supplies them)."""

    name = "domain_shift"
    title = "Domain shift"
    kind = ThreatKind.SHIFT
    source = "Chen et al. 2019, A Closer Look at Few-shot Classification (cross-domain protocol)"
    Config = DomainShiftConfig

    @classmethod
    def display(cls, config: Any) -> str:
        """``Shift to omniglot-minimal``."""
        return f"Shift to {config.dataset}"

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        return clean_correct(adapt, episode)
