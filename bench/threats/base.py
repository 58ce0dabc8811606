"""The threat contract: evaluate one test episode under one perturbation.

A threat sees a baseline only through ``adapt`` (support set -> `TaskModel`), so every
registered baseline is attackable, corruptible and poisonable with no extra code. Randomness
comes from the ``seed`` the runner derives per (episode set, threat, episode), so the same
episode gets the same perturbation in every run and for every baseline.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import torch
from torch import nn

from bench.baseline import TaskModel
from bench.data.episodes import Episode

AdaptFn = Callable[[torch.Tensor, torch.Tensor], TaskModel]


@dataclass(frozen=True)
class Adaptation:
    """A baseline's ``adapt`` with its declared evaluation mode, as the runner hands it to a
    threat (an `AdaptFn`). ``stochastic``: each call draws a new task model
    (`bench.baseline.Baseline.stochastic`). A plain function is taken as deterministic."""

    adapt: AdaptFn
    stochastic: bool = False

    def __call__(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        return self.adapt(support_x, support_y)


@dataclass(frozen=True)
class EoTConfig:
    """Attributes: eot_draws: adaptation draws an attack on a stochastic baseline averages
        (expectation over transformation, Athalye et al. 2018; AutoAttack's "rand" version
        uses 20); a deterministic baseline is attacked with its one model whatever is set.
    """

    # keyword-only, so that the attack configs keep their own fields first and positional
    eot_draws: int = dataclasses.field(default=1, kw_only=True, metadata={"min": 1})


def eot_text(config: object) -> str:
    """``, EoT-20`` in a column header when an attack averages adaptation draws, else empty."""
    draws = config.eot_draws if isinstance(config, EoTConfig) else 1
    return f", EoT-{draws}" if draws > 1 else ""


def draws_for(stochastic: bool, config: object) -> int:
    """How many task models an attack with ``config`` averages: ``config.eot_draws`` where the
    adaptation is stochastic and the config is an `EoTConfig`, else 1 (also the recorded figure)."""
    return config.eot_draws if stochastic and isinstance(config, EoTConfig) else 1


def adaptation_draws(adapt: AdaptFn, config: object) -> int:
    """`draws_for` an adaptation: one handed over as a plain function is deterministic."""
    return draws_for(isinstance(adapt, Adaptation) and adapt.stochastic, config)


class Expectation(TaskModel):
    """Expectation over transformation (Athalye et al. 2018, Sec. 4): the log of the mean
    softmax of ``n`` task models drawn on one support set, ``(N, C, H, W)`` -> ``(N, way)``.
    Its cross-entropy is that of the expected prediction, so an attack's gradient is the
    gradient of the loss the stochastic model suffers on average (AutoAttack's "rand" version
    averages gradients of per-draw losses instead; the two agree to first order)."""

    def __init__(self, models: list[TaskModel]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([model(x).log_softmax(-1) for model in self.models])
        return torch.logsumexp(log_probs, 0) - math.log(len(self.models))


def attacked_model(adapt: AdaptFn, support_x: torch.Tensor, support_y: torch.Tensor, config: object,
                   evaluated: TaskModel | None = None) -> TaskModel:
    """The model an attack differentiates.

    Deterministic adaptation: ``evaluated`` (or the one model ``adapt`` gives). Stochastic
    adaptation: `adaptation_draws` fresh draws, an `Expectation` when more than one. The draw
    that classifies (``evaluated``) is never among them: the attacker cannot know which draw a
    deployed model makes (the randomized-defence protocol of Croce & Hein 2020 and Athalye et
    al. 2018), so without EoT a stochastic model is attacked through one other draw, which is
    what inflates its robustness and what reports mark.
    """
    if not (isinstance(adapt, Adaptation) and adapt.stochastic):
        return evaluated if evaluated is not None else adapt(support_x, support_y)
    models = [adapt(support_x, support_y) for _ in range(adaptation_draws(adapt, config))]
    return models[0] if len(models) == 1 else Expectation(models)


class ThreatKind(StrEnum):
    """What a threat perturbs; reports group and aggregate columns by it (a `StrEnum`, so a
    kind compares equal to its value in records read back from MLflow)."""

    CLEAN = "clean"
    ATTACK = "attack"  # the queries, within a norm ball, against the adapted model
    CORRUPTION = "corruption"  # support and queries, by a natural corruption
    SUPPORT = "support"  # the support set only (poisoning, label noise, outliers)
    SHIFT = "shift"  # the distribution, between training and test or support and query


@dataclass(frozen=True, order=True)
class ThreatModel:
    """A norm ball: ``norm`` (``Linf`` or ``L2``) and radius ``eps`` (pixel units in [0, 1])."""

    norm: str
    eps: float

    def text(self) -> str:
        """``L∞ 8/255`` (L-inf radii as fractions of 255, as papers print them; a short decimal such
        as 0.1 as MNIST papers print it) or ``L2 0.5``."""
        if self.norm == "Linf":
            steps = self.eps * 255
            # a radius given as a short decimal (MNIST practice: 0.1, 0.2, 0.3) stays one
            short = len(f"{self.eps:.4g}") <= 4 and self.eps != 0
            radius = f"{steps:.4g}/255" if not short and abs(steps - round(steps, 1)) < 1e-6 else f"{self.eps:.4g}"
            return f"L∞ {radius}"
        return f"{self.norm} {self.eps:.4g}"

    def radius_text(self) -> str:
        """``ε = 8/255`` (L-inf) or ``ε₂ = 0.5`` (L2), as table headers print a radius."""
        symbol = "ε" if self.norm == "Linf" else "ε₂"
        return f"{symbol} = {self.text().split(' ', 1)[1]}"


class Threat(ABC):
    """One evaluation condition, registered by name in ``bench.registry.THREATS``.

    Class attributes:
        name: key used in suites and reports.
        title: the human name in table headers (``PGD``, ``Gaussian noise``); `display` adds
            the parameters that tell two columns apart.
        kind: a `ThreatKind` (groups columns in reports; checked when the class is defined).
        source: citation of the attack / corruption definition.
        Config: frozen dataclass of parameters, validated from the suite; a field declared with
            `bench.fields.dataset_name` names the data set the episodes come from (`target_dataset`).
        min_way: the fewest classes an episode needs (validation refuses narrower settings).
        gradient_free: True for an attack that never reads gradients (Square): the sanity
            checks compare it with the gradient attacks at the same threat model.
        norm: the norm an attack's ``eps`` is measured in, where the class fixes it; an attack
            whose Config has a ``norm`` field takes it from there (`threat_model`).
        needs_color: True for a colour-only corruption (saturate): a no-op on grey images, so
            validation refuses it on one-channel data sets.
        needs_outliers: True for a threat that reads ``Episode.outliers`` (images of the split's
            classes outside the episode): the evaluation loop supplies them for it.
        in_headline: True for a threat with its own column in a report's headline table (label
            noise); attacks and corruptions reach it through their summaries (worst case, mean
            corruption) and every shift threat has its own.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[ThreatKind]
    source: ClassVar[str]
    Config: ClassVar[type]
    min_way: ClassVar[int] = 2
    gradient_free: ClassVar[bool] = False
    norm: ClassVar[str | None] = None
    needs_color: ClassVar[bool] = False
    needs_outliers: ClassVar[bool] = False
    in_headline: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        self.config = config

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is not None and not isinstance(kind, ThreatKind):
            raise TypeError(f"{cls.__name__}.kind is {kind!r}: declare a ThreatKind "
                            f"({', '.join(k.name for k in ThreatKind)})")

    @classmethod
    def display(cls, config: Any) -> str:
        """The column header of this threat in md/tex/html tables (``PGD-20, ε = 8/255``); the
        raw label stays in CSV/JSON. Subclasses add the parameters a reader needs."""
        return cls.title

    @classmethod
    def threat_model(cls, config: Any) -> ThreatModel | None:
        """The (norm, eps) ball an attack searches, as AutoAttack groups attacks; None for
        threats that are not norm-bounded query attacks."""
        norm = getattr(config, "norm", cls.norm)
        eps = getattr(config, "eps", None)
        if cls.kind != ThreatKind.ATTACK or norm is None or eps is None:
            return None
        return ThreatModel(str(norm), float(eps))

    @classmethod
    def target_classes(cls, config: Any, way: int) -> int | None:
        """How many target classes a targeted attack tries on a ``way``-way episode (recorded on
        each evaluation); None for threats that target no class."""
        return None

    @abstractmethod
    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        """Correctness of each query under the threat: bool ``(way * query,)``."""


