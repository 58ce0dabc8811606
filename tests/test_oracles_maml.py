"""Oracle tests for the MAML family: each baseline's maths against a computation by hand.

Tiny conv4 networks (4 filters, 16 px) in float64, so that agreement can be asserted to 1e-8
and finite differences are meaningful. The conformance battery (tests/test_contract.py) runs
these baselines too; here only the maths.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines._common import buffers_copy, fast_forward, fast_inner_loop, layer_chain, named_params, stack_episodes
from baselines.anil import ANIL, ANILConfig
from baselines.maml import MAML, MAMLConfig, maml_task_loss, vmap_meta_loss
from baselines.mamlpp import MAMLPlusPlus, MAMLPlusPlusConfig, multi_step_weights
from baselines.promaml import ProMAML, ProMAMLConfig, conjugate_gradient, implicit_meta_grad, proximal_solve
from baselines.reptile import Reptile, ReptileConfig, adam_step
from bench.backbones import Conv4, Conv4Config
from bench.data.episodes import Episode

SIZE, WAY = 16, 5
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def float64() -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def episode(seed: int, shot: int = 1, query: int = 2) -> Episode:
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.rand(WAY, 1, SIZE, SIZE, generator=gen)

    def draw(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(WAY).repeat_interleave(k)
        return (patterns[y] + 0.2 * torch.randn(len(y), 1, SIZE, SIZE, generator=gen)).clamp(0, 1), y

    return Episode(*draw(shot), *draw(query))


def backbone(bn_stats: str = "batch", seed: int = 0) -> Conv4:
    torch.manual_seed(seed)
    return Conv4(Conv4Config(hidden=4, bn_stats=bn_stats), 1, SIZE)  # type: ignore[arg-type]


Tensors = list[torch.Tensor] | tuple[torch.Tensor, ...]


def max_diff(a: Tensors, b: Tensors) -> float:
    return max(float((x - y).detach().abs().max()) for x, y in zip(a, b, strict=True))


# ----------------------------------------------------------------------------------------- MAML


def test_one_inner_step_is_p_minus_lr_g() -> None:
    maml = MAML(MAMLConfig(inner_lr=0.3, test_inner_steps=1), backbone(), WAY, CPU)
    e = episode(0)
    model = maml.adapt(e.support_x, e.support_y)
    theta = named_params(maml.net)
    loss = F.cross_entropy(functional_call(maml.net, theta, (e.support_x,)), e.support_y)
    grads = torch.autograd.grad(loss, list(theta.values()))
    for (name, p), g in zip(theta.items(), grads, strict=True):
        torch.testing.assert_close(model.params[name], p - 0.3 * g, rtol=0, atol=1e-12)


def meta_loss(net: nn.Module, params: dict, e: Episode, lr: float) -> torch.Tensor:
    """MAML's objective written out: L_query(theta - lr * grad L_support(theta)), by hand."""
    support = F.cross_entropy(functional_call(net, params, (e.support_x,)), e.support_y)
    grads = torch.autograd.grad(support, list(params.values()), create_graph=True)
    fast = {k: p - lr * g for (k, p), g in zip(params.items(), grads, strict=True)}
    return F.cross_entropy(functional_call(net, fast, (e.query_x,)), e.query_y)


def test_second_order_meta_gradient_matches_finite_differences() -> None:
    cfg = MAMLConfig(inner_lr=0.4)
    maml, e = MAML(cfg, backbone(), WAY, CPU), episode(1, shot=2)
    theta = named_params(maml.net)
    ours = torch.autograd.grad(maml_task_loss(maml.net, theta, e, cfg), list(theta.values()))
    first = torch.autograd.grad(maml_task_loss(maml.net, theta, e, dataclasses.replace(cfg, first_order=True)),
                                list(theta.values()))
    gen, h = torch.Generator().manual_seed(0), 1e-7  # small: max-pool and ReLU kinks
    for _ in range(4):
        direction = {k: torch.randn(v.shape, generator=gen) for k, v in theta.items()}
        up = meta_loss(maml.net, {k: (v.detach() + h * direction[k]).requires_grad_() for k, v in theta.items()},
                       e, 0.4)
        down = meta_loss(maml.net, {k: (v.detach() - h * direction[k]).requires_grad_() for k, v in theta.items()},
                         e, 0.4)
        numeric = float((up - down).detach()) / (2 * h)
        analytic = sum(float((g * direction[k]).sum()) for k, g in zip(theta, ours, strict=True))
        first_order = sum(float((g * direction[k]).sum()) for k, g in zip(theta, first, strict=True))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)
        assert abs(first_order - numeric) > 1e-3 * abs(numeric)  # the second-order terms matter here


