"""Attacking a block of episodes at once, with per-episode results identical to one at a time.

Two parts:

* `stack` joins the task models of a block into ONE module over the concatenated queries
  ``(sum of N_e, C, H, W) -> (sum of N_e, way)``, each episode's slice answered by its own task
  model. Task models of one class that share their submodules and differ only in tensor
  attributes (ProtoNet's prototypes) are run as one `torch.func.vmap` call, i.e. one backbone
  pass over the whole block; others (MAML's fast weights live in a dict) are called one after
  the other. The vmapped module is used only when its logits for the last episode equal that
  episode's own task model bit for bit (on CPU they do for ProtoNet; grouped convolutions for
  per-episode weights round differently); otherwise the routed one is used.
* The signed-gradient attacks (FGSM, PGD, PGD-L2, MI-FGSM) written as tensor programs over a
  block, with exactly torchattacks' arithmetic. Two details make a block equal its episodes:
  each episode's random start is drawn from ITS seed (torchattacks would draw one start for the
  whole batch from the global RNG), and the loss is the SUM over episodes of each episode's
  MEAN cross-entropy, so every episode receives the gradient a one-episode attack computes
  (a block mean would scale it by N_e / N; sign() and the per-image L1/L2 normalisations are
  invariant to that in exact arithmetic, but not bit for bit in floating point).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from bench.baseline import TaskModel
from bench.seeding import torch_rng

Model = Callable[[torch.Tensor], torch.Tensor]


class Routed(TaskModel):
    """Concatenated queries -> logits, each slice of ``sizes`` through its own task model."""

    def __init__(self, models: Sequence[nn.Module], sizes: list[int]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)
        self.sizes = sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(part) for m, part in zip(self.models, x.split(self.sizes), strict=True)])


class Vmapped(TaskModel):
    """B task models that differ only in tensor attributes, run as one vmapped call.

    ``state`` maps attribute names to stacked values ``(B, ...)``; the forward reshapes the
    queries to ``(B, Q, C, H, W)`` and substitutes each episode's attributes by
    `torch.func.functional_call`.
    """

    def __init__(self, template: nn.Module, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.template = template
        self.state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        count = next(iter(self.state.values())).shape[0]
        per_episode = x.reshape(count, -1, *x.shape[1:])
        out = vmap(lambda xs, st: functional_call(self.template, st, (xs,)))(per_episode, self.state)
        return out.flatten(0, 1)


def episode_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The plain tensor attributes of a task model (not parameters, buffers or submodules)."""
    return {k: v for k, v in vars(model).items() if not k.startswith("_") and isinstance(v, torch.Tensor)}


def _vmappable(models: Sequence[nn.Module], sizes: list[int]) -> dict[str, torch.Tensor] | None:
    """Stacked per-episode state when the models fit `Vmapped`, else None."""
    first = models[0]
    if len(models) < 2 or len(set(sizes)) != 1 or any(type(m) is not type(first) for m in models):
        return None
    shared = ("_modules", "_parameters", "_buffers")
    for m in models[1:]:
        for attr in shared:
            mine, theirs = getattr(m, attr), getattr(first, attr)
            if mine.keys() != theirs.keys() or any(mine[k] is not theirs[k] for k in mine):
                return None
        if any(isinstance(v, dict) for k, v in vars(m).items() if not k.startswith("_")):
            return None  # per-episode weights in a dict (MAML): not substitutable by name
    states = [episode_state(m) for m in models]
    keys = states[0].keys()
    if not keys or any(s.keys() != keys or any(s[k].shape != states[0][k].shape for k in keys) for s in states):
        return None
    return {k: torch.stack([s[k].detach() for s in states]) for k in keys}


def stack(models: Sequence[nn.Module], queries: list[torch.Tensor], exact: bool = True) -> TaskModel:
    """One module for a block: `Vmapped` when it agrees with the episodes' own models, else `Routed`.

    Args:
        models: the task models of the block, one per episode.
        queries: each episode's queries ``(N_e, C, H, W)``.
        exact: require the vmapped logits of the last episode to equal its own model's bit for
            bit; otherwise within float32 rounding (``1e-3`` of the logits' scale), which only
            guards against a wrong substitution of per-episode state.
    """
    sizes = [len(q) for q in queries]
    routed = Routed(models, sizes)
    state = _vmappable(models, sizes)
    if state is None:
        return routed
    vmapped = Vmapped(models[0], state)
    # A two-episode block first: batch-dependent kernels show there, at a fraction of the cost.
    pair = Vmapped(models[0], {k: v[-2:] for k, v in state.items()})
    if _agrees(pair, models[-1], queries[-2:], exact) and _agrees(vmapped, models[-1], queries, exact):
        return vmapped
    return routed


