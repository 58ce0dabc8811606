"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017, arXiv:1703.03400).

Fast weights are plain tensors threaded through a functional forward (`fast_forward`); the
meta-gradient differentiates through the inner SGD steps (second order) unless ``first_order``
is set, which drops the second-derivative terms (the paper's "first-order approximation",
Sec. 5.2). Defaults are the paper's Omniglot 5-way settings: inner lr 0.4, one inner step in
training, three at test time, Adam meta lr 1e-3, batch statistics in batch norm (transductive,
as in the reference code). Deviation: none in the method; the head is one linear layer on the
backbone's flattened features, as in the paper.

Engineering (same maths, see docs/maml-family.md): the tasks of a meta-batch are
back-propagated one at a time, so peak memory is one task's graph, not the meta-batch's;
``checkpoint_inner`` recomputes each inner step in the backward pass (many steps on 84 px);
``task_batching`` runs the meta-batch as one `torch.func.vmap` (GPU: one kernel per layer for
all tasks instead of one per task).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad, vmap

from baselines._common import (
    Params,
    buffers_copy,
    fast_forward,
    fast_inner_loop,
    has_running_stats,
    layer_chain,
    linear_head_net,
    named_params,
    needs_graph,
    stack_episodes,
)
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import count


@dataclass(frozen=True)
class MAMLConfig:
    """Attributes:
        inner_lr: step size of the task-adaptation SGD (paper: 0.4 Omniglot, 0.01 miniImageNet).
        inner_steps: inner SGD steps during meta-training (paper: 1 Omniglot, 5 miniImageNet).
        test_inner_steps: inner SGD steps at evaluation (paper: 3 Omniglot, 10 miniImageNet).
        meta_lr: Adam learning rate of the meta-update (paper: 1e-3).
        first_order: ignore second derivatives in the meta-gradient (FOMAML).
        checkpoint_inner: gradient checkpointing of the inner loop (second order only): memory
            no longer grows with each inner step's activations, one extra forward/backward per
            step. Worth it for many inner steps on large images (docs/maml-family.md).
        task_batching: ``loop`` (one task after another), ``vmap`` (the meta-batch in one
            `torch.func.vmap`; needs equal episode shapes, a chain backbone such as conv4 and
            batch-statistics batch norm, else it loops) or ``auto`` (vmap on CUDA, loop on CPU,
            where the loop measured faster).
    """

    inner_lr: float = 0.4
    inner_steps: int = count(1)
    test_inner_steps: int = count(3)
    meta_lr: float = 1e-3
    first_order: bool = False
    checkpoint_inner: bool = False
    task_batching: Literal["auto", "loop", "vmap"] = "auto"


class FastWeightClassifier(TaskModel):
    """Query ``(N, C, H, W)`` -> logits ``(N, W)`` of ``net`` run with the adapted ``params``."""

    def __init__(self, net: nn.Module, params: Params, buffers: Params) -> None:
        super().__init__()
        self.net = net
        self.params = params
        self.buffers_ = buffers
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_forward(self.net, {**self.params, **self.buffers_}, x)


def maml_task_loss(net: nn.Module, params: Params, episode: Episode, cfg: MAMLConfig) -> torch.Tensor:
    """Query loss of the weights adapted on the support set (the MAML objective, eq. 3)."""
    buffers = buffers_copy(net) if cfg.checkpoint_inner else {}  # recomputation must not re-update BN stats
    fast = fast_inner_loop(net, params, buffers, episode.support_x, episode.support_y, cfg.inner_steps,
                           cfg.inner_lr, create_graph=not cfg.first_order, checkpointed=cfg.checkpoint_inner)
    for name, value in buffers.items():
        net.get_buffer(name).copy_(value)
    return F.cross_entropy(fast_forward(net, fast, episode.query_x), episode.query_y)


def vmap_meta_loss(net: nn.Module, params: Params, tasks: tuple[torch.Tensor, ...], cfg: MAMLConfig) -> torch.Tensor:
    """Mean query loss over a stacked meta-batch ``(T, ...)`` in one `torch.func.vmap`.

    The inner gradient is `torch.func.grad`, which keeps the graph for the outer backward (second
    order) unless ``first_order`` detaches it. Batch norm uses primitive ops (see `fast_forward`).
    """

    def support_loss(p: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(fast_forward(net, p, x, manual_bn=True), y)

    def task_loss(p: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor) -> torch.Tensor:
        for _ in range(cfg.inner_steps):
            g = grad(support_loss)(p, sx, sy)
            p = {k: v - cfg.inner_lr * (g[k].detach() if cfg.first_order else g[k]) for k, v in p.items()}
        return support_loss(p, qx, qy)

    return vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(params, *tasks).mean()


class MAML(Baseline):
    """MAML: a shared initialisation adapted to each task by a few SGD steps.

    The network is ``backbone -> Linear(D, W)``. Meta-training minimises the query loss of the
    adapted weights (Finn et al. 2017, Algorithm 2) averaged over the meta-batch, with Adam.
    Shapes: support ``(W * K, C, H, W)``, queries ``(W * Q, C, H, W)``, logits ``(W * Q, W)``.
    """

    name = "maml"
    title = "MAML"
    paper = "Finn et al. 2017, Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks"
    Config = MAMLConfig
    backbone_defaults = {"bn_stats": "batch"}

    def __init__(self, config: MAMLConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.net = linear_head_net(backbone, n_way, device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.meta_lr)

    def episode_loss(self, episode: Episode) -> torch.Tensor:
        return maml_task_loss(self.net, named_params(self.net), episode, self.config)

    def vmap_tasks(self, episodes: list[Episode]) -> tuple[torch.Tensor, ...] | None:
        """The stacked meta-batch when the vmap path applies (see `MAMLConfig.task_batching`)."""
        mode = self.config.task_batching
        if mode == "loop" or (mode == "auto" and self.device.type != "cuda") or self.config.checkpoint_inner:
            return None
        if layer_chain(self.net) is None or has_running_stats(self.net):
            return None
        return stack_episodes(episodes)

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        tasks = self.vmap_tasks(episodes)
        if tasks is not None:
            loss = vmap_meta_loss(self.net, named_params(self.net), tasks, self.config)
            loss.backward()
            total = loss.item()
        else:
            total = 0.0
            for episode in episodes:  # one task's graph alive at a time; grads accumulate
                loss = self.episode_loss(episode) / len(episodes)
                loss.backward()
                total += loss.item()
        self.optimizer.step()
        return {"loss": total}

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        return maml_adapt(self.net, self.config.inner_lr, self.config.test_inner_steps, support_x, support_y)


def maml_adapt(net: nn.Module, inner_lr: float, steps: int, support_x: torch.Tensor,
               support_y: torch.Tensor) -> FastWeightClassifier:
    """MAML's test-time adaptation (Finn et al. 2017): ``steps`` SGD steps of ``inner_lr`` from
    ``net``'s weights on the support set ``(W * K, C, H, W)``; the MAML family (MAML, ADML,
    R-MAML) adapts with it. The graph is kept only when the support set needs gradients (a
    support attack differentiates through the adaptation)."""
    net.eval()
    buffers = buffers_copy(net)
    params = {k: v.detach().requires_grad_() for k, v in named_params(net).items()}
    with torch.enable_grad():
        fast = fast_inner_loop(net, params, buffers, support_x, support_y, steps, inner_lr,
                               create_graph=needs_graph(support_x))
    if not needs_graph(support_x):
        fast = {k: v.detach() for k, v in fast.items()}
    return FastWeightClassifier(net, fast, buffers)
