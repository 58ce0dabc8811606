"""Few-shot math of the metric and closed-form baselines, as pure functions.

Shapes: ``N`` support samples, ``M`` query samples, ``D`` feature dimension, ``W`` the way.
Used by `matchingnet`, `relationnet`, `r2d2` and `finetune`; each function cites its paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_similarities(queries: torch.Tensor, support: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of every query to every support row: ``(M, D), (N, D) -> (M, N)``."""
    return F.normalize(queries, dim=-1, eps=eps) @ F.normalize(support, dim=-1, eps=eps).t()


def matching_attention(queries: torch.Tensor, support: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Attention ``a(x_hat, x_i) = softmax_i(scale * cos(f(x_hat), g(x_i)))`` (Vinyals et al.
    2016, eq. 2, where ``scale`` is 1; see `matchingnet` for why the default there is not).

    Returns:
        ``(M, N)``, each row a distribution over the support set.
    """
    return (scale * cosine_similarities(queries, support)).softmax(dim=-1)


def matching_log_probs(queries: torch.Tensor, support: torch.Tensor, support_y: torch.Tensor,
                       way: int, scale: float = 1.0) -> torch.Tensor:
    """Log of the attention-weighted label distribution ``sum_i a(x_hat, x_i) y_i`` (eq. 1).

    These are valid logits: ``log_softmax`` of a log-distribution is the identity, so
    cross-entropy on them is the paper's negative log-likelihood. ``(M, D), (N, D), (N,) -> (M, W)``.
    """
    probabilities = matching_attention(queries, support, scale) @ F.one_hot(support_y, way).to(queries.dtype)
    # Every class has a support sample and cosine attention is bounded below by e^(-2 scale) / N,
    # so the clamp never binds on real inputs; it only keeps log() finite on degenerate ones.
    return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()


def class_sums(features: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Per-class sum of ``features (N, ...)`` -> ``(W, ...)`` (Sung et al. 2018, K-shot pooling)."""
    one_hot = F.one_hot(labels, way).to(features.dtype)  # (N, W)
    return (one_hot.t() @ features.flatten(1)).view(way, *features.shape[1:])


def with_bias_column(features: torch.Tensor) -> torch.Tensor:
    """``(N, D) -> (N, D + 1)``: a column of ones, so ridge regression also fits a bias."""
    return torch.cat([features, features.new_ones(features.shape[0], 1)], dim=1)


def ridge_woodbury(x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """Ridge-regression weights via the Woodbury identity (Bertinetto et al. 2019, eq. 6).

    ``W = X^T (X X^T + lam I_N)^-1 Y``, which equals the primal ``(X^T X + lam I_D)^-1 X^T Y``
    but solves an ``N x N`` system: cheap when the support set is small and ``D`` is large.
    Differentiable w.r.t. ``x``, ``y`` and ``lam``.

    Args:
        x: support features ``(N, D)``.
        y: regression targets ``(N, W)`` (one-hot labels).
        lam: the ridge penalty, a positive scalar.

    Returns:
        ``(D, W)``.
    """
    gram = x @ x.t()
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return x.t() @ torch.linalg.solve(gram + lam * eye, y)


def cosine_logits(features: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    """Cosine classifier ``scale * cos(f, w_c)`` (Chen et al. 2019, Baseline++): ``(M, D), (W, D) -> (M, W)``."""
    return scale * cosine_similarities(features, weight, eps=1e-5)


def paper_cosine_scale(classes: int) -> float:
    """Chen et al.'s reference code: scale 2 for at most 200 classes, 10 beyond."""
    return 2.0 if classes <= 200 else 10.0