def target_dataset(config: object) -> str | None:
    """The data set whose test episodes a threat is evaluated on, where its Config declares one
    (domain shift's ``dataset``); None for the suite's own data. Read from the field's
    declaration (``metadata["dataset"]``), never from its name."""
    if not dataclasses.is_dataclass(config):
        return None
    for f in dataclasses.fields(config):
        if f.metadata.get("dataset"):
            return str(getattr(config, f.name))
    return None


def predict(model: TaskModel, x: torch.Tensor) -> torch.Tensor:
    """Argmax predictions ``(N,)`` of a task model on ``x (N, C, H, W)``, without a graph."""
    with torch.no_grad():
        return model(x).argmax(-1)


def adapted_correct(adapt: AdaptFn, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                    query_y: torch.Tensor) -> torch.Tensor:
    """Correctness ``(N,)`` on ``query_x`` of the model adapted on (``support_x``, ``support_y``).

    Adaptation runs without a graph (nothing is differentiated through it here; 12% of ProtoNet's
    clean evaluation time went into the graph); baselines that adapt by gradient steps enable
    gradients inside ``adapt`` themselves (the contract).
    """
    with torch.no_grad():
        model = adapt(support_x, support_y)
    return predict(model, query_x) == query_y


def clean_correct(adapt: AdaptFn, episode: Episode) -> torch.Tensor:
    """Correctness ``(way * query,)`` of the model adapted on the clean support set."""
    return adapted_correct(adapt, episode.support_x, episode.support_y, episode.query_x, episode.query_y)
