"""Oracle tests for the metric and closed-form baselines and the ResNet-12 backbone.

Each test compares a baseline's math with an independent hand computation (matching attention
and logits, R2-D2's ridge solution in the primal form, SGD with momentum) or checks a property
the paper states (relation scores in [0, 1], a fine-tuned head fits separable support data).
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines._metric import matching_attention, ridge_woodbury
from baselines.finetune import FineTune, FineTuneConfig, sgd_momentum_step
from baselines.matchingnet import MatchingNet, MatchingNetConfig
from baselines.r2d2 import R2D2, R2D2Config
from baselines.relationnet import RelationNet, RelationNetConfig, feature_maps, relation_logits
from bench.backbones import build_backbone
from bench.seeding import generator, torch_rng

CPU = torch.device("cpu")


class Identity(nn.Module):
    """A backbone whose features are the flattened pixels (one unit gain, so optimisers have a parameter)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))
        self.out_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) * self.gain


def images(gen: torch.Generator, n: int, dim: int = 4, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(n, 1, 1, dim, generator=gen, dtype=dtype)


def test_matching_attention_sums_to_one_over_the_support_set() -> None:
    gen = generator(0)
    attention = matching_attention(torch.randn(7, 16, generator=gen), torch.randn(10, 16, generator=gen))
    assert attention.shape == (7, 10)
    assert (attention > 0).all()
    torch.testing.assert_close(attention.sum(-1), torch.ones(7))


def hand_matching_logits(query: list[float], support: list[list[float]], labels: list[int], way: int,
                         scale: float) -> list[float]:
    """Vinyals et al. (2016) eq. 1-2 with Python floats: log sum_i softmax_i(scale * cos) * y_i."""
    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    weights = [math.exp(scale * cos(query, s)) for s in support]
    total = sum(weights)
    return [math.log(sum(w for w, y in zip(weights, labels, strict=True) if y == c) / total) for c in range(way)]


@pytest.mark.parametrize("scale", [1.0, 10.0])  # the paper's attention, and the default
def test_matching_logits_equal_a_hand_computation_on_an_identity_backbone(scale: float) -> None:
    gen = generator(1)
    support_x, query_x = images(gen, 6, dtype=torch.float64), images(gen, 3, dtype=torch.float64)
    support_y = torch.tensor([0, 1, 2, 0, 1, 2])
    baseline = MatchingNet(MatchingNetConfig(scale=scale), Identity(4).double(), 3, CPU)
    logits = baseline.adapt(support_x, support_y)(query_x)
    expected = [hand_matching_logits(q.flatten().tolist(), support_x.flatten(1).tolist(), support_y.tolist(), 3,
                                     scale) for q in query_x]
    torch.testing.assert_close(logits, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(3, dtype=torch.float64))


def test_matching_fce_gives_log_distributions_and_trains() -> None:
    with torch_rng(0):
        baseline = MatchingNet(MatchingNetConfig(fce=True), build_backbone("conv4", {}, 1, 28), 3, CPU)
    gen = generator(2)
    support_x, query_x = torch.rand(6, 1, 28, 28, generator=gen), torch.rand(4, 1, 28, 28, generator=gen)
    support_y = torch.tensor([0, 1, 2, 0, 1, 2])
    episode = SimpleNamespace(support_x=support_x, support_y=support_y, query_x=query_x,
                              query_y=torch.tensor([0, 1, 2, 0]), way=3)
    before = copy.deepcopy(baseline.fce.state_dict())
    assert math.isfinite(baseline.train_step([episode])["loss"])
    assert any(not torch.equal(v, baseline.fce.state_dict()[k]) for k, v in before.items())
    logits = baseline.adapt(support_x, support_y)(query_x)
    assert logits.shape == (4, 3)
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(4))


def test_ridge_woodbury_equals_the_primal_solution() -> None:
    gen = generator(3)
    x = torch.randn(5, 12, generator=gen, dtype=torch.float64)
    y = F.one_hot(torch.tensor([0, 1, 2, 3, 4]), 5).double()
    lam = 0.7
    primal = torch.linalg.solve(x.t() @ x + lam * torch.eye(12, dtype=torch.float64), x.t() @ y)
    torch.testing.assert_close(ridge_woodbury(x, y, lam), primal)


