"""The typed values a validated suite is made of (re-exported by `bench.suite.load`).

Every field declares its type and range (`bench.fields`), so `bench.suite.params` validates the
``train:`` and ``eval:`` sections and data settings with the same checker as component params.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.fields import adversarial_only, count, not_identity


@dataclass(frozen=True)
class Component:
    """A baseline, backbone or threat variant: registry name plus validated config.

    Attributes:
        name: registry key. given: the parameters the suite set (sorted key/value pairs).
        config: the full Config instance (defaults filled in). label: display name.
        weights: backbones only: a weights file (``torch.save(module.state_dict())``) loaded
            into the freshly built backbone, as the suite names it (`bench.user_code.resolve_file`);
            its bytes are hashed into the code fingerprint.
    """

    name: str
    given: tuple[tuple[str, Any], ...]
    config: Any
    label: str
    weights: str | None = None

    def resolved(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)


@dataclass(frozen=True)
class TrainSettings:
    """Attributes:
        steps: meta-updates. meta_batch: episodes per meta-update.
        way, shot, query: the training episodes' shape (default: the data setting's; Snell et
            al. 2017 trained 60-way with 5 queries per class and tested 5- and 20-way with 15;
            Finn et al.'s code trains with K queries per class). These are training settings,
            not test settings, so one trained model serves every test setting it can classify.
        adversarial: ``"none"`` for natural training, or the query attack used for
            adversarial querying (Goldblum et al. 2020), a generic option for every baseline.
        adv_eps, adv_alpha, adv_steps: that attack's radius, step and steps (AQ used PGD-7,
            8/255, 2/255 for training). Both attacks are L-inf, so radius and step are pixels.
        validate_every: meta-updates between two evaluations on the fixed validation episodes
            (0: never). val_episodes: how many (the data set's val split, hashed like the
            test episodes). val_way: the validation episodes' way (default: the training way;
            they have the training shot and query); Snell et al.'s code validates its 60-way
            ProtoNet at the test way, 5.
        within: a grouping of the data set (``alphabet``): every training episode's classes come
            from one group, as the test episodes of a ``within`` data setting do (Lake et al.
            2015's within-alphabet task: the negatives of a training episode are then as alike
            as the test's). Default: episodes across groups. Validation episodes stay across
            groups.
            select: the checkpoint kept, the best on validation (Snell et al. 2017 stop early
            on it; Antoniou et al. 2019 keep the best validation models) or the last.
            patience: validations without improvement before training stops
            (0: never stops early).
        checkpoint_every: meta-updates between two resumable states (0: none); not part of a
            job's identity, as resuming gives the same bits.
    """

    steps: int = count(1000)
    meta_batch: int = count(4)
    way: int | None = count(None, minimum=2)
    shot: int | None = count(None)
    query: int | None = count(None)
    val_way: int | None = count(None, minimum=2)
    within: str | None = None
    adversarial: Literal["none", "fgsm", "pgd"] = adversarial_only("none")
    adv_eps: float = adversarial_only(8 / 255, pixels=True, min=0)
    adv_alpha: float = adversarial_only(2 / 255, pixels=True, min=0)
    adv_steps: int = adversarial_only(7, min=1)
    validate_every: int = count(100, minimum=0)
    val_episodes: int = count(50)
    select: Literal["best_val", "last"] = "best_val"
    patience: int = count(0, minimum=0)
    checkpoint_every: int = not_identity(100, min=0)


@dataclass(frozen=True)
class EvalSettings:
    """Attributes: episodes: fixed test episodes per data setting. split: class split used.

    Not grid axes: every baseline and threat is evaluated on the same fixed episodes.
    """

    episodes: int = count(600)
    split: Literal["train", "val", "test"] = "test"


@dataclass(frozen=True)
class DataSetting:
    """One (data set, image size, way, shot, query[, within]) point of the grid: a test setting
    (a train job's ``data`` is its training setting, `bench.plan.jobs.training_setting`)."""

    name: str
    image_size: int
    way: int
    shot: int
    query: int = 15
    within: str | None = None
    # The data set's own size: display only (not hashed, `bench.plan.jobs.setting_identity`),
    # so that the label names the size exactly when it differs from it.
    native_size: int | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        size = f" {self.image_size}px" if self.native_size not in (None, self.image_size) else ""
        within = f" within {self.within}" if self.within else ""
        return f"{self.name}{size} {self.way}-way {self.shot}-shot{within}"


@dataclass(frozen=True)
class DataParams:
    """What a ``datasets:`` entry may set besides ``name``.

    Attributes:
        image_size: side in pixels the images are resized to (default: the data set's own).
        way: classes per episode. shot: labelled support images per class. query: query
            images per class (the test episodes' queries; training episodes use the same
            unless ``train.query`` says otherwise).
        within: draw each test episode's classes from one group of the data set's grouping
            of that name (an Omniglot alphabet, for Lake et al. 2015's within-alphabet task),
            or from the whole split (unset). The groups come from the data set
            (`bench.data.source.DataSource.groupings`).
    """

    image_size: int | None = count(None)
    way: int = count(5, minimum=2)
    shot: int = count(1)
    query: int = count(15)
    within: str | None = None


@dataclass(frozen=True)
class BaselineVariant:
    """A baseline variant with the backbone and training budget it is trained with.

    ``datasets``: the entry's ``datasets:`` patterns (data-setting labels or data-set names,
    globs as in ``--datasets``): it runs only on the settings they match (all when empty), so
    a recipe that differs per setting (Finn et al.'s 20-way MAML) is its own entry.
    """

    baseline: Component
    backbone: Component
    train: TrainSettings
    datasets: tuple[str, ...] = ()

    def runs_on(self, data: DataSetting) -> bool:
        return not self.datasets or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.datasets
                                        for name in (data.label, data.name))


@dataclass(frozen=True)
class Suite:
    """A validated suite: the axes of the grid, each already expanded; ``overrides``: the
    ``--set`` items applied to its file (`bench.suite.overrides`)."""

    name: str
    path: Path
    description: str
    seeds: tuple[int, ...]
    datasets: tuple[DataSetting, ...]
    baselines: tuple[BaselineVariant, ...]
    threats: tuple[Component, ...]
    eval: EvalSettings
    published: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    references: dict[str, Any] = field(default_factory=dict)  # published results of methods not run here
    mce_reference: str | None = None  # ``report.mce_reference``: the relative mCE's reference baseline
    added: tuple[str, ...] = ()  # labels of baselines added from outside the file (`bench.suite.added`)
    added_threats: tuple[str, ...] = ()  # labels of threats added by `bench eval` (`bench.suite.added`)


def training_setting(variant: BaselineVariant, data: DataSetting) -> DataSetting:
    """The shape of ``variant``'s training episodes on ``data``: ``train.way``/``shot``/``query``
    where set, else the test setting's; ``train.within`` (the data setting's ``within`` shapes
    test episodes only)."""
    train = variant.train
    return dataclasses.replace(data, way=train.way or data.way, shot=train.shot or data.shot,
                               query=train.query or data.query, within=train.within)
