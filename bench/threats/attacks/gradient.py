"""The signed-gradient attack family (FGSM, PGD L-inf and L2, MI-FGSM), one episode at a time:
torchattacks, or a step-for-step port of it where torchattacks divides by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchattacks

from bench.fields import count, pixels
from bench.registry import THREATS
from bench.threats.attacks.query import QueryAttack
from bench.threats.base import EoTConfig


@dataclass(frozen=True)
class FGSMConfig(EoTConfig):
    """Attributes: eps: L-inf radius in [0, 1] pixel units."""

    eps: float = pixels(8 / 255)


@THREATS.register
class FGSM(QueryAttack):
    """One signed-gradient step of size eps (Goodfellow et al. 2015). Default eps 8/255, the
    radius of the adversarial-querying protocol (the paper used 0.1-0.25 on MNIST)."""

    name = "fgsm"
    title = "FGSM"
    norm = "Linf"
    source = "Goodfellow et al. 2015, Explaining and Harnessing Adversarial Examples"
    Config = FGSMConfig
    attack_class = torchattacks.FGSM


@dataclass(frozen=True)
class PGDConfig(EoTConfig):
    """Attributes:
        eps: L-inf radius. alpha: step size. steps: iterations.
        random_start: start from a uniform point in the eps-ball (Madry et al. 2018).
    """

    eps: float = pixels(8 / 255)
    alpha: float = pixels(2 / 255)
    steps: int = count(20)
    random_start: bool = True


@THREATS.register
class PGD(QueryAttack):
    """L-inf PGD; the defaults are the adversarial-querying evaluation protocol (PGD-20,
    eps 8/255, step 2/255, random start, queries only; Goldblum et al. 2020)."""

    name = "pgd"
    title = "PGD"
    norm = "Linf"
    source = "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks"
    Config = PGDConfig
    attack_class = torchattacks.PGD


@dataclass(frozen=True)
class PGDL2Config(EoTConfig):
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
        return pgd_l2(self.get_logits, images, labels, self.eps, self.alpha, self.steps, self.random_start)


@THREATS.register
class PGDL2(QueryAttack):
    """L2 PGD: normalised-gradient steps, projection onto the L2 ball (Madry et al. 2018)."""

    name = "pgd_l2"
    title = "PGD-L2"
    norm = "L2"
    source = "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks (L2)"
    Config = PGDL2Config
    attack_class = _PGDL2



@dataclass(frozen=True)
class MIFGSMConfig(EoTConfig):
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
        return mifgsm(self.get_logits, images, labels, self.eps, self.alpha, self.steps, self.decay)


@THREATS.register
class MIFGSM(QueryAttack):
    """Momentum iterative FGSM (Dong et al. 2018)."""

    name = "mifgsm"
    title = "MI-FGSM"
    norm = "Linf"
    source = "Dong et al. 2018, Boosting Adversarial Attacks with Momentum"
    Config = MIFGSMConfig
    attack_class = _MIFGSM


def _input_grad(logits_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                y: torch.Tensor) -> torch.Tensor:
    """d/dx of the mean cross-entropy of ``logits_of(x)``: ``(N, C, H, W)``, as torchattacks."""
    x = x.detach().requires_grad_()
    return torch.autograd.grad(F.cross_entropy(logits_of(x), y), x)[0]


def _l2_norms(t: torch.Tensor) -> torch.Tensor:
    return torch.norm(t.view(t.shape[0], -1), p=2, dim=1)


def pgd_l2(logits_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
           eps: float, alpha: float, steps: int, start: bool) -> torch.Tensor:
    """torchattacks.PGDL2 on ``x`` ``(N, C, H, W)``; the projection factor is 1 inside the ball
    (torchattacks divides 0 by 0 there at eps = 0). The random start draws from the current
    RNG (the caller's `bench.seeding.torch_rng`): a Gaussian direction at a uniform radius."""
    adv = x.clone()
    if start:
        delta = torch.empty_like(x).normal_()
        radius = torch.zeros(x.size(0), 1, 1, 1, device=x.device).uniform_(0, 1)
        delta *= radius / _l2_norms(delta).view(-1, 1, 1, 1) * eps
        adv = torch.clamp(adv + delta, min=0, max=1)
    for _ in range(steps):
        grad = _input_grad(logits_of, adv, y)
        adv = adv + alpha * grad / (_l2_norms(grad) + 1e-10).view(-1, 1, 1, 1)
        delta = adv - x
        norms = _l2_norms(delta)
        factor = torch.where(norms > eps, eps / norms, torch.ones_like(norms))
        adv = torch.clamp(x + delta * factor.view(-1, 1, 1, 1), min=0, max=1)
    return adv


def mifgsm(logits_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
           eps: float, alpha: float, steps: int, decay: float) -> torch.Tensor:
    """torchattacks.MIFGSM on ``x`` ``(N, C, H, W)``; an all-zero gradient stays zero (torchattacks
    divides it by its zero L1 norm)."""
    momentum = torch.zeros_like(x)
    adv = x.clone()
    for _ in range(steps):
        grad = _input_grad(logits_of, adv, y)
        l1 = torch.mean(torch.abs(grad), dim=(1, 2, 3), keepdim=True)
        grad = grad / torch.where(l1 > 0, l1, torch.ones_like(l1)) + momentum * decay
        momentum = grad
        adv = adv + alpha * grad.sign()
        adv = torch.clamp(x + torch.clamp(adv - x, min=-eps, max=eps), min=0, max=1)
    return adv
