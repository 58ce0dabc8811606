"""The baseline contract (DESIGN.md "The baseline contract"). Nothing clever lives here.

A baseline meta-trains on episodes (`train_step`, owning its optimiser) and adapts to a
support set (`adapt`), returning a NEW `TaskModel`. The runner owns evaluation: baselines never
see an attack; every threat works through the `TaskModel` alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from bench.data.episodes import Episode


class TaskModel(nn.Module):
    """The model adapted to one task: query images -> logits.

    Contract: ``forward(x)`` maps float ``(N, C, H, W)`` in [0, 1] to logits ``(N, way)``; it is
    differentiable w.r.t. ``x`` (attacks need it) and, when the support images passed to
    `Baseline.adapt` required grad, w.r.t. them too (support attacks). It owns at least one
    parameter (torchattacks reads the device from it), gives the same logits in ``eval()`` as
    the runner sees, and never changes the baseline it came from.

    A task model may share modules with its baseline; therefore it is inference-only: `train`
    keeps every child in eval mode, so batch norm never updates the baseline's running stats.
    """

    def __init__(self) -> None:
        super().__init__()

    def train(self, mode: bool = True) -> TaskModel:
        self.training = mode
        for child in self.children():
            child.eval()
        return self


@dataclass(frozen=True)
class NoConfig:
    """For baselines without hyperparameters."""


class Baseline(ABC):
    """A few-shot learner. Subclasses live one per file in ``baselines/``.

    Class attributes:
        name: the key used in suites and the raw label in CSV/JSON.
        title: the method as its paper names it (``ProtoNet``, ``MAML++``), for table rows;
            None shows ``name``.
        paper: the citation shown in reports.
        Config: a frozen dataclass of hyperparameters; suite ``params`` are validated against it.
        backbone_defaults: backbone params this method's paper used (e.g. MAML's batch-norm
            statistics); suite values override them.
        any_way: True when the model handles episodes of any way (a metric head built from the
            support set); False when a head is sized by the evaluation way ``n_way`` (the MAML
            family's linear layer), so validation refuses a different training way.
        counters: names of integer attributes that change during training (ADML's update
            count, which seeds its attacks); `state_dict` saves them, so a resumed job goes on
            exactly where it stopped. Tensors belong in modules, never in plain attributes.
        trains: False for a baseline evaluated as given (``pretrained``): its train job runs no
            meta-update and keeps the weights it was built with (a weights file's).
        stochastic: True when `adapt` draws random numbers (sampled weights, a head initialised
            afresh per task): two calls on one support set give different task models. The
            runner seeds each episode's draws; attacks then use expectation over
            transformation (`bench.threats.base.Expectation`, ``eot_draws`` draws; Athalye et
            al. 2018), and reports mark the attack cells evaluated with one draw.
    """

    name: ClassVar[str]
    title: ClassVar[str | None] = None
    paper: ClassVar[str]
    Config: ClassVar[type] = NoConfig
    backbone_defaults: ClassVar[dict[str, Any]] = {}
    any_way: ClassVar[bool] = False
    counters: ClassVar[tuple[str, ...]] = ()
    stochastic: ClassVar[bool] = False
    trains: ClassVar[bool] = True

    def __init__(self, config: Any, backbone: nn.Module, n_way: int, device: torch.device) -> None:
        self.config = config
        self.n_way = n_way
        self.device = device

    @classmethod
    def transductive(cls, backbone_transductive: bool) -> bool:
        """Whether a task model's prediction for one query depends on the other queries of its
        batch, given whether the backbone's does (batch-statistics batch norm). A baseline that
        adapts on the queries themselves (transductive fine-tuning) returns True."""
        return backbone_transductive

    @abstractmethod
    def train_step(self, episodes: list[Episode]) -> dict[str, float]:
        """One meta-update on a batch of episodes; returns scalars to log (e.g. ``loss``)."""

    @abstractmethod
    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        """A new task model for the support set ``(way * shot, C, H, W)``, ``(way * shot,)``."""

    def state_dict(self) -> dict[str, Any]:
        """Every module, optimiser and scheduler attribute, by attribute name, and the declared
        ``counters`` (checkpoints and resume)."""
        state: dict[str, Any] = {key: value.state_dict() for key, value in _stateful(self).items()}
        if self.counters:
            state[COUNTERS] = {name: int(getattr(self, name)) for name in self.counters}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        stateful = _stateful(self)
        expected = set(stateful) | ({COUNTERS} if self.counters else set())
        if set(state) != expected:
            raise ValueError(f"checkpoint has {sorted(state)}, this baseline has {sorted(expected)}")
        for key, value in stateful.items():
            value.load_state_dict(state[key])
        for name, value in state.get(COUNTERS, {}).items():
            setattr(self, name, value)


COUNTERS = "counters"  # the state_dict entry of the declared integer attributes


def _stateful(obj: object) -> dict[str, Any]:
    kinds = (nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)
    return {k: v for k, v in sorted(vars(obj).items()) if isinstance(v, kinds)}
