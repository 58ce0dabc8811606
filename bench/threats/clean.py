"""The unperturbed condition: adapt on the clean support set, classify the clean queries."""

from __future__ import annotations

import torch

from bench.baseline import NoConfig
from bench.data.episodes import Episode
from bench.registry import THREATS
from bench.threats.base import AdaptFn, Threat, ThreatKind, clean_correct


@THREATS.register
class Clean(Threat):
    """Clean few-shot accuracy, the reference every robust accuracy is paired with."""

    name = "clean"
    title = "Clean"
    kind = ThreatKind.CLEAN
    source = "standard few-shot evaluation (Vinyals et al. 2016)"
    Config = NoConfig

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        return clean_correct(adapt, episode)