def _agrees(joint: nn.Module, last: nn.Module, queries: list[torch.Tensor], exact: bool) -> bool:
    """Whether ``joint``'s logits for the last episode equal (or are close to) ``last``'s own."""
    try:
        with torch.no_grad():
            mine = joint(torch.cat(queries))[-len(queries[-1]):]
            alone = last(queries[-1])
    except (RuntimeError, ValueError, TypeError):  # e.g. randomness or ops vmap does not support
        return False
    if exact:
        return torch.equal(mine, alone)
    return bool((mine - alone).abs().max() <= 1e-3 * alone.abs().max() + 1e-6)


def episode_grad(model: Model, x: torch.Tensor, y: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """d/dx of the sum over episodes of each episode's mean cross-entropy: ``(N, C, H, W)``.

    For `Routed`, one episode at a time: the same numbers, without keeping the whole block's
    graph in memory at once (on a CPU that alone made blocks slower than single episodes).
    """
    if isinstance(model, Routed):
        parts = zip(model.models, x.split(sizes), y.split(sizes), strict=True)
        return torch.cat([episode_grad(m, xs, ys, [len(xs)]) for m, xs, ys in parts])
    x = x.detach().requires_grad_()
    losses = F.cross_entropy(model(x), y, reduction="none")
    loss = torch.stack([part.mean() for part in losses.split(sizes)]).sum()
    return torch.autograd.grad(loss, x)[0]


def random_start(x: torch.Tensor, sizes: list[int], seeds: list[int] | None,
                 draw: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``draw(x_e)`` per episode under ``torch_rng(seed_e)``; ``seeds=None``: one draw from
    the current RNG (the one-episode path, already inside ``torch_rng``)."""
    if seeds is None:
        return draw(x)
    parts = []
    for part, seed in zip(x.split(sizes), seeds, strict=True):
        with torch_rng(seed, x.device):
            parts.append(draw(part))
    return torch.cat(parts)


def fgsm(model: Model, x: torch.Tensor, y: torch.Tensor, sizes: list[int], eps: float) -> torch.Tensor:
    """torchattacks.FGSM: ``clamp(x + eps * sign(grad), 0, 1)``."""
    return torch.clamp(x + eps * episode_grad(model, x, y, sizes).sign(), min=0, max=1)


def pgd(model: Model, x: torch.Tensor, y: torch.Tensor, sizes: list[int], seeds: list[int] | None,
        eps: float, alpha: float, steps: int, start: bool) -> torch.Tensor:
    """torchattacks.PGD (L-inf), operation for operation."""
    adv = x.clone()
    if start:
        noise = random_start(x, sizes, seeds, lambda part: torch.empty_like(part).uniform_(-eps, eps))
        adv = torch.clamp(adv + noise, min=0, max=1)
    for _ in range(steps):
        adv = adv + alpha * episode_grad(model, adv, y, sizes).sign()
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        adv = torch.clamp(x + delta, min=0, max=1)
    return adv


def _l2_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    """torchattacks.PGDL2's start: a Gaussian direction scaled to a uniform radius in [0, eps]."""
    delta = torch.empty_like(x).normal_()
    norms = delta.view(x.size(0), -1).norm(p=2, dim=1).view(x.size(0), 1, 1, 1)
    radius = torch.zeros_like(norms).uniform_(0, 1)
    delta *= radius / norms * eps
    return delta


def _l2_norms(t: torch.Tensor) -> torch.Tensor:
    return torch.norm(t.view(t.shape[0], -1), p=2, dim=1)


def pgd_l2(model: Model, x: torch.Tensor, y: torch.Tensor, sizes: list[int], seeds: list[int] | None,
           eps: float, alpha: float, steps: int, start: bool) -> torch.Tensor:
    """torchattacks.PGDL2; the projection factor is 1 inside the ball (no 0/0 at eps = 0)."""
    adv = x.clone()
    if start:
        adv = torch.clamp(adv + random_start(x, sizes, seeds, lambda part: _l2_start(part, eps)), min=0, max=1)
    for _ in range(steps):
        grad = episode_grad(model, adv, y, sizes)
        grad = grad / (_l2_norms(grad) + 1e-10).view(-1, 1, 1, 1)
        adv = adv + alpha * grad
        delta = adv - x
        norms = _l2_norms(delta)
        factor = torch.where(norms > eps, eps / norms, torch.ones_like(norms))
        adv = torch.clamp(x + delta * factor.view(-1, 1, 1, 1), min=0, max=1)
    return adv


def mifgsm(model: Model, x: torch.Tensor, y: torch.Tensor, sizes: list[int], eps: float, alpha: float,
           steps: int, decay: float) -> torch.Tensor:
    """torchattacks.MIFGSM; an all-zero gradient is left at zero instead of 0/0."""
    momentum = torch.zeros_like(x)
    adv = x.clone()
    for _ in range(steps):
        grad = episode_grad(model, adv, y, sizes)
        l1 = torch.mean(torch.abs(grad), dim=(1, 2, 3), keepdim=True)
        grad = grad / torch.where(l1 > 0, l1, torch.ones_like(l1))
        grad = grad + momentum * decay
        momentum = grad
        adv = adv + alpha * grad.sign()
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        adv = torch.clamp(x + delta, min=0, max=1)
    return adv
