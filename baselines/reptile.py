"""Reptile (Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms", arXiv:1803.02999).

Per task, a few steps of Adam on the task's data move the initialisation ``theta`` to ``phi``;
the meta-update interpolates toward the adapted weights, averaged over the meta-batch
(Algorithm 2, batched version):

    theta <- theta + eps_t * mean_tasks(phi_task - theta),   eps_t = eps * (1 - t / anneal_steps)

with the outer step size ``eps`` annealed linearly to 0 as in the paper. No second
derivatives and no held-out query loss are involved. Test-time adaptation is fine-tuning:
``test_inner_steps`` Adam steps on the support set, from ``theta``.

Defaults (paper, Appendix A, Omniglot and miniImageNet): Adam inner optimiser with lr 1e-3 and
beta1 = 0, 5 inner steps (miniImageNet: 8), 50 steps at test time, outer step 1.0 annealed to 0
over 100K meta-updates, batch statistics in batch norm (the paper's transductive setting).

Deviations: (1) the inner steps are full-batch on the task's data, where the paper takes
mini-batches of 10 (one pass over the data per task); (2) the task's data is the support plus
the query set of the training episode (``train_on_query``; the paper trains with 10-15 shots
per class, more than at test time); (3) Adam's state starts fresh for every task (the reference
code carries Adam's moments across tasks), and its epsilon sits inside the square root so the
steps stay differentiable for support attacks where a gradient coordinate is exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import Params, buffers_copy, fast_forward, linear_head_net, named_params, needs_graph
from baselines.maml import FastWeightClassifier
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import bounded, count


@dataclass(frozen=True)
class ReptileConfig:
    """Attributes:
        inner_optimizer: ``adam`` (paper) or plain ``sgd``.
        inner_lr: inner step size (paper: 1e-3 with Adam).
        adam_beta1, adam_beta2: Adam's moment decays (paper: beta1 = 0; beta2 Adam's default).
        inner_steps: inner steps per task in meta-training (paper: 5 Omniglot, 8 miniImageNet).
        test_inner_steps: fine-tuning steps on the support set at evaluation (paper: 50).
        outer_step: the interpolation step eps at the start of training (paper: 1.0).
        anneal_steps: meta-updates over which eps falls linearly to 0 (paper: 100K).
        train_on_query: adapt on support + query images in meta-training (see deviations).
    """

    inner_optimizer: Literal["adam", "sgd"] = "adam"
    inner_lr: float = 1e-3
    adam_beta1: float = bounded(0.0, 0, 1)
    adam_beta2: float = bounded(0.999, 0, 1)
    inner_steps: int = count(5)
    test_inner_steps: int = count(50)
    outer_step: float = 1.0
    anneal_steps: int = count(100_000)
    train_on_query: bool = True


def adam_step(params: Params, grads: Params, state: dict[str, Params], t: int, lr: float, betas: tuple[float, float],
              eps: float = 1e-8) -> tuple[Params, dict[str, Params]]:
    """One functional Adam step (Kingma & Ba 2015, Algorithm 1) at step ``t >= 1``.

    ``state`` holds the moments ``m`` and ``v`` (dicts like ``params``). Differs from
    `torch.optim.Adam` only in ``sqrt(v_hat + eps^2)`` for ``sqrt(v_hat) + eps``: differentiable
    at ``v = 0``.
    """
    b1, b2 = betas
    m = {k: b1 * state["m"][k] + (1 - b1) * g for k, g in grads.items()}
    v = {k: b2 * state["v"][k] + (1 - b2) * g * g for k, g in grads.items()}
    new = {k: p - lr * (m[k] / (1 - b1**t)) / torch.sqrt(v[k] / (1 - b2**t) + eps * eps) for k, p in params.items()}
    return new, {"m": m, "v": v}


def fine_tune(net: nn.Module, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor, steps: int,
              cfg: ReptileConfig, create_graph: bool) -> tuple[Params, float]:
    """``steps`` full-batch inner steps of cross-entropy on ``(x, y)``; returns the weights and the
    last step's loss."""
    state = {"m": {k: torch.zeros_like(p) for k, p in params.items()},
             "v": {k: torch.zeros_like(p) for k, p in params.items()}}
    loss = torch.tensor(float("nan"))
    for t in range(1, steps + 1):
        loss = F.cross_entropy(fast_forward(net, {**params, **buffers}, x), y)
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()), create_graph=create_graph),
                         strict=True))
        if cfg.inner_optimizer == "sgd":
            params = {k: p - cfg.inner_lr * grads[k] for k, p in params.items()}
        else:
            params, state = adam_step(params, grads, state, t, cfg.inner_lr, (cfg.adam_beta1, cfg.adam_beta2))
    return params, float(loss.detach())


class Reptile(Baseline):
    """Reptile: move the initialisation toward the task-adapted weights (Nichol et al. 2018).

    Network ``backbone -> Linear(D, W)``. The outer update is an SGD step of size eps_t on the
    "gradient" ``theta - mean(phi)``, so the annealed step lives in a checkpointed scheduler.
    Shapes: task data ``(W * (K + Q), C, H, W)`` in training, support ``(W * K, C, H, W)`` at test.
    """

    name = "reptile"
    title = "Reptile"
    paper = "Nichol et al. 2018, On First-Order Meta-Learning Algorithms"
    Config = ReptileConfig
    backbone_defaults = {"bn_stats": "batch"}

    def __init__(self, config: ReptileConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.net = linear_head_net(backbone, n_way, device)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.outer_step)
        horizon = max(config.anneal_steps, 1)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda t: max(0.0, 1.0 - t / horizon))

    def task_weights(self, episode: Episode) -> tuple[Params, float]:
        """``phi``: the weights after the inner steps on this training task (detached)."""
        cfg, e = self.config, episode
        x, y = (torch.cat([e.support_x, e.query_x]), torch.cat([e.support_y, e.query_y])) if cfg.train_on_query \
            else (e.support_x, e.support_y)
        theta = {k: v.detach().requires_grad_() for k, v in named_params(self.net).items()}
        phi, loss = fine_tune(self.net, theta, {}, x, y, cfg.inner_steps, cfg, create_graph=False)
        return {k: v.detach() for k, v in phi.items()}, loss

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.net.train()
        adapted, losses = zip(*(self.task_weights(e) for e in episodes), strict=True)
        self.optimizer.zero_grad(set_to_none=True)
        for name, theta in self.net.named_parameters():
            phi_mean = torch.stack([phi[name] for phi in adapted]).mean(0)
            theta.grad = theta.detach() - phi_mean  # SGD with lr eps_t: theta += eps_t * (phi - theta)
        self.optimizer.step()
        self.schedule.step()
        return {"loss": sum(losses) / len(losses)}

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.net.eval()
        buffers = buffers_copy(self.net)
        params = {k: v.detach().requires_grad_() for k, v in named_params(self.net).items()}
        with torch.enable_grad():
            fast, _ = fine_tune(self.net, params, buffers, support_x, support_y, self.config.test_inner_steps,
                                self.config, create_graph=needs_graph(support_x))
        if not needs_graph(support_x):
            fast = {k: v.detach() for k, v in fast.items()}
        return FastWeightClassifier(self.net, fast, buffers)
