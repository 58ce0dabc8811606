"""The signed-gradient attack family (FGSM, PGD L-inf and L2, MI-FGSM): one episode through
torchattacks (or a step-for-step port where torchattacks divides by zero), blocks of episodes
through `bench.threats.blockwise`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchattacks
from torch import nn

from bench.fields import count, pixels
from bench.registry import THREATS
from bench.threats import blockwise
from bench.threats.attacks.query import QueryAttack


@dataclass(frozen=True)
class FGSMConfig:
    """Attributes: eps: L-inf radius in [0, 1] pixel units."""

    eps: float = pixels(8 / 255)


@THREATS.register("fgsm")
class FGSM(QueryAttack):
    """One signed-gradient step of size eps (Goodfellow et al. 2015). Default eps 8/255, the
    radius of the adversarial-querying protocol (the paper used 0.1-0.25 on MNIST)."""

    name = "fgsm"
    title = "FGSM"
    attacks_blocks = True
    norm = "Linf"
    source = "Goodfellow et al. 2015, Explaining and Harnessing Adversarial Examples"
    Config = FGSMConfig
    attack_class = torchattacks.FGSM

    def block_perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, sizes: list[int],
                      seeds: list[int]) -> torch.Tensor:
        return blockwise.fgsm(model, x, y, sizes, self.config.eps)


@dataclass(frozen=True)
class PGDConfig:
    """Attributes:
        eps: L-inf radius. alpha: step size. steps: iterations.
        random_start: start from a uniform point in the eps-ball (Madry et al. 2018).
    """

    eps: float = pixels(8 / 255)
    alpha: float = pixels(2 / 255)
    steps: int = count(20)
    random_start: bool = True


@THREATS.register("pgd")
class PGD(QueryAttack):
    """L-inf PGD; the defaults are the adversarial-querying evaluation protocol (PGD-20,
    eps 8/255, step 2/255, random start, queries only; Goldblum et al. 2020)."""

    name = "pgd"
    title = "PGD"
    attacks_blocks = True
    norm = "Linf"
    source = "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks"
    Config = PGDConfig
    attack_class = torchattacks.PGD

    def block_perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, sizes: list[int],
                      seeds: list[int]) -> torch.Tensor:
        c = self.config
        return blockwise.pgd(model, x, y, sizes, seeds, c.eps, c.alpha, c.steps, c.random_start)


@dataclass(frozen=True)
class PGDL2Config:
    """Attributes:
        eps: L2 radius (0.5: the L2 threat model of RobustBench, Croce et al. 2021).
        alpha: step size (eps / 4, the ratio of the L-inf protocol). steps: iterations.
        random_start: start from a random point in the L2 ball.
    """

    eps: float = 0.5
    alpha: float = 0.125
    steps: int = count(20)
    random_start: bool = True


class _PGDL2(torchattacks.PGDL2):
    """torchattacks' PGDL2 step for step, except that the projection never divides 0 by 0
    (a zero gradient at eps = 0 gave NaN images)."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return blockwise.pgd_l2(self.get_logits, images, labels, [len(images)], None, self.eps,
                                self.alpha, self.steps, self.random_start)


@THREATS.register("pgd_l2")
class PGDL2(QueryAttack):
    """L2 PGD: normalised-gradient steps, projection onto the L2 ball (Madry et al. 2018)."""

    name = "pgd_l2"
    title = "PGD-L2"
    attacks_blocks = True
    norm = "L2"
    source = "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks (L2)"
    Config = PGDL2Config
    attack_class = _PGDL2

    def block_perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, sizes: list[int],
                      seeds: list[int]) -> torch.Tensor:
        c = self.config
        return blockwise.pgd_l2(model, x, y, sizes, seeds, c.eps, c.alpha, c.steps, c.random_start)


@dataclass(frozen=True)
class MIFGSMConfig:
    """Attributes (Dong et al. 2018, Sec. 4.1: T = 10, mu = 1.0, alpha = eps / T):
        eps: L-inf radius. alpha: step size. steps: iterations T. decay: momentum mu.
    """

    eps: float = pixels(8 / 255)
    alpha: float = pixels(0.8 / 255)
    steps: int = count(10)
    decay: float = 1.0


class _MIFGSM(torchattacks.MIFGSM):
    """torchattacks' MIFGSM step for step, except that an all-zero gradient (saturated
    softmax) is not divided by its zero L1 norm (NaN images)."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return blockwise.mifgsm(self.get_logits, images, labels, [len(images)], self.eps, self.alpha,
                                self.steps, self.decay)


@THREATS.register("mifgsm")
class MIFGSM(QueryAttack):
    """Momentum iterative FGSM (Dong et al. 2018)."""

    name = "mifgsm"
    title = "MI-FGSM"
    attacks_blocks = True
    norm = "Linf"
    source = "Dong et al. 2018, Boosting Adversarial Attacks with Momentum"
    Config = MIFGSMConfig
    attack_class = _MIFGSM

    def block_perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, sizes: list[int],
                      seeds: list[int]) -> torch.Tensor:
        c = self.config
        return blockwise.mifgsm(model, x, y, sizes, c.eps, c.alpha, c.steps, c.decay)
