"""Few-shot math shared by the baselines, as pure functions (no base-class methods).

Shapes: ``N`` support or query samples, ``D`` feature dimension, ``W`` the episode's way,
``T`` tasks in a meta-batch.

The second half is the fast functional forward the MAML family runs its fast weights through
(`fast_forward`): for networks that are a plain chain of standard layers (conv4 + linear head) it
interprets the chain itself, which allows two exact CPU speed-ups that `functional_call` on the
module cannot apply: channels-last memory layout (oneDNN's fast kernels, ~13x faster max-pool)
and ReLU applied after max-pooling (they commute, so 4x fewer elements). Any other network goes
through `functional_call` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from weakref import WeakKeyDictionary

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from bench.backbones import Conv4, cpu_layout

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


def linear_head_net(backbone: nn.Module, n_way: int, device: torch.device) -> nn.Sequential:
    """``backbone -> Linear(out_features, n_way)`` on ``device``: the MAML family's network
    (Finn et al. 2017), whose head is adapted with the backbone (or alone, ANIL)."""
    return nn.Sequential(backbone, nn.Linear(backbone.out_features, n_way)).to(device)


def minimise(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
             schedule: torch.optim.lr_scheduler.LRScheduler | None = None) -> dict[str, float]:
    """One optimiser step on ``loss`` (gradients reset first, then the schedule advanced): the
    outer update every episodic baseline ends its ``train_step`` with. Returns ``{"loss": ...}``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if schedule is not None:
        schedule.step()
    return {"loss": loss.item()}


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits (N, W)`` whose argmax equals ``labels (N,)``."""
    return float((logits.argmax(-1) == labels).float().mean())


def needs_graph(*tensors: torch.Tensor) -> bool:
    """True when any input requires grad (then adaptation must stay differentiable)."""
    return any(t.requires_grad for t in tensors)


# ---------------------------------------------------------------------------------------------
# Fast functional forward for layer chains (MAML family)
# ---------------------------------------------------------------------------------------------

Chain = tuple[tuple[str, nn.Module], ...]
_LEAVES = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Linear, nn.Flatten, nn.Identity)
_chains: WeakKeyDictionary[nn.Module, Chain | None] = WeakKeyDictionary()


def layer_chain(net: nn.Module) -> Chain | None:
    """``(parameter-name prefix, layer)`` pairs in call order when ``net`` is a plain chain of
    standard layers (`nn.Sequential` nesting, `Conv4`, a linear head), else None. Cached."""
    if net not in _chains:
        _chains[net] = _chain(net, "")
    return _chains[net]


def _chain(module: nn.Module, prefix: str) -> Chain | None:
    if isinstance(module, _LEAVES):
        return ((prefix, module),) if _interpretable(module) else None
    if type(module) is Conv4:  # its forward is `blocks(x).flatten(1)` (tests check the equivalence)
        inner = _chain(module.blocks, f"{prefix}blocks.")
        return None if inner is None else (*inner, (prefix, nn.Flatten(1)))
    if type(module).forward is not nn.Sequential.forward:
        return None
    links: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        sub = _chain(child, f"{prefix}{name}.")
        if sub is None:
            return None
        links.extend(sub)
    return tuple(links)


def _interpretable(layer: nn.Module) -> bool:
    if isinstance(layer, nn.Conv2d):
        return layer.padding_mode == "zeros"
    if isinstance(layer, nn.MaxPool2d):
        return not layer.return_indices
    return True


def fast_forward(net: nn.Module, tensors: Params, x: torch.Tensor, manual_bn: bool = False) -> torch.Tensor:
    """``net`` run with ``tensors`` (fast weights and buffers; absent names: the module's own).

    Same maths as ``functional_call(net, tensors, (x,))``; on the CPU, chains run channels-last
    (`bench.backbones.cpu_layout`).
    ``manual_bn`` computes batch-norm batch statistics from primitive ops, for `torch.func.vmap`:
    under vmap, ``F.batch_norm``'s double backward gives wrong gradients (PyTorch 2.x; found by
    ``tests/test_oracles_maml.py``).
    """
    chain = layer_chain(net)
    if chain is None:
        return functional_call(net, tensors, (x,))
    if not manual_bn:  # as the backbones' own forward does; vmap's batching rules want NCHW
        x = cpu_layout(x)
    i = 0
    while i < len(chain):
        prefix, layer = chain[i]
        pool_next = i + 1 < len(chain) and isinstance(chain[i + 1][1], nn.MaxPool2d)
        if isinstance(layer, nn.ReLU) and pool_next:  # max-pool(relu(x)) == relu(max-pool(x)), exactly
            x, i = F.relu(_layer(chain[i + 1][0], chain[i + 1][1], tensors, x, manual_bn)), i + 2
            continue
        x, i = _layer(prefix, layer, tensors, x, manual_bn), i + 1
    return x


def _layer(prefix: str, layer: nn.Module, t: Params, x: torch.Tensor, manual_bn: bool) -> torch.Tensor:
    def get(attr: str) -> torch.Tensor:
        return t.get(prefix + attr, getattr(layer, attr))

    if isinstance(layer, nn.Conv2d):
        return F.conv2d(x, get("weight"), get("bias"), layer.stride, layer.padding, layer.dilation, layer.groups)
    if isinstance(layer, nn.BatchNorm2d):
        return _batch_norm(layer, get, x, manual_bn)
    if isinstance(layer, nn.MaxPool2d):
        return F.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
    if isinstance(layer, nn.ReLU):
        return F.relu(x)
    if isinstance(layer, nn.Linear):
        return F.linear(x, get("weight"), get("bias"))
    if isinstance(layer, nn.Flatten):
        return x.flatten(layer.start_dim, layer.end_dim)
    return x  # nn.Identity


def _batch_norm(bn: nn.BatchNorm2d, get: Callable[[str], torch.Tensor], x: torch.Tensor,
                manual: bool) -> torch.Tensor:
    """`nn.BatchNorm2d.forward`'s semantics with substitutable weights and statistics."""
    mean, var = get("running_mean"), get("running_var")
    weight, bias = get("weight"), get("bias")
    if manual:
        if mean is not None and not bn.training:
            raise ValueError("manual batch norm computes batch statistics only")
        mu, sigma2 = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), unbiased=False, keepdim=True)
        out = (x - mu) * torch.rsqrt(sigma2 + bn.eps)
        return out if weight is None else out * weight[:, None, None] + bias[:, None, None]
    momentum = bn.momentum
    if bn.training and mean is not None:
        count = get("num_batches_tracked")
        count.add_(1)
        momentum = 1.0 / float(count) if momentum is None else momentum
    return F.batch_norm(x, mean, var, weight, bias, bn.training or mean is None, momentum or 0.0, bn.eps)


