"""Baseline and Baseline++ (Chen, Liu, Kira, Wang & Huang, ICLR 2019, "A Closer Look at Few-shot
Classification", arXiv:1904.04232).

Training is plain supervised pre-training of backbone + classifier over ALL training classes;
at test time the backbone is frozen and a NEW classifier for the task's classes is trained on
the support features (Sec. 3.1). Baseline uses a linear classifier; Baseline++ a cosine
classifier with a fixed scale (Sec. 3.2) and, as in the reference code, a learnable norm per class.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import class_means, minimise
from baselines._metric import cosine_logits, paper_cosine_scale
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import bounded, count

Head = dict[str, torch.Tensor]


@dataclass(frozen=True)
class FineTuneConfig:
    """Attributes:
        classifier: ``"linear"`` (Baseline) or ``"cosine"`` (Baseline++).
        num_classes: rows of the pre-training classifier; must exceed every training class id
            (``Episode.classes`` holds data-set label ids; the reference code's ``num_classes``
            is 200, and 4112 for Omniglot). 4112 covers every shipped data set: loaders put the
            training classes first (Omniglot 0..4111, miniImageNet 0..63) and glyphs' training
            ids stay below 2139; 64 suffices for miniImageNet.
        lr: Adam learning rate of pre-training (paper: 1e-3).
        cosine_scale: scale of the cosine classifier; 0 applies the reference code's rule
            (2 for at most 200 classes, 10 beyond), separately for pre-training and fine-tuning.
        epochs: passes over the support set when fine-tuning (reference code: 100).
        batch_size: fine-tuning mini-batch (reference code: 4).
        finetune_lr, momentum, dampening, weight_decay: the fine-tuning SGD (reference code:
            0.01, 0.9, 0.9, 1e-3).
        seed: seed of the fine-tuning head's initialisation and batch order (same for every task).
    """

    classifier: Literal["linear", "cosine"] = "linear"
    num_classes: int = count(4112)
    lr: float = 1e-3
    cosine_scale: float = 0.0
    epochs: int = count(100)
    batch_size: int = count(4)
    finetune_lr: float = 0.01
    momentum: float = bounded(0.9, 0, 1)
    dampening: float = bounded(0.9, 0, 1)
    weight_decay: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.num_classes, self.batch_size, self.epochs) < 1:
            raise ValueError("num_classes, batch_size and epochs must be >= 1")


class CosineClassifier(nn.Module):
    """Baseline++'s classifier ``scale * g_c * cos(f, v_c)`` over ``classes`` rows.

    The reference code applies weight norm to a bias-free ``nn.Linear`` fed with normalised
    features, which makes the class-wise norm ``g_c`` a learnable parameter (initialised to
    ``||v_c||``); parameters ``direction`` (v) ``(classes, D)`` and ``norm`` (g) ``(classes,)``.
    A parameter holder: `head_logits` computes the logits from its named parameters.
    """

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        direction = nn.Linear(dim, classes, bias=False).weight.detach()
        self.direction = nn.Parameter(direction)
        self.norm = nn.Parameter(direction.norm(dim=1))


def init_head(dim: int, way: int, cosine: bool, seed: int, like: torch.Tensor) -> Head:
    """PyTorch's ``nn.Linear`` initialisation, drawn from a private generator (never the global RNG)."""
    gen = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(dim)
    weight = (torch.rand(way, dim, generator=gen) * 2 - 1) * bound
    if cosine:
        head = {"direction": weight, "norm": weight.norm(dim=1)}
    else:
        head = {"weight": weight, "bias": (torch.rand(way, generator=gen) * 2 - 1) * bound}
    return {k: v.to(dtype=like.dtype, device=like.device).requires_grad_() for k, v in head.items()}


def head_logits(features: torch.Tensor, head: Head, scale: float) -> torch.Tensor:
    """``(M, D) -> (M, W)``: linear ``f W^T + b``, or ``scale * g * cos(f, v)`` for a cosine head."""
    if "norm" in head:
        return cosine_logits(features, head["direction"], scale) * head["norm"]
    return F.linear(features, head["weight"], head["bias"])


def sgd_momentum_step(head: Head, buffers: Head | None, loss: torch.Tensor, cfg: FineTuneConfig,
                      create_graph: bool) -> tuple[Head, Head]:
    """One step of ``torch.optim.SGD`` (momentum, dampening, weight decay) written functionally,
    so that the fine-tuned head can stay a differentiable function of the support features."""
    grads = torch.autograd.grad(loss, list(head.values()), create_graph=create_graph)
    new_head, new_buffers = {}, {}
    for (name, p), g in zip(head.items(), grads, strict=True):
        g = g + cfg.weight_decay * p
        buf = g if buffers is None else cfg.momentum * buffers[name] + (1 - cfg.dampening) * g
        p = p - cfg.finetune_lr * buf
        if not create_graph:
            buf, p = buf.detach(), p.detach().requires_grad_()
        new_head[name], new_buffers[name] = p, buf
    return new_head, new_buffers


def finetune_head(features: torch.Tensor, labels: torch.Tensor, way: int, cfg: FineTuneConfig) -> Head:
    """Train a new head on support ``features (N, D)`` for ``cfg.epochs`` shuffled passes.

    Differentiable w.r.t. ``features`` when they require grad (the whole loop is unrolled);
    otherwise every step is detached. Deterministic: the order comes from ``cfg.seed``.
    """
    cosine = cfg.classifier == "cosine"
    scale = cfg.cosine_scale or paper_cosine_scale(way)
    head = init_head(features.shape[1], way, cosine, cfg.seed, features)
    n = features.shape[0]
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    order = torch.stack([torch.randperm(n, generator=gen) for _ in range(cfg.epochs)]).to(features.device)
    create_graph = features.requires_grad
    buffers: Head | None = None
    with torch.enable_grad():
        for epoch in range(cfg.epochs):
            for start in range(0, n, cfg.batch_size):
                batch = order[epoch, start:start + cfg.batch_size]
                loss = F.cross_entropy(head_logits(features[batch], head, scale), labels[batch])
                head, buffers = sgd_momentum_step(head, buffers, loss, cfg, create_graph)
    return head if create_graph else {k: v.detach() for k, v in head.items()}


