"""Probabilistic MAML with a Gaussian prior: the implicit-gradient MAML of Rajeswaran, Finn,
Kakade & Levine (NeurIPS 2019, "Meta-Learning with Implicit Gradients", arXiv:1909.04630).

Each task's parameters are the MAP estimate under the meta-learned prior ``N(theta, 1/lam I)``:

    phi*(theta) = argmin_phi  L_support(phi) + lam / 2 * ||phi - theta||^2          (iMAML eq. 4)

(``L_support`` is the mean cross-entropy, standing in for the negative log-likelihood), solved
approximately by ``inner_steps`` gradient steps from ``theta``. Stationarity gives the implicit
Jacobian ``d phi* / d theta = (I + H / lam)^-1`` with ``H`` the support-loss Hessian at ``phi*``,
so the meta-gradient of the query loss is

    g_theta = (I + H / lam)^-1 grad_phi L_query(phi*)                               (iMAML eq. 7)

found by ``cg_steps`` of conjugate gradient with Hessian-vector products (double backward),
never forming ``H``. The default is this implicit gradient (the paper's method);
``implicit: false`` uses the first-order approximation ``g_theta = grad_phi L_query(phi*)``.
Neither differentiates through the inner steps, so memory does not grow with them.

Defaults (the authors' Omniglot 5-way 1-shot command): lam = 2, 16 inner steps of lr 0.1,
5 CG steps, Adam meta lr 1e-3; batch statistics in batch norm. Deviations: (1) lam is fixed
(the prior precision is a hyperparameter, only its mean is learned; the reference code's
lam learning is marked untested); (2) no CG damping (the reference code adds ``(1 + d) v`` and
``lam + 10``); CG stops early on non-positive curvature instead; (3) the test-time MAP uses the
same prior (the reference evaluation drops it, lam = 0); (4) adaptation on support images that
require grad is differentiated by unrolling the inner steps (the support attacks need it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import Params, buffers_copy, fast_forward, linear_head_net, named_params, needs_graph
from baselines.maml import FastWeightClassifier
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import count

Vector = list[torch.Tensor]  # a point in parameter space, one tensor per parameter


@dataclass(frozen=True)
class ProMAMLConfig:
    """Attributes:
        prior_precision: lam, the precision of the Gaussian prior around theta (paper: 2.0).
        inner_lr: gradient-descent step size of the MAP solve (paper: 0.1).
        inner_steps: gradient steps of the MAP solve, training (paper: 16).
        test_inner_steps: gradient steps of the MAP solve at evaluation (paper: 16).
        cg_steps: conjugate-gradient iterations for the implicit gradient (paper: 5).
        implicit: True for the implicit meta-gradient, False for the first-order approximation.
        meta_lr: Adam learning rate of the meta-update (paper: 1e-3).
    """

    prior_precision: float = 2.0
    inner_lr: float = 0.1
    inner_steps: int = count(16)
    test_inner_steps: int = count(16)
    cg_steps: int = count(5)
    implicit: bool = True
    meta_lr: float = 1e-3


def _dot(a: Vector, b: Vector) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def conjugate_gradient(matvec: Callable[[Vector], Vector], b: Vector, steps: int) -> Vector:
    """Approximate solution of ``A x = b`` for symmetric ``A`` given as ``matvec`` (Hestenes &
    Stiefel 1952), from ``x = 0``; stops early at convergence or non-positive curvature."""
    x = [torch.zeros_like(t) for t in b]
    r, p = [t.clone() for t in b], [t.clone() for t in b]
    rr = _dot(r, r)
    for _ in range(steps):
        ap = matvec(p)
        curvature = _dot(p, ap)
        if rr <= 1e-30 or curvature <= 0:
            break
        alpha = rr / curvature
        x = [xi + alpha * pi for xi, pi in zip(x, p, strict=True)]
        r = [ri - alpha * ai for ri, ai in zip(r, ap, strict=True)]
        rr_next = _dot(r, r)
        p = [ri + (rr_next / rr) * pi for ri, pi in zip(r, p, strict=True)]
        rr = rr_next
    return x


def implicit_meta_grad(support_loss: Callable[[Params], torch.Tensor], phi: Params, query_grad: Vector,
                       lam: float, steps: int) -> Vector:
    """``(I + H / lam)^-1 query_grad`` with ``H`` the Hessian of ``support_loss`` at ``phi`` (CG)."""
    phi = {k: v.detach().requires_grad_() for k, v in phi.items()}
    grads = torch.autograd.grad(support_loss(phi), list(phi.values()), create_graph=True)

    def matvec(v: Vector) -> Vector:
        hv = torch.autograd.grad(grads, list(phi.values()), grad_outputs=v, retain_graph=True)
        return [vi + hvi / lam for vi, hvi in zip(v, hv, strict=True)]

    return [t.detach() for t in conjugate_gradient(matvec, query_grad, steps)]


def proximal_solve(support_loss: Callable[[Params], torch.Tensor], theta: Params, lam: float, lr: float, steps: int,
                   create_graph: bool) -> Params:
    """``steps`` gradient steps on ``support_loss(phi) + lam / 2 ||phi - theta||^2`` from ``theta``."""
    phi = dict(theta)
    for _ in range(steps):
        grads = torch.autograd.grad(support_loss(phi), list(phi.values()), create_graph=create_graph)
        phi = {k: p - lr * (g + lam * (p - theta[k])) for (k, p), g in zip(phi.items(), grads, strict=True)}
    return phi


class ProMAML(Baseline):
    """Probabilistic MAML: MAP adaptation under a learned Gaussian prior, implicit meta-gradient.

    Network ``backbone -> Linear(D, W)``. Per task: MAP solve on the support set, query
    gradient at ``phi*``, CG solve; the meta-batch mean goes to Adam as theta's gradient.
    """

    name = "promaml"
    title = "ProMAML"
    paper = "Rajeswaran et al. 2019, Meta-Learning with Implicit Gradients"
    Config = ProMAMLConfig
    backbone_defaults = {"bn_stats": "batch"}

    def __init__(self, config: ProMAMLConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.net = linear_head_net(backbone, n_way, device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.meta_lr)

    def support_loss(self, x: torch.Tensor, y: torch.Tensor, buffers: Params) -> Callable[[Params], torch.Tensor]:
        return lambda params: F.cross_entropy(fast_forward(self.net, {**params, **buffers}, x), y)

    def task_meta_grad(self, episode: Episode) -> tuple[Vector, float]:
        """Theta's meta-gradient for one task (implicit or first order) and the query loss."""
        cfg, e = self.config, episode
        theta = {k: v.detach().requires_grad_() for k, v in named_params(self.net).items()}
        loss_fn = self.support_loss(e.support_x, e.support_y, {})
        phi = proximal_solve(loss_fn, theta, cfg.prior_precision, cfg.inner_lr, cfg.inner_steps, False)
        phi = {k: v.detach().requires_grad_() for k, v in phi.items()}
        query_loss = F.cross_entropy(fast_forward(self.net, phi, e.query_x), e.query_y)
        query_grad = list(torch.autograd.grad(query_loss, list(phi.values())))
        if cfg.implicit:
            query_grad = implicit_meta_grad(loss_fn, phi, query_grad, cfg.prior_precision, cfg.cg_steps)
        return query_grad, query_loss.item()

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.net.train()
        results = [self.task_meta_grad(e) for e in episodes]
        self.optimizer.zero_grad(set_to_none=True)
        for i, p in enumerate(self.net.parameters()):
            p.grad = torch.stack([g[i] for g, _ in results]).mean(0)
        self.optimizer.step()
        return {"loss": sum(loss for _, loss in results) / len(results)}

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.net.eval()
        cfg, graph, buffers = self.config, needs_graph(support_x), buffers_copy(self.net)
        theta = {k: v.detach().requires_grad_() for k, v in named_params(self.net).items()}
        with torch.enable_grad():
            phi = proximal_solve(self.support_loss(support_x, support_y, buffers), theta, cfg.prior_precision,
                                 cfg.inner_lr, cfg.test_inner_steps, create_graph=graph)
        if not graph:
            phi = {k: v.detach() for k, v in phi.items()}
        return FastWeightClassifier(self.net, phi, buffers)