def cross_entropy_step(net: nn.Module, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor,
                       lr: float | Params, create_graph: bool) -> Params:
    """One functional SGD step of ``cross_entropy(net(x), y)`` from ``params`` (Finn et al. 2017, eq. 1)."""
    loss = F.cross_entropy(fast_forward(net, {**params, **buffers}, x), y)
    return sgd_step(params, loss, lr, create_graph)


def fast_inner_loop(net: nn.Module, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor,
                    steps: int, lr: float, create_graph: bool, checkpointed: bool = False) -> Params:
    """`inner_loop` through `fast_forward`; ``checkpointed`` recomputes each step in the backward pass.

    Checkpointing (non-reentrant `torch.utils.checkpoint`, which supports the ``autograd.grad``
    inside a step) keeps only each step's fast weights, so memory no longer grows with the
    step's activations times ``steps``; the price is one more forward + backward per step.
    Batch-norm running statistics are updated again by the recomputation: pass copies.
    """
    for _ in range(steps):
        if checkpointed and create_graph:
            params = _checkpointed_step(net, params, buffers, x, y, lr)
        else:
            params = cross_entropy_step(net, params, buffers, x, y, lr, create_graph)
    return params


def _checkpointed_step(net: nn.Module, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor,
                       lr: float) -> Params:
    names = list(params)

    def step(inputs: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        new = cross_entropy_step(net, dict(zip(names, values, strict=True)), buffers, inputs, y, lr, True)
        return tuple(new.values())

    return dict(zip(names, checkpoint(step, x, *params.values(), use_reentrant=False), strict=True))


def stack_episodes(episodes: Sequence) -> tuple[torch.Tensor, ...] | None:
    """``(support_x, support_y, query_x, query_y)`` stacked to ``(T, ...)`` for `vmap`, or None
    when the episodes' shapes differ."""
    fields = ("support_x", "support_y", "query_x", "query_y")
    shapes = {tuple(getattr(e, f).shape for f in fields) for e in episodes}
    if len(shapes) != 1:
        return None
    return tuple(torch.stack([getattr(e, f) for e in episodes]) for f in fields)


def has_running_stats(net: nn.Module) -> bool:
    """True when some batch-norm layer of ``net`` tracks running statistics."""
    return any(isinstance(m, nn.BatchNorm2d) and m.running_mean is not None for m in net.modules())