def test_first_order_meta_gradient_is_the_query_gradient_at_the_adapted_weights() -> None:
    cfg = MAMLConfig(inner_lr=0.4, inner_steps=2, first_order=True)
    maml, e = MAML(cfg, backbone(), WAY, CPU), episode(2)
    theta = named_params(maml.net)
    ours = torch.autograd.grad(maml_task_loss(maml.net, theta, e, cfg), list(theta.values()))
    phi = {k: v.detach().requires_grad_() for k, v in theta.items()}
    for _ in range(2):
        loss = F.cross_entropy(functional_call(maml.net, phi, (e.support_x,)), e.support_y)
        phi = {k: (p - 0.4 * g).detach().requires_grad_()
               for (k, p), g in zip(phi.items(), torch.autograd.grad(loss, list(phi.values())), strict=True)}
    query = F.cross_entropy(functional_call(maml.net, phi, (e.query_x,)), e.query_y)
    assert max_diff(ours, torch.autograd.grad(query, list(phi.values()))) < 1e-12


@pytest.mark.parametrize("first_order", [False, True])
def test_vmap_and_checkpointed_meta_gradients_equal_the_loop(first_order: bool) -> None:
    cfg = MAMLConfig(inner_steps=2, first_order=first_order)
    maml, episodes = MAML(cfg, backbone(), WAY, CPU), [episode(s) for s in range(3)]
    theta = named_params(maml.net)
    loop = torch.stack([maml_task_loss(maml.net, theta, e, cfg) for e in episodes]).mean()
    batched = vmap_meta_loss(maml.net, theta, stack_episodes(episodes), cfg)
    ckpt_cfg = dataclasses.replace(cfg, checkpoint_inner=True)
    checkpointed = torch.stack([maml_task_loss(maml.net, theta, e, ckpt_cfg) for e in episodes]).mean()
    reference = torch.autograd.grad(loop, list(theta.values()))
    assert max_diff(reference, torch.autograd.grad(batched, list(theta.values()))) < 1e-10
    assert max_diff(reference, torch.autograd.grad(checkpointed, list(theta.values()))) < 1e-12


def test_train_step_runs_the_vmap_path_when_asked() -> None:
    maml = MAML(MAMLConfig(task_batching="vmap"), backbone(), WAY, CPU)
    assert maml.vmap_tasks([episode(0), episode(1)]) is not None
    assert maml.vmap_tasks([episode(0), episode(1, shot=2)]) is None  # unequal shapes: loop
    assert math.isfinite(maml.train_step([episode(0), episode(1)])["loss"])


@pytest.mark.parametrize("bn_stats", ["batch", "running"])
@pytest.mark.parametrize("training", [True, False])
def test_fast_forward_equals_functional_call(bn_stats: str, training: bool) -> None:
    net = nn.Sequential(backbone(bn_stats), nn.Linear(4, WAY)).train(training)
    assert layer_chain(net) is not None
    x, params = episode(3).query_x, named_params(net)
    ours_buffers, reference_buffers = buffers_copy(net), buffers_copy(net)
    ours = fast_forward(net, {**params, **ours_buffers}, x)
    reference = functional_call(net, {**params, **reference_buffers}, (x,))
    assert torch.equal(ours, reference)
    assert max_diff(torch.autograd.grad(ours.square().sum(), list(params.values())),
                    torch.autograd.grad(reference.square().sum(), list(params.values()))) < 1e-12
    for name, value in reference_buffers.items():
        assert torch.equal(ours_buffers[name], value), name


def test_fast_forward_falls_back_for_networks_that_are_not_chains() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.linear(x)

    net, x = Residual(), torch.randn(2, 3)
    assert layer_chain(net) is None
    assert torch.equal(fast_forward(net, named_params(net), x), net(x))


