"""Query attacks through torchattacks on the adapted `TaskModel` (one registered threat each).

The support set stays clean (the protocol of adversarial querying, Goldblum et al. 2020): the
baseline adapts on it, then the queries are perturbed against the adapted model. All queries of
an episode are attacked as ONE batch, so a transductive baseline (``Baseline.transductive``, or
batch-statistics batch norm) is attacked on whole query batches, as it is evaluated. Randomness
(random starts, Square's proposals, APGD/FAB restarts) runs inside `bench.seeding.torch_rng`
with the per-episode seed. The AQ protocol is the ``pgd`` default, in one line of YAML::

    {name: pgd, params: {eps: 8/255, alpha: 2/255, steps: 20}}

`QueryAttack.evaluate_block` attacks a block of episodes at once (see `bench.threats.blockwise`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import torch
import torchattacks
from torch import nn
from torch.func import functional_call

from bench.data.episodes import Episode
from bench.fields import bounded, count, pixels
from bench.registry import THREATS
from bench.seeding import torch_rng
from bench.threats import blockwise
from bench.threats.base import AdaptFn, Threat, predict

Norm = Literal["Linf", "L2"]


class InputOnly(nn.Module):
    """``model`` run with detached parameters: attacks need gradients w.r.t. the input only.

    Why: CW and FAB call ``.backward()``, which would otherwise fill the ``.grad`` of the
    baseline parameters that a task model shares.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        detached = {name: p.detach() for name, p in self.model.named_parameters()}
        return functional_call(self.model, detached, (x,))


@contextlib.contextmanager
def modes_kept(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's train/eval flag afterwards: torchattacks calls ``eval()``,
    which would leave a baseline's shared modules in eval mode during adversarial training."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


class QueryAttack(Threat):
    """Perturb the queries of an episode with the torchattacks attack made by `build`.

    Subclasses set ``attack_class`` (called with the ``Config`` fields as keyword arguments)
    or override `build`. Those defining ``block_perturb`` (the signed-gradient family) attack
    blocks of episodes in one vectorised run (`evaluate_block`).
    """

    kind = "attack"
    attack_class: ClassVar[Any]

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        """The torchattacks attack against ``model`` for a ``way``-way episode."""
        return self.attack_class(model, **asdict(self.config))

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, way: int,
                seed: int) -> torch.Tensor:
        """Adversarial queries ``(N, C, H, W)`` in [0, 1] against ``model``; deterministic in ``seed``.

        Adversarial meta-training (adversarial querying, ADML, R-MAML) calls this too, so
        training and evaluation share one code path.
        """
        attack = self.build(InputOnly(model), way, seed)
        with torch_rng(seed, x.device), modes_kept(model):
            return attack(x, y).detach()

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        model = adapt(episode.support_x, episode.support_y)
        adversarial = self.perturb(model, episode.query_x, episode.query_y, episode.way, seed)
        return predict(model, adversarial) == episode.query_y

    def evaluate_block(self, adapt: AdaptFn, episodes: list[Episode], seeds: list[int],
                       exact: bool = True) -> list[torch.Tensor]:
        """`evaluate` of each episode (identical results), with one attack over the whole block.

        Each episode is adapted on its own; `blockwise.stack` joins the task models into one
        module over the concatenated queries (each slice answered by its own task model), and
        ``block_perturb`` attacks all of them at once with per-episode random starts and
        per-episode mean losses. Attacks without ``block_perturb`` (CW, APGD, Square,
        AutoAttack: their restarts, early stops and seeding couple the points of a batch) run
        episode by episode.

        Args:
            exact: bitwise-equal results (see `blockwise.stack`); ``False`` lets a GPU batch the
                backbone over the block, equal up to float rounding of the batched kernels.

        Returns:
            One bool tensor ``(way * query,)`` per episode.
        """
        models = [adapt(e.support_x, e.support_y) for e in episodes]
        if not hasattr(self, "block_perturb"):
            return [predict(m, self.perturb(m, e.query_x, e.query_y, e.way, s)) == e.query_y
                    for m, e, s in zip(models, episodes, seeds, strict=True)]
        block = blockwise.stack(models, [e.query_x for e in episodes], exact)
        x = torch.cat([e.query_x for e in episodes])
        y = torch.cat([e.query_y for e in episodes])
        sizes = [e.query_x.shape[0] for e in episodes]
        with modes_kept(block):
            adversarial = self.block_perturb(block, x, y, sizes, seeds)
        return list((predict(block, adversarial) == y).split(sizes))


