"""The query-attack contract: perturb an episode's queries against the adapted `TaskModel`.

The support set stays clean (the protocol of adversarial querying, Goldblum et al. 2020): the
baseline adapts on it, then the queries are perturbed against the adapted model. All queries of
an episode are attacked as ONE batch, so a transductive baseline (batch-statistics batch norm)
is attacked on whole query batches, as it is evaluated. Randomness
(random starts, Square's proposals, APGD/FAB restarts) runs inside `bench.seeding.torch_rng`
with the per-episode seed. The AQ protocol is the ``pgd`` default, in one line of YAML::

    {name: pgd, params: {eps: 8/255, alpha: 2/255, steps: 20}}

The attacks themselves live in `gradient` (the signed-gradient family) and `search` (minimal-norm,
parameter-free and gradient-free attacks).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.func import functional_call

from bench.data.episodes import Episode
from bench.registry import THREATS
from bench.seeding import torch_rng
from bench.threats.base import AdaptFn, EoTConfig, Threat, ThreatKind, attacked_model, eot_text, predict

Norm = Literal["Linf", "L2"]


class InputOnly(nn.Module):
    """``model`` run with detached parameters: attacks need gradients w.r.t. the input only.

    Why: CW and FAB call ``.backward()``, which would otherwise fill the ``.grad`` of the
    baseline parameters that a task model shares.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        detached = {name: p.detach() for name, p in self.model.named_parameters()}
        return functional_call(self.model, detached, (x,))


@contextlib.contextmanager
def modes_kept(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's train/eval flag afterwards: torchattacks calls ``eval()``,
    which would leave a baseline's shared modules in eval mode during adversarial training."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


class QueryAttack(Threat):
    """Perturb the queries of an episode with the torchattacks attack made by `build`.

    Subclasses set ``attack_class`` (called with the ``Config`` fields as keyword arguments)
    or override `build`.
    """

    kind = ThreatKind.ATTACK
    attack_class: ClassVar[Any]

    @classmethod
    def display(cls, config: Any) -> str:
        """``PGD-20, ε = 8/255``: the title, the budget (``-steps`` or ``-queries``, ``×restarts``
        above one restart) and the radius."""
        budget = getattr(config, "steps", None) or getattr(config, "n_queries", None)
        name = f"{cls.title}-{budget}" if budget else cls.title
        restarts = getattr(config, "n_restarts", 1)
        name += f"×{restarts}" if restarts > 1 else ""
        model = cls.threat_model(config)
        name = f"{name}, {model.radius_text()}" if model else name
        return name + eot_text(config)

    def build(self, model: nn.Module, way: int, seed: int) -> Any:
        """The torchattacks attack against ``model`` for a ``way``-way episode."""
        return self.attack_class(model, **attack_arguments(self.config))

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, way: int,
                seed: int) -> torch.Tensor:
        """Adversarial queries ``(N, C, H, W)`` in [0, 1] against ``model``; deterministic in ``seed``.

        Adversarial meta-training (adversarial querying, ADML, R-MAML) calls this too, so
        training and evaluation share one code path.
        """
        attack = self.build(InputOnly(model), way, seed)
        with torch_rng(seed, x.device), modes_kept(model):
            return attack(x, y).detach()

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        """The adapted model's correctness on queries perturbed against it (against the
        expectation of `eot_draws` adaptations where the baseline's adaptation is stochastic;
        the model judged is the first draw, the one clean evaluation sees)."""
        model = adapt(episode.support_x, episode.support_y)
        target = attacked_model(adapt, episode.support_x, episode.support_y, self.config, evaluated=model)
        adversarial = self.perturb(target, episode.query_x, episode.query_y, episode.way, seed)
        return predict(model, adversarial) == episode.query_y


def attack_arguments(config: object) -> dict[str, Any]:
    """A config's fields as torchattacks keyword arguments: all but `EoTConfig`'s, which the
    evaluation applies around the attack (`bench.threats.base.attacked_model`)."""
    eot = {f.name for f in dataclasses.fields(EoTConfig)}
    return {k: v for k, v in asdict(config).items() if k not in eot}  # type: ignore[call-overload]


def training_attack(name: str, eps: float, alpha: float, steps: int) -> QueryAttack:
    """The registered query attack ``name`` configured with whichever of eps/alpha/steps its
    Config takes: adversarial meta-training (AQ in the runner, ADML, R-MAML) attacks with the
    same code as evaluation."""
    cls = THREATS.get(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    given = {"eps": eps, "alpha": alpha, "steps": steps}
    return cls(cls.Config(**{k: v for k, v in given.items() if k in fields}))