def test_inner_loop_through_fast_forward_equals_plain_sgd() -> None:
    net, e = nn.Sequential(backbone(), nn.Linear(4, WAY)), episode(4)
    theta = named_params(net)
    fast = fast_inner_loop(net, theta, {}, e.support_x, e.support_y, 3, 0.2, create_graph=False)
    by_hand = dict(theta)
    for _ in range(3):
        loss = F.cross_entropy(functional_call(net, by_hand, (e.support_x,)), e.support_y)
        grads = torch.autograd.grad(loss, list(by_hand.values()))
        by_hand = {k: p - 0.2 * g for (k, p), g in zip(by_hand.items(), grads, strict=True)}
    assert max_diff(list(fast.values()), list(by_hand.values())) < 1e-12


# -------------------------------------------------------------------------------------- Reptile


def test_reptile_outer_update_interpolates_toward_the_adapted_weights() -> None:
    cfg = ReptileConfig(outer_step=0.5, anneal_steps=4, inner_steps=3)
    reptile, episodes = Reptile(cfg, backbone(), WAY, CPU), [episode(5), episode(6)]
    for step, eps in enumerate([0.5, 0.5 * (1 - 1 / 4)]):  # linear annealing of the outer step
        theta = {k: v.detach().clone() for k, v in named_params(reptile.net).items()}
        adapted = [reptile.task_weights(e)[0] for e in episodes]
        reptile.train_step(episodes)
        for name, after in named_params(reptile.net).items():
            mean_phi = (adapted[0][name] + adapted[1][name]) / 2
            expected = theta[name] + eps * (mean_phi - theta[name])
            torch.testing.assert_close(after.detach(), expected, rtol=0, atol=1e-12, msg=f"step {step} {name}")
        assert any(not torch.equal(theta[k], v) for k, v in named_params(reptile.net).items())


def test_reptile_functional_adam_equals_torch_adam() -> None:
    gen = torch.Generator().manual_seed(0)
    target, start = torch.randn(7, generator=gen), torch.randn(7, generator=gen)
    reference = start.clone().requires_grad_()
    optimizer = torch.optim.Adam([reference], lr=1e-2, betas=(0.0, 0.999))
    params, state = {"p": start.clone()}, {"m": {"p": torch.zeros(7)}, "v": {"p": torch.zeros(7)}}
    for t in range(1, 6):
        optimizer.zero_grad()
        (reference - target).pow(2).sum().backward()
        optimizer.step()
        params, state = adam_step(params, {"p": 2 * (params["p"] - target)}, state, t, 1e-2, (0.0, 0.999))
    torch.testing.assert_close(params["p"], reference.detach(), rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------- ANIL


def test_anil_inner_loop_changes_only_the_head() -> None:
    anil, e = ANIL(ANILConfig(), backbone(), WAY, CPU), episode(7)
    adapted = anil.adapt(e.support_x, e.support_y).params
    for name, theta in named_params(anil.net).items():
        same = torch.equal(adapted[name], theta.detach())
        assert same != name.startswith("1."), name  # backbone untouched, head moved
    anil.optimizer.zero_grad()
    anil.episode_loss(e).backward()  # the outer loop still meta-learns the backbone
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in anil.net[0].parameters() if p.dim() > 1)


# ---------------------------------------------------------------------------------------- MAML++


@pytest.mark.parametrize("steps", [1, 2, 5, 8])
@pytest.mark.parametrize("msl_epochs", [3, 10])
def test_msl_weights_sum_to_one_and_anneal_toward_the_last_step(steps: int, msl_epochs: int) -> None:
    history = [multi_step_weights(steps, epoch, msl_epochs) for epoch in range(msl_epochs + 3)]
    assert history[0] == pytest.approx([1 / steps] * steps)
    assert history[-1] == [0.0] * (steps - 1) + [1.0]
    for before, after in zip(history, history[1:], strict=False):
        assert sum(before) == pytest.approx(1.0, abs=1e-12) and min(before) >= 0
        assert after[-1] >= before[-1] and all(a <= b for a, b in zip(after[:-1], before[:-1], strict=True))
    if steps > 1:
        assert history[msl_epochs - 1][-1] > history[0][-1]


