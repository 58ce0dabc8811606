"""Few-shot math shared by the baselines, as pure functions (no base-class methods).

Shapes: ``N`` support or query samples, ``D`` feature dimension, ``W`` the episode's way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

Params = dict[str, torch.Tensor]


def class_means(features: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Per-class mean of ``features (N, D)`` for ``labels (N,)`` in ``0..way-1`` -> ``(W, D)``."""
    one_hot = F.one_hot(labels, way).to(features.dtype)  # (N, W)
    return (one_hot.t() @ features) / one_hot.sum(0)[:, None]


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between rows: ``(N, D), (M, D) -> (N, M)``."""
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)


def named_params(module: nn.Module) -> Params:
    """The module's parameters as a dict (the initial fast weights)."""
    return dict(module.named_parameters())


def buffers_copy(module: nn.Module) -> Params:
    """Copies of the module's buffers, so a functional forward in train mode (batch norm
    updating running statistics) cannot change the module itself."""
    return {k: v.clone() for k, v in module.named_buffers()}


def sgd_step(params: Params, loss: torch.Tensor, lr: float | Params, create_graph: bool) -> Params:
    """One functional SGD step ``p - lr * dL/dp`` (Finn et al. 2017, eq. 1).

    Args:
        params: current fast weights.
        loss: scalar depending on ``params``.
        lr: one learning rate, or one per parameter name (Meta-SGD / MAML++ style).
        create_graph: keep the graph of the step (second-order meta-gradients, support attacks).
    """
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    rates = lr if isinstance(lr, dict) else dict.fromkeys(params, lr)
    return {name: p - rates[name] * g for (name, p), g in zip(params.items(), grads, strict=True)}


def inner_loop(module: nn.Module, params: Params, buffers: Params, x: torch.Tensor,
               y: torch.Tensor, steps: int, lr: float, create_graph: bool) -> Params:
    """``steps`` functional SGD steps of cross-entropy on ``(x, y)`` from ``params``."""
    for _ in range(steps):
        logits = functional_call(module, {**params, **buffers}, (x,))
        params = sgd_step(params, F.cross_entropy(logits, y), lr, create_graph)
    return params


def episode_mean(losses: list[torch.Tensor]) -> torch.Tensor:
    """Mean of per-episode losses (the meta-batch average)."""
    return torch.stack(losses).mean()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits (N, W)`` whose argmax equals ``labels (N,)``."""
    return float((logits.argmax(-1) == labels).float().mean())


def needs_graph(*tensors: torch.Tensor) -> bool:
    """True when any input requires grad (then adaptation must stay differentiable)."""
    return any(t.requires_grad for t in tensors)


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
