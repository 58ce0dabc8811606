"""Threats to the support set: adversarial poisoning, label noise and outliers (``kind = "support"``).

* ``support_pgd``: L-inf PGD on the support images that maximises the loss of the CLEAN
  queries after adaptation, differentiating through ``adapt`` (through MAML's inner loop; the
  TaskModel contract makes adaptation differentiable w.r.t. support images that require grad).
  This is adversarial support poisoning (Xu et al. 2021, "Yet Meta Learning Can Adapt Fast, It
  Can Also Break Easily"; Oldewage et al. 2022, "Adversarial Attacks are a Surprisingly Strong
  Baseline for Poisoning Few-Shot Meta-Learners").
* ``support_query_pgd``: poison the support set as above, then attack the queries with the
  ``pgd`` threat against the model adapted on the poisoned support.
* ``label_noise`` and ``support_outliers``: the symmetric label swap and outlier noise of
  Liang et al. 2022, "Few-shot Learning with Noisy Labels".

Gradients are taken with `torch.autograd.grad` w.r.t. the support images only, so nothing is
accumulated into a baseline's parameters.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bench.data.episodes import Episode
from bench.fields import bounded, count, pixels
from bench.registry import THREATS
from bench.seeding import derive_seed, generator, torch_rng
from bench.threats.attacks import PGD, PGDConfig
from bench.threats.base import (
    AdaptFn,
    EoTConfig,
    Threat,
    ThreatKind,
    ThreatModel,
    adapted_correct,
    attacked_model,
    eot_text,
    predict,
)

POISON_SOURCE = ("Xu et al. 2021, Yet Meta Learning Can Adapt Fast, It Can Also Break Easily; Oldewage "
                 "et al. 2022, Adversarial Attacks are a Surprisingly Strong Baseline for Poisoning "
                 "Few-Shot Meta-Learners")
NOISE_SOURCE = "Liang et al. 2022, Few-shot Learning with Noisy Labels"


@dataclass(frozen=True)
class SupportPGDConfig(EoTConfig):
    """Attributes: eps: L-inf radius. alpha: step size. steps: PGD iterations.
    random_start: start from a uniform point in the eps-ball. (The AQ protocol's values.)
    """

    eps: float = pixels(8 / 255)
    alpha: float = pixels(2 / 255)
    steps: int = count(20)
    random_start: bool = True


def poison_support(adapt: AdaptFn, episode: Episode, config: SupportPGDConfig, seed: int) -> torch.Tensor:
    """Support images ``(way * shot, C, H, W)`` within ``eps`` of the clean ones that maximise
    the cross-entropy of the clean queries under the model adapted on them."""
    clean, labels = episode.support_x, episode.support_y
    eps, adv = config.eps, clean.clone()
    if config.random_start:
        with torch_rng(seed, clean.device):
            adv = torch.clamp(adv + torch.empty_like(adv).uniform_(-eps, eps), min=0, max=1)
    for _ in range(config.steps):
        support = adv.clone().requires_grad_()
        with torch.enable_grad():
            logits = attacked_model(adapt, support, labels, config)(episode.query_x)
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, episode.query_y), support)
        adv = adv + config.alpha * grad.sign()
        adv = torch.clamp(clean + torch.clamp(adv - clean, min=-eps, max=eps), min=0, max=1)
    return adv.detach()


def _poison_display(title: str, config: SupportPGDConfig) -> str:
    """``Support PGD-10, ε = 8/255``."""
    return f"{title}-{config.steps}, {ThreatModel('Linf', config.eps).radius_text()}{eot_text(config)}"


@THREATS.register
class SupportPGD(Threat):
    """Adversarial support poisoning by PGD through the baseline's adaptation; queries clean."""

    name = "support_pgd"
    title = "Support PGD"
    kind = ThreatKind.SUPPORT
    source = POISON_SOURCE
    Config = SupportPGDConfig

    @classmethod
    def display(cls, config: Any) -> str:
        return _poison_display(cls.title, config)

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        support = poison_support(adapt, episode, self.config, seed)
        return adapted_correct(adapt, support, episode.support_y, episode.query_x, episode.query_y)


@THREATS.register
class SupportQueryPGD(Threat):
    """Poisoned support AND adversarial queries: ``support_pgd``, then ``pgd`` (same eps,
    alpha, steps) on the queries against the model adapted on the poisoned support."""

    name = "support_query_pgd"
    title = "Support + query PGD"
    kind = ThreatKind.SUPPORT
    source = POISON_SOURCE + "; Madry et al. 2018"
    Config = SupportPGDConfig

    @classmethod
    def display(cls, config: Any) -> str:
        return _poison_display(cls.title, config)

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        c = self.config
        model = adapt(poison_support(adapt, episode, c, seed), episode.support_y)
        attack = PGD(PGDConfig(c.eps, c.alpha, c.steps, c.random_start, eot_draws=c.eot_draws))
        query = attack.perturb(model, episode.query_x, episode.query_y, episode.way, derive_seed(seed, "query"))
        return predict(model, query) == episode.query_y


@dataclass(frozen=True)
class NoiseConfig:
    """Attributes: fraction: share of the support set that is corrupted, in [0, 1]."""

    fraction: float = bounded(0.2, 0, 1)

    def __post_init__(self) -> None:
        if not 0 <= self.fraction <= 1:
            raise ValueError(f"fraction must be in [0, 1], got {self.fraction}")


def balanced_choice(labels: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` support positions spread over the classes as evenly as possible (round robin:
    one random sample of every class, in random class order, then a second of each, ...)."""
    n, way = labels.numel(), int(labels.max()) + 1
    by_class = torch.argsort(labels.cpu() * 2 + torch.rand(n, generator=gen))  # class-major, shuffled within
    starts = torch.bincount(labels.cpu(), minlength=way).cumsum(0) - torch.bincount(labels.cpu(), minlength=way)
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts[labels.cpu()[by_class]]
    class_order = torch.rand(int(rank.max()) + 1, way, generator=gen).argsort(1).argsort(1)
    keys = rank * way + class_order[rank, labels.cpu()]
    return torch.argsort(keys)[:count]


def swap_count(n: int, way: int, fraction: float) -> int:
    """Labels actually swapped: ``round(fraction * n)``, raised to the smallest count that can be
    permuted so that every chosen sample changes class (1 -> 2; with 2 classes, odd -> even)."""
    count = round(fraction * n)
    while count and (count == 1 or 2 * -(-count // way) > count):
        count += 1
    return min(count, n)


def swap_labels(labels: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Symmetric label swap: a balanced choice of support samples exchange their labels.

    The chosen labels are permuted so that each chosen sample gets another class of the
    episode and every class keeps its number of labelled examples (with 1 shot a flip would
    otherwise leave a class without any support image). The chosen samples are ordered by a
    random cyclic order of the classes and shifted by the largest class multiplicity ``m``; a
    class's run has length <= m, and 2m <= count (`swap_count`), so nobody keeps its label.

    Returns:
        New labels ``(n,)``, exactly ``swap_count(n, way, fraction)`` of them changed.
    """
    way = int(labels.max()) + 1
    chosen = balanced_choice(labels, swap_count(labels.numel(), way, fraction), gen)
    if chosen.numel() == 0:
        return labels.clone()
    cycle = torch.randperm(way, generator=gen)
    cpu = labels.cpu()
    chosen = chosen[torch.argsort(cycle[cpu[chosen]] * chosen.numel() + torch.arange(chosen.numel()))]
    shift = int(torch.bincount(cpu[chosen]).max())
    out = cpu.clone()
    out[chosen] = cpu[chosen.roll(-shift)]
    return out.to(labels.device)


@THREATS.register
class LabelNoise(Threat):
    """A fraction of the support labels swapped between classes of the episode (seeded)."""

    name = "label_noise"
    title = "Label noise"
    kind = ThreatKind.SUPPORT
    source = NOISE_SOURCE + " (symmetric label swap)"
    Config = NoiseConfig
    in_headline = True  # the headline's noise column (DESIGN "Reports")

    @classmethod
    def display(cls, config: Any) -> str:
        """``Label noise 40%``."""
        return f"{cls.title} {config.fraction:.0%}"

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        labels = swap_labels(episode.support_y, self.config.fraction, generator(seed))
        return adapted_correct(adapt, episode.support_x, labels, episode.query_x, episode.query_y)


def scrambled(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image with its pixel positions randomly permuted: same intensities, no class."""
    n, c, h, w = images.shape
    order = torch.rand(n, h * w, generator=gen).argsort(1).to(images.device)
    return images.flatten(2).gather(2, order[:, None, :].expand(n, c, h * w)).view(n, c, h, w)


def inject_outliers(support_x: torch.Tensor, support_y: torch.Tensor, pool: torch.Tensor, fraction: float,
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace ``round(fraction * n)`` support images (a balanced choice) by images of ``pool``.

    Args:
        support_x: ``(n, C, H, W)``. support_y: ``(n,)``, kept: the outliers carry the labels
            of the images they replace.
        pool: ``(M, C, H, W)`` images of classes outside the episode; drawn without
            replacement when ``M >= count``.

    Returns:
        The new support images and the replaced positions ``(count,)``.
    """
    count = round(fraction * support_x.shape[0])
    positions = balanced_choice(support_y, count, gen)
    picks = torch.randperm(len(pool), generator=gen)[:count] if len(pool) >= count else \
        torch.randint(len(pool), (count,), generator=gen)
    out = support_x.clone()
    out[positions.to(out.device)] = pool[picks.to(pool.device)].to(out)
    return out, positions


@THREATS.register
class SupportOutliers(Threat):
    """A fraction of the support images replaced by images of classes outside the episode.

    The out-of-episode images come from ``episode.outliers`` (``(way * shot, C, H, W)``, images
    of classes of the same split that are not in the episode, supplied by the evaluation loop
    for threats with ``needs_outliers``). Without them (an `Episode` from elsewhere, e.g. the
    Python API's user episodes), each
    outlier is a support image with its pixels scrambled (`scrambled`): an image of no class,
    a weaker stand-in, and a warning says so.
    """

    name = "support_outliers"
    title = "Support outliers"
    kind = ThreatKind.SUPPORT
    source = NOISE_SOURCE + " (outlier noise)"
    Config = NoiseConfig
    needs_outliers = True

    @classmethod
    def display(cls, config: Any) -> str:
        return f"{cls.title} {config.fraction:.0%}"

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        gen = generator(seed)
        pool = episode.outliers
        if pool is None:
            warnings.warn("support_outliers: the episode carries no out-of-episode images "
                          "(Episode.outliers); using scrambled support images instead", stacklevel=2)
            pool = scrambled(episode.support_x, gen)
        support, _ = inject_outliers(episode.support_x, episode.support_y, pool, self.config.fraction, gen)
        return adapted_correct(adapt, support, episode.support_y, episode.query_x, episode.query_y)
