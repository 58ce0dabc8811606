"""ADML: Adversarial Meta-Learner (Yin, Tang, Xu & Wang 2018, arXiv:1806.03316, Algorithm 1).

MAML trained with adversarial samples in the inner AND the outer loop, crossed: per task, one
adaptation on the clean support set and one on the adversarial support set; the meta-loss is
the loss of the adversarially adapted weights on the CLEAN queries plus the loss of the
cleanly adapted weights on the ADVERSARIAL queries (the paper's "adversarial manner").
Test-time adaptation is MAML's (clean support, ``test_inner_steps`` SGD steps).

Adversarial samples come from the evaluation threat code (`QueryAttack.perturb`): support
images are attacked against the meta-model (as in the paper), queries against the model adapted
on the clean support (the model they are scored on). Defaults: MAML's Omniglot settings and the
paper's training attack, FGSM with eps = 2 (of 255). Deviation: the paper attacked a fixed
pre-trained model offline; here attacks are regenerated against the current weights every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from baselines._adversarial import AdversarialMAML, attacked_model, logits
from baselines._common import Params, inner_loop, named_params
from bench.data.episodes import Episode
from bench.fields import count, pixels
from bench.seeding import derive_seed


@dataclass(frozen=True)
class ADMLConfig:
    """Attributes:
        inner_lr, inner_steps, test_inner_steps, meta_lr, first_order: as `MAMLConfig`.
        attack: training attack, a registered query attack (paper: FGSM).
        attack_eps: its L-inf radius (paper: 2 on the 0-255 scale).
        attack_alpha, attack_steps: PGD's step size and iterations (ignored by FGSM).
    """

    inner_lr: float = 0.4
    inner_steps: int = count(1)
    test_inner_steps: int = count(3)
    meta_lr: float = 1e-3
    first_order: bool = False
    attack: Literal["fgsm", "pgd"] = "fgsm"
    attack_eps: float = pixels(2 / 255)
    attack_alpha: float = pixels(1 / 255)
    attack_steps: int = count(3)


class ADML(AdversarialMAML):
    """ADML: MAML with clean/adversarial crossed inner and outer losses (Yin et al. 2018).

    Network ``backbone -> Linear(D, W)`` as MAML. Per episode and meta-update: 2 adaptations
    and 2 attacks (the attack costs ``attack_steps`` forward/backward passes each; FGSM one).
    """

    name = "adml"
    title = "ADML"
    paper = "Yin et al. 2018, Adversarial Meta-Learning"
    Config = ADMLConfig

    def inner(self, params: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
        cfg = self.config
        return inner_loop(self.net, params, {}, x, y, cfg.inner_steps, cfg.inner_lr, not cfg.first_order)

    def episode_loss(self, episode: Episode, index: int) -> torch.Tensor:
        """``L(theta_adv; clean queries) + L(theta_clean; adversarial queries)`` (Algorithm 1)."""
        e, seed = episode, derive_seed(self.updates, index)
        theta = named_params(self.net)
        fast_clean = self.inner(theta, e.support_x, e.support_y)
        support_adv = self.attack.perturb(attacked_model(self.net, theta), e.support_x, e.support_y, e.way,
                                          derive_seed(seed, "support"))
        query_adv = self.attack.perturb(attacked_model(self.net, fast_clean), e.query_x, e.query_y, e.way,
                                        derive_seed(seed, "query"))
        self.net.train()  # building a task model put the shared network in eval mode
        fast_adv = self.inner(theta, support_adv, e.support_y)
        return (F.cross_entropy(logits(self.net, fast_adv, e.query_x), e.query_y)
                + F.cross_entropy(logits(self.net, fast_clean, query_adv), e.query_y))