def test_lslr_rates_are_per_layer_per_step_and_learned() -> None:
    cfg = MAMLPlusPlusConfig(inner_steps=3, msl_epochs=5)
    model = MAMLPlusPlus(cfg, backbone("running"), WAY, CPU)
    batch_norm = {n for n, m in model.net.named_modules() if isinstance(m, nn.BatchNorm2d)}
    adapted = [n for n, _ in model.net.named_parameters() if n.rsplit(".", 1)[0] not in batch_norm]
    assert model.per_step.adapted == adapted  # convs and head; batch-norm weights are per step instead
    assert [tuple(r.shape) for r in model.per_step.rates] == [(3,)] * len(adapted)
    before = [r.detach().clone() for r in model.per_step.rates]
    model.optimizer.zero_grad()
    weights = multi_step_weights(3, 0, 5)
    theta = {k: v for k, v in named_params(model.net).items() if k in adapted}
    e = episode(8)
    model.unroll(e.support_x, e.support_y, theta, False, (e.query_x, e.query_y, weights))[1].backward()
    # Conv biases feed batch norm, which removes them: their gradient (and their rates') is zero.
    informative = [i for i, name in enumerate(adapted) if not (name.startswith("0.") and name.endswith("bias"))]
    rates = model.per_step.rates
    assert all(bool((rates[i].grad.abs() > 1e-6).all()) for i in informative)  # every layer, every step
    model.optimizer.step()
    assert all(bool((rates[i] != before[i]).all()) for i in informative)


def test_per_step_batch_norm_sets_are_separate_and_adapt_leaves_them_alone() -> None:
    model = MAMLPlusPlus(MAMLPlusPlusConfig(inner_steps=3), backbone("running"), WAY, CPU)
    model.train_step([episode(9)])  # epoch 0: first order, multi-step loss
    means = model.per_step.mean0
    assert means.shape == (3, 4) and not torch.equal(means[0], means[1]) and not torch.equal(means[1], means[2])
    weights = model.per_step.weights[0]
    assert weights.shape == (3, 4) and weights.grad is not None and bool((weights.grad != 0).any(dim=1).all())
    before = means.clone()
    model.adapt(episode(10).support_x, episode(10).support_y)
    assert torch.equal(before, model.per_step.mean0)


