"""Query attacks through torchattacks on the adapted `TaskModel`.

The support set stays clean (the protocol of adversarial querying, Goldblum et al. 2020):
the baseline adapts on it, then the queries are perturbed against the adapted model.
torchattacks draws random starts from the global torch RNG, so every attack runs inside
`bench.seeding.torch_rng` with the per-episode seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torchattacks

from bench.data.episodes import Episode
from bench.registry import THREATS
from bench.seeding import torch_rng
from bench.threats.base import AdaptFn, Threat, predict


class QueryAttack(Threat):
    """Perturb the queries of an episode with a torchattacks attack built from ``Config``.

    Subclasses set ``attack_class`` (the torchattacks class) and a ``Config`` whose fields are
    passed to it as keyword arguments.
    """

    kind = "attack"
    attack_class: ClassVar[Any]

    def build(self, model: torch.nn.Module, way: int) -> Any:
        return self.attack_class(model, **asdict(self.config))

    def perturb(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, way: int,
                seed: int) -> torch.Tensor:
        """Adversarial queries ``(N, C, H, W)`` against ``model``; also used by adversarial
        meta-training (adversarial querying, Goldblum et al. 2020), so both share one code path."""
        attack = self.build(model, way)
        with torch_rng(seed, x.device):
            return attack(x, y)

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        model = adapt(episode.support_x, episode.support_y)
        way = int(episode.support_y.max()) + 1
        adversarial = self.perturb(model, episode.query_x, episode.query_y, way, seed)
        return predict(model, adversarial) == episode.query_y


@dataclass(frozen=True)
class FGSMConfig:
    """Attributes: eps: L-inf radius in [0, 1] pixel units."""

    eps: float = 8 / 255


@dataclass(frozen=True)
class PGDConfig:
    """Attributes:
        eps: L-inf radius. alpha: step size. steps: iterations.
        random_start: start from a uniform point in the eps-ball (Madry et al. 2018).
    """

    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: int = 20
    random_start: bool = True


@THREATS.register("fgsm")
class FGSM(QueryAttack):
    name = "fgsm"
    source = "Goodfellow et al. 2015, Explaining and Harnessing Adversarial Examples"
    Config = FGSMConfig
    attack_class = torchattacks.FGSM


@THREATS.register("pgd")
class PGD(QueryAttack):
    """L-inf PGD; the defaults are the adversarial-querying evaluation protocol (PGD-20,
    eps 8/255, step 2/255, random start; Goldblum et al. 2020)."""

    name = "pgd"
    source = "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks"
    Config = PGDConfig
    attack_class = torchattacks.PGD