def test_r2d2_logits_equal_the_primal_ridge_solution_with_bias_and_adjust_layer() -> None:
    gen = generator(4)
    support_x, query_x = images(gen, 10, dim=6, dtype=torch.float64), images(gen, 4, dim=6, dtype=torch.float64)
    support_y = torch.arange(5).repeat(2)
    baseline = R2D2(R2D2Config(init_lambda=0.3, init_scale=2.5), Identity(6).double(), 5, CPU)
    with torch.no_grad():
        baseline.head.bias.fill_(0.25)
    logits = baseline.adapt(support_x, support_y)(query_x)
    x = torch.cat([support_x.flatten(1), torch.ones(10, 1, dtype=torch.float64)], 1)  # (N, D + 1)
    y = F.one_hot(support_y, 5).double()
    penalty = 10 * 0.3  # N * lambda: the reference code's 1/sqrt(N) normalisation
    w = torch.linalg.solve(x.t() @ x + penalty * torch.eye(7, dtype=torch.float64), x.t() @ y)
    q = torch.cat([query_x.flatten(1), torch.ones(4, 1, dtype=torch.float64)], 1)
    torch.testing.assert_close(logits, 2.5 * q @ w + 0.25)


def test_r2d2_learns_lambda_and_scale() -> None:
    with torch_rng(0):
        baseline = R2D2(R2D2Config(), build_backbone("conv4", {}, 1, 28), 3, CPU)
    gen = generator(5)
    episode = SimpleNamespace(support_x=torch.rand(3, 1, 28, 28, generator=gen), support_y=torch.arange(3),
                              query_x=torch.rand(6, 1, 28, 28, generator=gen), query_y=torch.arange(3).repeat(2),
                              way=3)
    lam, scale = baseline.head.log_lambda.item(), baseline.head.scale.item()
    baseline.train_step([episode])
    assert baseline.head.log_lambda.item() != lam and baseline.head.scale.item() != scale


@pytest.mark.parametrize(("backbone", "params", "size", "maps"), [
    ("conv4", {}, 28, (64, 7, 7)),
    ("resnet12", {"channels": [8, 8, 8, 16]}, 28, (16, 7, 7)),
    ("conv4", {"hidden": 8}, 84, (8, 21, 21)),
])
def test_relation_scores_are_in_unit_interval_with_shape_queries_by_way(backbone: str, params: dict, size: int,
                                                                       maps: tuple[int, int, int]) -> None:
    with torch_rng(0):
        baseline = RelationNet(RelationNetConfig(), build_backbone(backbone, params, 1, size), 4, CPU)
    gen = generator(6)
    support_x, query_x = torch.rand(8, 1, size, size, generator=gen), torch.rand(5, 1, size, size, generator=gen)
    support_y = torch.arange(4).repeat(2)
    baseline.backbone.eval()
    baseline.relation.eval()
    assert feature_maps(baseline.backbone, query_x).shape == (5, *maps)
    with torch.no_grad():
        classes = feature_maps(baseline.backbone, support_x).view(2, 4, *maps).sum(0)  # K-shot sum per class
        scores = torch.sigmoid(relation_logits(baseline.relation, classes, feature_maps(baseline.backbone, query_x)))
        logits = baseline.adapt(support_x, support_y)(query_x)
    assert scores.shape == (5, 4) and ((scores >= 0) & (scores <= 1)).all()
    torch.testing.assert_close(torch.sigmoid(logits), scores)


