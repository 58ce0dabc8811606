"""Minimal-norm, parameter-free and gradient-free attacks (CW, APGD-CE/DLR, Square, AutoAttack),
run episode by episode: their restarts, early stops and seeding couple the points of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torchattacks
from torch import nn

from bench.fields import bounded, count, pixels
from bench.registry import THREATS
from bench.threats.attacks.query import Norm, QueryAttack
from bench.threats.base import EoTConfig


@dataclass(frozen=True)
class CWConfig(EoTConfig):
    """Attributes (Carlini & Wagner 2017; torchattacks has no binary search over c):
        c: weight of the margin term. kappa: confidence margin. steps: Adam steps (torchattacks
        default 50; the paper runs up to 10,000 with early abort). lr: Adam step (paper 0.01).
        eps: L2 budget: a found example farther than eps counts as a failure (robust accuracy at
        eps of a minimal-norm attack, as in Croce & Hein 2020).
    """

    c: float = 1.0
    kappa: float = 0.0
    steps: int = count(100)
    lr: float = bounded(0.01, above=0)
    eps: float = 0.5


class _CW(torchattacks.CW):
    def inverse_tanh_space(self, x: torch.Tensor) -> torch.Tensor:
        # atanh(+-1) is infinite, so pixels at exactly 0 or 1 (most of a glyph) could never
        # move; Carlini & Wagner's reference code scales by 0.999999 before arctanh.
        return torch.atanh((x * 2 - 1) * 0.999999)


@THREATS.register
class CW(QueryAttack):
    """Carlini-Wagner L2 attack, counted within an L2 budget ``eps``."""

    name = "cw"
    title = "CW"
    norm = "L2"
    source = "Carlini & Wagner 2017, Towards Evaluating the Robustness of Neural Networks"
    Config = CWConfig

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        c = self.config
        return _CW(model, c=c.c, kappa=c.kappa, steps=c.steps, lr=c.lr)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, way: int,
                seed: int) -> torch.Tensor:
        adversarial = super().perturb(model, x, y, way, seed)
        too_far = (adversarial - x).flatten(1).norm(dim=1) > self.config.eps
        return torch.where(too_far[:, None, None, None], x, adversarial)


@dataclass(frozen=True)
class APGDConfig(EoTConfig):
    """Attributes (Croce & Hein 2020, AutoAttack's settings): eps: radius. norm: Linf or L2.
    steps: iterations (100). n_restarts: random restarts (1). rho: step-size checkpoint ratio (0.75).
    """

    eps: float = pixels(8 / 255, when=("norm", "Linf"))
    norm: Norm = "Linf"
    steps: int = count(100)
    n_restarts: int = count(1)
    rho: float = bounded(0.75, above=0, high=1)


class _APGD(QueryAttack):
    loss: ClassVar[str]
    source = ("Croce & Hein 2020, Reliable Evaluation of Adversarial Robustness with an Ensemble of "
              "Diverse Parameter-free Attacks")
    Config = APGDConfig

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        if self.loss == "dlr" and way < 3:
            raise ValueError(f"apgd_dlr needs at least 3 classes (the DLR loss divides by z_1 - z_3); "
                             f"this episode is {way}-way. Use apgd_ce.")
        c = self.config
        return torchattacks.APGD(model, norm=c.norm, eps=c.eps, steps=c.steps, n_restarts=c.n_restarts,
                                 seed=seed, loss=self.loss, rho=c.rho)


@THREATS.register
class APGDCE(_APGD):
    """Auto-PGD on the cross-entropy loss: step size adapted by checkpoints, momentum."""

    name = "apgd_ce"
    title = "APGD-CE"
    loss = "ce"


@THREATS.register
class APGDDLR(_APGD):
    """Auto-PGD on the scale-invariant difference-of-logits-ratio loss (needs way >= 3)."""

    name = "apgd_dlr"
    title = "APGD-DLR"
    loss = "dlr"
    min_way = 3  # the DLR loss divides by z_1 - z_3


@dataclass(frozen=True)
class SquareConfig(EoTConfig):
    """Attributes (Andriushchenko et al. 2020; AutoAttack's settings): eps: radius. norm.
    n_queries: model queries per point (5000). p_init: initial square fraction (0.8).
    n_restarts: restarts (1). loss: margin (paper) or ce.
    """

    eps: float = pixels(8 / 255, when=("norm", "Linf"))
    norm: Norm = "Linf"
    n_queries: int = count(5000)
    p_init: float = bounded(0.8, above=0, high=1)
    n_restarts: int = count(1)
    loss: Literal["margin", "ce"] = "margin"


@THREATS.register
class Square(QueryAttack):
    """Square Attack: gradient-free random search (a check against gradient masking)."""

    name = "square"
    title = "Square"
    gradient_free = True
    source = "Andriushchenko et al. 2020, Square Attack: a query-efficient black-box adversarial attack"
    Config = SquareConfig

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        c = self.config
        return torchattacks.Square(model, norm=c.norm, eps=c.eps, n_queries=c.n_queries,
                                   n_restarts=c.n_restarts, p_init=c.p_init, loss=c.loss, seed=seed)


@dataclass(frozen=True)
class AutoAttackConfig(EoTConfig):
    """Attributes (Croce & Hein 2020, "standard" version): eps: radius. norm: Linf or L2.
    steps: iterations of APGD-CE, APGD-T and FAB-T (100). n_queries: Square's queries (5000).
    """

    eps: float = pixels(8 / 255, when=("norm", "Linf"))
    norm: Norm = "Linf"
    steps: int = count(100)
    n_queries: int = count(5000)


@THREATS.register
class AutoAttack(QueryAttack):
    """AutoAttack "standard": APGD-CE, APGD-T, FAB-T, Square, each on the points still correct.

    Deviation from torchattacks' ``AutoAttack``: built here so that ``n_classes`` is the
    episode's way (torchattacks assumes 10; the targeted attacks then try the way - 1 other
    classes, all of them, as AutoAttack's 9 targets do on CIFAR-10) and ``steps`` is the paper's
    100 (torchattacks: 10). APGD-T's targeted DLR loss needs 4 classes: it is skipped below 4-way.
    """

    name = "autoattack"
    title = "AutoAttack"
    source = _APGD.source
    Config = AutoAttackConfig

    @classmethod
    def target_classes(cls, config: Any, way: int) -> int | None:
        """APGD-T and FAB-T try every other class of the episode: ``way - 1``."""
        return way - 1

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        c = self.config
        common: dict[str, Any] = {"norm": c.norm, "eps": c.eps, "seed": seed}
        parts = [torchattacks.APGD(model, steps=c.steps, loss="ce", **common)]
        if way >= 4:
            parts.append(torchattacks.APGDT(model, steps=c.steps, n_classes=way, **common))
        parts.append(torchattacks.FAB(model, steps=c.steps, multi_targeted=True, n_classes=way, **common))
        parts.append(torchattacks.Square(model, n_queries=c.n_queries, **common))
        return torchattacks.MultiAttack(parts)
