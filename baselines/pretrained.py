"""A model trained elsewhere, evaluated as it is: frozen features and a head built per task.

No meta-training: the backbone (a registered one with a ``weights`` file, or a researcher's
own network through the ``module`` backbone) is used as given, the way RobustBench evaluates a
submitted model. Heads:

* ``prototype``: nearest class mean, as Prototypical Networks classify (Snell et al. 2017):
  the same code as `baselines.protonet`, so a ProtoNet's exported backbone gives the ProtoNet
  row's accuracies exactly.
* ``linear``: a linear probe fitted per task in closed form, ridge regression of one-hot
  targets on the features with a bias (Bertinetto et al. 2019's base learner, without its
  learnt scale: a frozen model has nothing to learn it from; the penalty is relative to the
  features' scale, which a learnt lambda would otherwise absorb). Differentiable in the support
  set, so support attacks apply.
* ``model``: the network's own ``adapt(support_x, support_y)``, returning a module that maps
  query images to logits ``(N, way)`` (a task-model factory).
* ``auto`` (default): ``model`` when the network has an ``adapt`` method, else ``prototype``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from baselines._metric import ridge_woodbury, with_bias_column
from baselines.protonet import prototype_classifier
from bench.baseline import Baseline, TaskModel
from bench.data.episodes import Episode
from bench.fields import bounded
from bench.model_backbone import ModuleBackbone

Head = Literal["auto", "prototype", "linear", "model"]


@dataclass(frozen=True)
class PretrainedConfig:
    """Attributes:
        head: how a task's classifier is built (module docstring).
        ridge_lambda: the linear probe's ridge penalty per support sample, relative to the
            features' mean squared norm (the penalty is ``N * ridge_lambda * mean ||[f(x), 1]||^2``
            for ``N`` support images: comparable across shots and feature scales).
    """

    head: Head = "auto"
    ridge_lambda: float = bounded(0.01, above=0)


class LinearProbe(TaskModel):
    """Query ``(M, C, H, W)`` -> ``[f(x), 1] W`` ``(M, way)`` with ridge weights ``W (D + 1, way)``."""

    def __init__(self, backbone: nn.Module, weights: torch.Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.weights = weights
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return with_bias_column(self.backbone(x)) @ self.weights


class OwnTaskModel(TaskModel):
    """The module a network's own ``adapt`` returned; ``anchor`` is an empty parameter on the
    device, for a returned module that holds none (attacks read the device from a parameter)."""

    def __init__(self, inner: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.inner = inner
        self.anchor = nn.Parameter(torch.empty(0, device=device), requires_grad=False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def uses_own_adapt(head: Head, network: nn.Module) -> bool:
    """Whether ``head`` resolves to the network's own ``adapt``."""
    return head == "model" or (head == "auto" and callable(getattr(network, "adapt", None)))


class Pretrained(Baseline):
    """Evaluate a pretrained backbone with a per-task head; ``train_step`` is never called
    (`Baseline.trains` is False). Shapes: support ``(W * K, C, H, W)`` -> a task model."""

    name = "pretrained"
    title = "Pretrained"
    paper = "evaluated as given (no meta-training); heads: Snell et al. 2017, Bertinetto et al. 2019"
    Config = PretrainedConfig
    any_way = True  # every head is built from the support set
    trains = False

    def __init__(self, config: PretrainedConfig, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.backbone = backbone.to(device)
        network = backbone.weights_target() if isinstance(backbone, ModuleBackbone) else backbone
        self.own_adapt = network.adapt if uses_own_adapt(config.head, network) else None

    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        raise RuntimeError("pretrained does not train: the runner never calls train_step (Baseline.trains)")

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        if self.own_adapt is not None:
            self.backbone.eval()
            return OwnTaskModel(self.own_adapt(support_x, support_y), self.device)
        if self.config.head == "linear":
            return self._linear_probe(support_x, support_y)
        return prototype_classifier(self.backbone, support_x, support_y, self.n_way)

    def _linear_probe(self, support_x: torch.Tensor, support_y: torch.Tensor) -> LinearProbe:
        self.backbone.eval()
        with torch.set_grad_enabled(support_x.requires_grad):
            features = with_bias_column(self.backbone(support_x))
            targets = F.one_hot(support_y, self.n_way).to(features.dtype)
            # Relative to the features' mean squared norm: the same penalty for any feature scale.
            scale = features.detach().pow(2).sum(1).mean()
            weights = ridge_woodbury(features, targets, features.shape[0] * self.config.ridge_lambda * scale)
        return LinearProbe(self.backbone, weights)