def test_functional_sgd_step_equals_torch_sgd_with_momentum_dampening_and_weight_decay() -> None:
    cfg = FineTuneConfig()
    gen = generator(7)
    x, y = torch.randn(8, 5, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    linear = nn.Linear(5, 3)
    head = {k: v.detach().clone().requires_grad_() for k, v in linear.named_parameters()}
    optimizer = torch.optim.SGD(linear.parameters(), lr=cfg.finetune_lr, momentum=cfg.momentum,
                                dampening=cfg.dampening, weight_decay=cfg.weight_decay)
    buffers = None
    for _ in range(4):
        optimizer.zero_grad()
        F.cross_entropy(linear(x), y).backward()
        optimizer.step()
        loss = F.cross_entropy(F.linear(x, head["weight"], head["bias"]), y)
        head, buffers = sgd_momentum_step(head, buffers, loss, cfg, create_graph=False)
    for name, p in linear.named_parameters():
        torch.testing.assert_close(head[name], p.detach())


@pytest.mark.parametrize("classifier", ["linear", "cosine"])
def test_finetune_head_classifies_separable_support_features(classifier: str) -> None:
    way, shot, dim = 5, 3, 10
    gen = generator(8)
    centres = torch.eye(way, dim) * 3 + 0.5
    support_y = torch.arange(way).repeat_interleave(shot)
    support_x = (centres[support_y] + 0.1 * torch.randn(way * shot, dim, generator=gen)).view(-1, 1, 1, dim)
    baseline = FineTune(FineTuneConfig(classifier=classifier, num_classes=10), Identity(dim), way, CPU)
    model = baseline.adapt(support_x, support_y)
    with torch.no_grad():
        assert torch.equal(model(support_x).argmax(-1), support_y)
        again = baseline.adapt(support_x, support_y)(support_x)
    assert torch.equal(again, model(support_x).detach())  # deterministic: no global RNG
    differentiable = baseline.adapt(support_x.clone().requires_grad_(), support_y)(support_x)
    torch.testing.assert_close(differentiable, again)  # the unrolled path computes the same head


def global_episode(gen: torch.Generator, classes: list[int]) -> SimpleNamespace:
    way = len(classes)
    return SimpleNamespace(support_x=torch.rand(way, 1, 28, 28, generator=gen), support_y=torch.arange(way),
                           query_x=torch.rand(way, 1, 28, 28, generator=gen), query_y=torch.arange(way),
                           classes=torch.tensor(classes), way=way)


@pytest.mark.parametrize("classifier", ["linear", "cosine"])
def test_finetune_pretrains_over_global_classes(classifier: str) -> None:
    with torch_rng(0):
        baseline = FineTune(FineTuneConfig(classifier=classifier, num_classes=20),  # type: ignore[arg-type]
                            build_backbone("conv4", {}, 1, 28), 3, CPU)
    gen = generator(9)
    episodes = [global_episode(gen, [4, 11, 17]), global_episode(gen, [2, 11, 19])]
    x = torch.cat([t for e in episodes for t in (e.support_x, e.query_x)])
    y = torch.tensor([4, 11, 17] * 2 + [2, 11, 19] * 2)  # support then query of each episode, global ids
    features = baseline.backbone(x)
    if classifier == "linear":
        logits = baseline.classifier(features)
    else:  # 20 classes: the reference rule's scale 2
        c = baseline.classifier
        logits = 2.0 * F.normalize(features, dim=1) @ F.normalize(c.direction, dim=1).t() * c.norm
    torch.testing.assert_close(baseline.pretrain_loss(episodes), F.cross_entropy(logits, y))
    assert math.isfinite(baseline.train_step(episodes)["loss"])
    with pytest.raises(ValueError, match="num_classes"):
        baseline.train_step([global_episode(gen, [3, 20, 5])])


@pytest.mark.parametrize(("size", "features"), [(84, 16000), (32, 2560)])
def test_resnet12_output_shape(size: int, features: int) -> None:
    with torch_rng(0):
        net = build_backbone("resnet12", {}, 3, size)
    assert net.out_features == features
    with torch.no_grad():
        assert net(torch.rand(2, 3, size, size)).shape == (2, features)


@pytest.mark.parametrize("bn_stats", ["running", "batch"])
def test_resnet12_functional_call_reproduces_forward(bn_stats: str) -> None:
    with torch_rng(0):
        net = build_backbone("resnet12", {"channels": [8, 16, 16, 32], "bn_stats": bn_stats}, 3, 32)
    x = torch.rand(4, 3, 32, 32, generator=generator(10))
    state = {**dict(net.named_parameters()), **{k: v.clone() for k, v in net.named_buffers()}}
    for mode in (True, False):
        net.train(mode)
        torch.testing.assert_close(functional_call(net, state, (x,)), net(x), rtol=0, atol=0)
    fast = {k: v * 1.5 if k.endswith("weight") else v for k, v in state.items()}
    assert not torch.allclose(functional_call(net, fast, (x,)), net(x))  # the weights passed are used
