"""R-MAML: robust MAML by an adversarial meta-update only (Wang et al., ICLR 2021, arXiv:2102.10454).

Wang et al. show that robustifying the meta-update (outer loop) suffices: the inner loop adapts
on the CLEAN support set as in MAML, and the meta-loss on the queries adds a robustness term
(their R-MAML_out, Algorithm S1):

    L = CE(f_theta'(x_q), y_q) + beta * R,   theta' = inner SGD steps on the clean support,
    R = CE(f_theta'(x_q_adv), y_q)                               (``outer_loss: at``)
    R = KL(softmax f_theta'(x_q) || softmax f_theta'(x_q_adv))   (``outer_loss: trades``,
                                                                  Zhang et al. 2019)

Adversarial queries come from the evaluation threat code (`QueryAttack.perturb`) against the
adapted weights theta' (detached: the attack is not differentiated through, as in adversarial
training). Defaults: MAML's Omniglot settings; training eps 2/255 and beta = 0.2 (AT) or 5
(TRADES), the paper's grid-searched values. Deviations: the paper's PGD training attack has
more steps (default here 3, to keep meta-training affordable on a CPU) and TRADES' inner
maximisation uses the KL loss (here the shared PGD on cross-entropy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from baselines._adversarial import AdversarialMAML, attacked_model, logits
from baselines._common import inner_loop, named_params
from bench.data.episodes import Episode
from bench.fields import count, pixels
from bench.seeding import derive_seed

PAPER_BETA = {"at": 0.2, "trades": 5.0}


@dataclass(frozen=True)
class RMAMLConfig:
    """Attributes:
        inner_lr, inner_steps, test_inner_steps, meta_lr, first_order: as `MAMLConfig`.
        outer_loss: ``at`` (cross-entropy on adversarial queries) or ``trades`` (KL term).
        beta: weight of the robust term (gamma_out in the paper); None: 0.2 (at) or 5 (trades).
        attack: training attack (a registered query attack); attack_eps, attack_alpha,
            attack_steps: its radius (paper: 2/255), PGD step size and iterations.
    """

    inner_lr: float = 0.4
    inner_steps: int = count(1)
    test_inner_steps: int = count(3)
    meta_lr: float = 1e-3
    first_order: bool = False
    outer_loss: Literal["at", "trades"] = "at"
    beta: float | None = None
    attack: Literal["fgsm", "pgd"] = "pgd"
    attack_eps: float = pixels(2 / 255)
    attack_alpha: float = pixels(1 / 255)
    attack_steps: int = count(3)


def robust_term(clean: torch.Tensor, adversarial: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """R-MAML's robustness regulariser from clean and adversarial query logits ``(N, W)``."""
    if kind == "trades":
        return F.kl_div(F.log_softmax(adversarial, -1), F.softmax(clean, -1), reduction="batchmean")
    return F.cross_entropy(adversarial, labels)


class RMAML(AdversarialMAML):
    """R-MAML_out: clean inner loop, adversarially regularised meta-update (Wang et al. 2021).

    Network ``backbone -> Linear(D, W)`` as MAML; per episode one adaptation and one attack
    on the queries (``attack_steps`` forward/backward passes) per meta-update.
    """

    name = "rmaml"
    title = "R-MAML"
    paper = "Wang et al. 2021, On Fast Adversarial Robustness Adaptation in Model-Agnostic Meta-Learning"
    Config = RMAMLConfig

    def __init__(self, config: RMAMLConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.beta = PAPER_BETA[config.outer_loss] if config.beta is None else config.beta

    def episode_loss(self, episode: Episode, index: int) -> torch.Tensor:
        """``CE(theta'; clean queries) + beta * R(theta'; adversarial queries)``."""
        cfg, e = self.config, episode
        fast = inner_loop(self.net, named_params(self.net), {}, e.support_x, e.support_y, cfg.inner_steps,
                          cfg.inner_lr, create_graph=not cfg.first_order)
        query_adv = self.attack.perturb(attacked_model(self.net, fast), e.query_x, e.query_y, e.way,
                                        derive_seed(self.updates, index))
        self.net.train()  # building a task model put the shared network in eval mode
        clean = logits(self.net, fast, e.query_x)
        adversarial = logits(self.net, fast, query_adv)
        return F.cross_entropy(clean, e.query_y) + self.beta * robust_term(clean, adversarial, e.query_y,
                                                                           cfg.outer_loss)
