"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS 2016,
arXiv:1606.04080).

A query's label distribution is the attention-weighted sum of the support labels, the attention
being a softmax over cosine similarities of embeddings (eq. 1-2). Optionally, full context
embeddings (FCE, Sec. 2.1.2 and appendix) make the support embeddings depend on the whole
support set (a bidirectional LSTM) and the query embedding attend to it (an attention LSTM
with ``fce_steps`` read steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import episode_mean, minimise
from baselines._metric import matching_log_probs
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import bounded, count


@dataclass(frozen=True)
class MatchingNetConfig:
    """Attributes:
        lr: Adam learning rate (not given in the paper; 1e-3 as in Snell et al.'s re-implementation).
        fce: use full context embeddings (the paper reports both; off is its Omniglot setting).
        fce_steps: read steps ``K`` of the attention LSTM (not given in the paper).
        scale: inverse temperature of the cosine attention (the paper's is 1; see `MatchingNet`).
    """

    lr: float = 1e-3
    fce: bool = False
    fce_steps: int = count(5)
    scale: float = bounded(10.0, above=0)


class FullContextEmbedding(nn.Module):
    """The FCE functions ``g(x_i, S)`` and ``f(x_hat, S)`` of Vinyals et al. (2016), appendix A.

    ``g``: a bidirectional LSTM over the support embeddings plus a skip connection,
    ``g_i = h_fwd_i + h_bwd_i + g'(x_i)``. ``f``: ``K`` steps of an LSTM whose state is read with
    content attention over ``g(S)``, ``h_k = LSTM(f'(x_hat), [h_{k-1}, r_{k-1}], c_{k-1}) + f'(x_hat)``.
    The paper's LSTM hidden state ``[h, r]`` enters the gates linearly, so it is implemented as an
    ``LSTMCell`` whose input is ``[f'(x_hat), r]`` and whose hidden state is ``h`` (same function).
    """

    def __init__(self, dim: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.support_lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.query_cell = nn.LSTMCell(2 * dim, dim)

    def support(self, g: torch.Tensor) -> torch.Tensor:
        """``g' (N, D) -> g (N, D)``, the support set read as one sequence in its given order."""
        out, _ = self.support_lstm(g[None])  # (1, N, 2D)
        forward, backward = out[0].chunk(2, dim=-1)
        return forward + backward + g

    def query(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``f' (M, D)`` attending to ``g (N, D)`` -> ``f (M, D)``; each query independently."""
        h = torch.zeros_like(f)
        c = torch.zeros_like(f)
        read = torch.zeros_like(f)
        for _ in range(self.steps):
            h_hat, c = self.query_cell(torch.cat([f, read], dim=-1), (h, c))
            h = h_hat + f
            read = (h @ g.t()).softmax(dim=-1) @ g
        return h


class MatchingClassifier(TaskModel):
    """Query ``(M, C, H, W)`` -> log attention-weighted label distribution ``(M, way)``."""

    def __init__(self, backbone: nn.Module, fce: FullContextEmbedding | None, support: torch.Tensor,
                 support_y: torch.Tensor, way: int, scale: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.scale = scale
        self.fce = fce
        self.support = support  # (N, D): g(S), already contextualised when FCE is on
        self.support_y = support_y
        self.way = way
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        queries = self.backbone(x)
        if self.fce is not None:
            queries = self.fce.query(queries, self.support)
        return matching_log_probs(queries, self.support, self.support_y, self.way, self.scale)


class MatchingNet(Baseline):
    """Matching Networks with cosine attention, optionally with full context embeddings.

    Shapes: support ``(W * K, C, H, W)`` -> ``g(S) (W * K, D)``; query ``(M, C, H, W)`` ->
    ``f (M, D)`` -> attention ``(M, W * K)`` -> logits ``(M, W)`` = log label distribution.
    Training minimises the query negative log-likelihood over the meta-batch with Adam. The
    embedding functions ``f`` and ``g`` share the backbone, as in the paper.

    Deviations: the paper does not give the optimiser settings or ``K``; Adam at 1e-3 and
    ``K = 5`` are used. The cosine similarities are multiplied by ``scale`` (10) before the
    softmax; the paper's attention has no temperature (``scale: 1``). Cosines lie in [-1, 1]
    ([0, 1] for ReLU features), so without it the attention stays near uniform: at 20-way
    1-shot a query's probability of its class is at most ``e / (e + 19) = 0.125`` and the
    gradient through the softmax is small: at 20-way a user's omniglot-minimal run reached
    8.6% (chance 5%). `benchmarks/matching_scale.py` measures validation accuracy at 20-way for
    both scales side by side. With FCE the support order matters (the sampler's
    class-major order is used, as any fixed order would be in the paper).
    """

    name = "matchingnet"
    title = "Matching Nets"
    paper = "Vinyals et al. 2016, Matching Networks for One Shot Learning"
    Config = MatchingNetConfig
    any_way = True  # attention over the support set: any way

    def __init__(self, config: MatchingNetConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.backbone = backbone.to(device)
        dim = backbone.out_features
        self.fce = FullContextEmbedding(dim, config.fce_steps).to(device) if config.fce else None
        params = list(self.backbone.parameters()) + (list(self.fce.parameters()) if self.fce else [])
        self.optimizer = torch.optim.Adam(params, lr=config.lr)

    def episode_loss(self, episode: Episode) -> torch.Tensor:
        n_support = episode.support_x.shape[0]
        features = self.backbone(torch.cat([episode.support_x, episode.query_x]))
        support, queries = features[:n_support], features[n_support:]
        if self.fce is not None:
            support = self.fce.support(support)
            queries = self.fce.query(queries, support)
        logits = matching_log_probs(queries, support, episode.support_y, episode.way, self.config.scale)
        return F.nll_loss(logits, episode.query_y)

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.backbone.train()
        if self.fce is not None:
            self.fce.train()
        loss = episode_mean([self.episode_loss(e) for e in episodes])
        return minimise(loss, self.optimizer)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.backbone.eval()
        if self.fce is not None:
            self.fce.eval()
        with torch.set_grad_enabled(support_x.requires_grad):
            support = self.backbone(support_x)
            if self.fce is not None:
                support = self.fce.support(support)
        return MatchingClassifier(self.backbone, self.fce, support, support_y, self.n_way, self.config.scale)