class FineTunedClassifier(TaskModel):
    """Query ``(M, C, H, W)`` -> logits ``(M, way)`` of the fine-tuned head on frozen features."""

    def __init__(self, backbone: nn.Module, head: Head, scale: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.scale = scale
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return head_logits(self.backbone(x), self.head, self.scale)


class FineTune(Baseline):
    """Baseline / Baseline++: pre-train on all training classes, fine-tune a new head per task.

    Pre-training: the support and query images of every episode of a ``train_step`` form one
    supervised mini-batch ``(B, C, H, W)`` labelled with GLOBAL class ids ``(B,)`` (the data set's
    label ids, from the sampler's ``Episode.classes (way,)``: ``classes[y]``), classified over ``num_classes``
    rows by a linear or cosine classifier, with Adam. Adaptation: frozen backbone features of the
    support ``(W * K, D)``; a new ``(W, D)`` head trained by SGD; queries -> ``(M, W)`` logits.

    Deviations: batches are the sampler's class-balanced episodes rather than uniform batches of
    16, without the paper's data augmentation. Fine-tuning follows the reference code (100 epochs
    over the support set in batches of 4, SGD with dampening 0.9), with a fixed-seed head
    initialisation and batch order, so adaptation is deterministic. When the support requires
    grad the fine-tuning loop is unrolled in full (memory grows with epochs x support size).
    Baseline++'s head has the reference code's learnable class-wise norm (see `CosineClassifier`).
    FALLBACK: episodes built without ``classes`` (None) carry no global labels, so pre-training
    falls back to an episodic proxy, each episode's head being its support class means (linear)
    or their directions (cosine); a warning says so.
    """

    name = "finetune"
    title = "Fine-tuning"
    paper = "Chen et al. 2019, A Closer Look at Few-shot Classification (Baseline, Baseline++)"
    Config = FineTuneConfig
    any_way = True  # pre-trains over num_classes, fits a new n_way head per task: any training way

    def __init__(self, config: FineTuneConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.backbone = backbone.to(device)
        dim, classes = backbone.out_features, config.num_classes
        classifier = CosineClassifier(dim, classes) if config.classifier == "cosine" else nn.Linear(dim, classes)
        self.classifier = classifier.to(device)
        self.pretrain_scale = config.cosine_scale or paper_cosine_scale(config.num_classes)
        self.optimizer = torch.optim.Adam([*self.backbone.parameters(), *self.classifier.parameters()],
                                          lr=config.lr)
        self.warned = False  # the fallback warning is given once per baseline

    def global_batch(self, episodes: list[Episode]) -> tuple[torch.Tensor, torch.Tensor]:
        """All images ``(B, C, H, W)`` and their global class ids ``(B,)``."""
        images, labels = [], []
        for e in episodes:
            classes = e.classes.to(e.support_y.device)  # type: ignore[attr-defined]
            images += [e.support_x, e.query_x]
            labels += [classes[e.support_y], classes[e.query_y]]
        y = torch.cat(labels)
        if int(y.max()) >= self.config.num_classes:
            raise ValueError(f"finetune: a training class id is {int(y.max())} but num_classes is "
                             f"{self.config.num_classes}; set params: {{num_classes: {int(y.max()) + 1}}} or more.")
        return torch.cat(images), y

    def pretrain_loss(self, episodes: list[Episode]) -> torch.Tensor:
        """Cross-entropy over all ``num_classes`` classes (the paper's pre-training)."""
        x, y = self.global_batch(episodes)
        head = dict(self.classifier.named_parameters())
        return F.cross_entropy(head_logits(self.backbone(x), head, self.pretrain_scale), y)

    def episodic_loss(self, episode: Episode) -> torch.Tensor:
        """Fallback without global labels: the head is the support class means (see class doc)."""
        n_support = episode.support_x.shape[0]
        features = self.backbone(torch.cat([episode.support_x, episode.query_x]))
        means = class_means(features[:n_support], episode.support_y, episode.way)
        if self.config.classifier == "linear":
            head = {"weight": means, "bias": features.new_zeros(episode.way)}
        else:
            head = {"direction": means, "norm": features.new_ones(episode.way)}
        scale = self.config.cosine_scale or paper_cosine_scale(episode.way)
        return F.cross_entropy(head_logits(features[n_support:], head, scale), episode.query_y)

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        self.backbone.train()
        if all(getattr(e, "classes", None) is not None for e in episodes):
            loss = self.pretrain_loss(episodes)
        else:
            if not self.warned:
                warnings.warn("finetune: episodes carry no global class ids (`Episode.classes`); pre-training "
                              "falls back to an episodic proxy (see FineTune's docstring).", stacklevel=2)
                self.warned = True
            loss = torch.stack([self.episodic_loss(e) for e in episodes]).mean()
        return minimise(loss, self.optimizer)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        self.backbone.eval()
        with torch.set_grad_enabled(support_x.requires_grad):
            features = self.backbone(support_x)
        head = finetune_head(features, support_y, self.n_way, self.config)
        scale = self.config.cosine_scale or paper_cosine_scale(self.n_way)
        return FineTunedClassifier(self.backbone, head, scale)