def test_derivative_order_annealing_and_cosine_meta_lr(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = MAMLPlusPlusConfig(inner_steps=1, first_order_epochs=2, iters_per_epoch=2, total_epochs=3, meta_lr=1e-2,
                             min_meta_lr=1e-4)
    model, orders = MAMLPlusPlus(cfg, backbone(), WAY, CPU), []
    unroll = model.unroll
    monkeypatch.setattr(model, "unroll", lambda *a, **k: (orders.append(a[3]), unroll(*a, **k))[1])
    lrs = [model.train_step([episode(11)])["lr"] for _ in range(7)]
    assert orders == [False] * 4 + [True] * 3
    expected = [1e-4 + (1e-2 - 1e-4) * 0.5 * (1 + math.cos(math.pi * min(t, 6) / 6)) for t in range(1, 8)]
    assert lrs == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------------------- ProMAML


def quadratic(seed: int = 0, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=gen)
    return m @ m.T + 0.1 * torch.eye(n), torch.randn(n, generator=gen)


def test_cg_implicit_gradient_matches_the_exact_inverse() -> None:
    a, b = quadratic()
    lam, g = 2.0, torch.randn(6, generator=torch.Generator().manual_seed(1))

    def loss(p: dict) -> torch.Tensor:
        return 0.5 * p["w"] @ a @ p["w"] + b @ p["w"]

    exact = torch.linalg.solve(torch.eye(6) + a / lam, g)
    (ours,) = implicit_meta_grad(loss, {"w": torch.randn(6)}, [g], lam, steps=6)
    torch.testing.assert_close(ours, exact, rtol=1e-8, atol=1e-10)
    (partial,) = implicit_meta_grad(loss, {"w": torch.randn(6)}, [g], lam, steps=2)
    assert float((partial - exact).norm()) > 1e-6  # two steps are not enough: the test can fail
    (solved,) = conjugate_gradient(lambda v: [v[0] + a @ v[0] / lam], [g], 6)
    torch.testing.assert_close(solved, exact, rtol=1e-8, atol=1e-10)


def test_proximal_solution_satisfies_the_stationarity_condition() -> None:
    a, b = quadratic(2)
    lam, theta = 2.0, {"w": torch.randn(6, generator=torch.Generator().manual_seed(3))}

    def loss(p: dict) -> torch.Tensor:
        return 0.5 * p["w"] @ a @ p["w"] + b @ p["w"]

    lr = 1.0 / float(torch.linalg.eigvalsh(a).max() + lam)
    phi = proximal_solve(loss, {"w": theta["w"].requires_grad_()}, lam, lr, steps=3000, create_graph=False)["w"]
    torch.testing.assert_close(a @ phi + b + lam * (phi - theta["w"]), torch.zeros(6), rtol=0, atol=1e-8)
    torch.testing.assert_close(phi, torch.linalg.solve(a + lam * torch.eye(6), lam * theta["w"] - b))


def smooth_promaml(hidden: int) -> ProMAML:
    """ProMAML on a tanh MLP: smooth, so gradient descent reaches stationarity to 1e-12 (on
    conv4, ReLU and max-pool kinks leave plain gradient descent cycling at a finite residual)."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, hidden), nn.Tanh())
    mlp.out_features = hidden  # type: ignore[assignment]
    model = ProMAML(ProMAMLConfig(), mlp, WAY, CPU)
    model.net.train()
    return model


def norm(tensors: Tensors) -> float:
    return math.sqrt(sum(float(t.detach().square().sum()) for t in tensors))


def test_promaml_inner_solution_on_a_network_is_stationary() -> None:
    model, e = smooth_promaml(8), episode(12, shot=2)
    lam, loss_fn = model.config.prior_precision, model.support_loss(e.support_x, e.support_y, {})
    theta = {k: v.detach().requires_grad_() for k, v in named_params(model.net).items()}
    phi = proximal_solve(loss_fn, theta, lam, model.config.inner_lr, 300, create_graph=False)
    phi = {k: v.detach().requires_grad_() for k, v in phi.items()}
    grads = torch.autograd.grad(loss_fn(phi), list(phi.values()))
    residual = [g + lam * (phi[k] - theta[k]) for k, g in zip(phi, grads, strict=True)]
    assert norm(residual) < 1e-10 * norm(torch.autograd.grad(loss_fn(theta), list(theta.values())))


def test_promaml_implicit_gradient_on_a_network_matches_a_dense_solve() -> None:
    model, e = smooth_promaml(2), episode(14, shot=2)
    lam, loss_fn = model.config.prior_precision, model.support_loss(e.support_x, e.support_y, {})
    theta = {k: v.detach().requires_grad_() for k, v in named_params(model.net).items()}
    phi = {k: v.detach() for k, v in proximal_solve(loss_fn, theta, lam, 0.1, 300, False).items()}
    shapes = {k: v.shape for k, v in phi.items()}

    def flat_loss(flat: torch.Tensor) -> torch.Tensor:
        pieces = flat.split([size.numel() for size in shapes.values()])
        return loss_fn({k: piece.reshape(shapes[k]) for k, piece in zip(shapes, pieces, strict=True)})

    hessian = torch.autograd.functional.hessian(flat_loss, torch.cat([v.reshape(-1) for v in phi.values()]))
    system = torch.eye(len(hessian)) + hessian / lam
    assert float(torch.linalg.eigvalsh(system).min()) > 0  # phi is a minimum of the proximal objective
    g = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes.values())]
    exact = torch.linalg.solve(system, torch.cat([t.reshape(-1) for t in g]))
    ours = implicit_meta_grad(loss_fn, phi, g, lam, steps=80)
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in ours]), exact, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("implicit", [False, True])
def test_promaml_train_step_uses_the_stated_meta_gradient(implicit: bool) -> None:
    cfg = ProMAMLConfig(implicit=implicit, inner_steps=3)
    model, e = ProMAML(cfg, backbone(), WAY, CPU), episode(13)
    model.net.train()
    grads, _ = model.task_meta_grad(e)
    theta = {k: v.detach().requires_grad_() for k, v in named_params(model.net).items()}
    loss_fn = model.support_loss(e.support_x, e.support_y, {})
    phi = {k: v.detach().requires_grad_()
           for k, v in proximal_solve(loss_fn, theta, cfg.prior_precision, cfg.inner_lr, 3, False).items()}
    query = list(torch.autograd.grad(F.cross_entropy(fast_forward(model.net, phi, e.query_x), e.query_y),
                                     list(phi.values())))
    if implicit:
        expected = implicit_meta_grad(loss_fn, phi, query, cfg.prior_precision, cfg.cg_steps)
        assert max_diff(grads, expected) < 1e-12 and max_diff(grads, query) > 1e-6
    else:
        assert max_diff(grads, query) < 1e-12