# --- the signed-gradient family: one episode through torchattacks, blocks via `blockwise` ----


@dataclass(frozen=True)
class FGSMConfig:
    """Attributes: eps: L-inf radius in [0, 1] pixel units."""

    eps: float = pixels(8 / 255)


@THREATS.register("fgsm")
class FGSM(QueryAttack):
    """One signed-gradient step of size eps (Goodfellow et al. 2015). Default eps 8/255, the
    radius of the adversarial-querying protocol (the paper used 0.1-0.25 on MNIST)."""

    name = "fgsm"
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
    norm = "Linf"
    source = "Dong et al. 2018, Boosting Adversarial Attacks with Momentum"
    Config = MIFGSMConfig
    attack_class = _MIFGSM

    def block_perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, sizes: list[int],
                      seeds: list[int]) -> torch.Tensor:
        c = self.config
        return blockwise.mifgsm(model, x, y, sizes, c.eps, c.alpha, c.steps, c.decay)


# --- minimal-norm, parameter-free and gradient-free attacks (episode by episode) ------------


@dataclass(frozen=True)
class CWConfig:
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


@THREATS.register("cw")
class CW(QueryAttack):
    """Carlini-Wagner L2 attack, counted within an L2 budget ``eps``."""

    name = "cw"
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
class APGDConfig:
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


@THREATS.register("apgd_ce")
class APGDCE(_APGD):
    """Auto-PGD on the cross-entropy loss: step size adapted by checkpoints, momentum."""

    name = "apgd_ce"
    loss = "ce"


@THREATS.register("apgd_dlr")
class APGDDLR(_APGD):
    """Auto-PGD on the scale-invariant difference-of-logits-ratio loss (needs way >= 3)."""

    name = "apgd_dlr"
    loss = "dlr"
    min_way = 3  # the DLR loss divides by z_1 - z_3


@dataclass(frozen=True)
class SquareConfig:
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


@THREATS.register("square")
class Square(QueryAttack):
    """Square Attack: gradient-free random search (a check against gradient masking)."""

    name = "square"
    gradient_free = True
    source = "Andriushchenko et al. 2020, Square Attack: a query-efficient black-box adversarial attack"
    Config = SquareConfig

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        c = self.config
        return torchattacks.Square(model, norm=c.norm, eps=c.eps, n_queries=c.n_queries,
                                   n_restarts=c.n_restarts, p_init=c.p_init, loss=c.loss, seed=seed)


@dataclass(frozen=True)
class AutoAttackConfig:
    """Attributes (Croce & Hein 2020, "standard" version): eps: radius. norm: Linf or L2.
    steps: iterations of APGD-CE, APGD-T and FAB-T (100). n_queries: Square's queries (5000).
    """

    eps: float = pixels(8 / 255, when=("norm", "Linf"))
    norm: Norm = "Linf"
    steps: int = count(100)
    n_queries: int = count(5000)


@THREATS.register("autoattack")
class AutoAttack(QueryAttack):
    """AutoAttack "standard": APGD-CE, APGD-T, FAB-T, Square, each on the points still correct.

    Deviation from torchattacks' ``AutoAttack``: built here so that ``n_classes`` is the
    episode's way (torchattacks assumes 10; the targeted attacks then try the way - 1 other
    classes, all of them, as AutoAttack's 9 targets do on CIFAR-10) and ``steps`` is the paper's
    100 (torchattacks: 10). APGD-T's targeted DLR loss needs 4 classes: it is skipped below 4-way.
    """

    name = "autoattack"
    source = _APGD.source
    Config = AutoAttackConfig

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        c = self.config
        common: dict[str, Any] = {"norm": c.norm, "eps": c.eps, "seed": seed}
        parts = [torchattacks.APGD(model, steps=c.steps, loss="ce", **common)]
        if way >= 4:
            parts.append(torchattacks.APGDT(model, steps=c.steps, n_classes=way, **common))
        parts.append(torchattacks.FAB(model, steps=c.steps, multi_targeted=True, n_classes=way, **common))
        parts.append(torchattacks.Square(model, n_queries=c.n_queries, **common))
        return torchattacks.MultiAttack(parts)
