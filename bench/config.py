"""Suite YAML -> a validated, typed `Suite` (DESIGN.md "Suites").

The whole grid is validated before anything runs; every problem found is reported at once,
each naming the file, the key path, the bad value, the allowed values and a close match.
Only ``yaml.safe_load`` is used and suites refer to components by name, never import path.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bench.errors import BenchError
from bench.params import ParamError, build_config, expand_params
from bench.registry import BACKBONES, BASELINES, DATASETS, THREATS, close_match

REPO_ROOT = Path(__file__).resolve().parent.parent
TOP_KEYS = ("name", "description", "seeds", "backbone", "datasets", "train", "eval", "baselines",
            "threats", "published")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Component:
    """A baseline, backbone or threat variant: registry name plus validated config.

    Attributes:
        name: registry key. given: the parameters the suite set (sorted key/value pairs).
        config: the full Config instance (defaults filled in). label: display name.
    """

    name: str
    given: tuple[tuple[str, Any], ...]
    config: Any
    label: str

    def resolved(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)


@dataclass(frozen=True)
class TrainSettings:
    """Attributes:
        steps: meta-updates. meta_batch: episodes per meta-update.
        way: training way (default: the data setting's way; Snell et al. trained wider).
        adversarial: ``"none"`` for natural training, or the query attack used for
            adversarial querying (Goldblum et al. 2020), a generic option for every baseline.
        adv_eps, adv_alpha, adv_steps: that attack's radius, step and steps (AQ used PGD-7,
            8/255, 2/255 for training).
    """

    steps: int = 1000
    meta_batch: int = 4
    way: int | None = None
    adversarial: Literal["none", "fgsm", "pgd"] = "none"
    adv_eps: float = 8 / 255
    adv_alpha: float = 2 / 255
    adv_steps: int = 7


@dataclass(frozen=True)
class EvalSettings:
    """Attributes: episodes: fixed test episodes per data setting. split: class split used."""

    episodes: int = 600
    split: Literal["train", "val", "test"] = "test"


@dataclass(frozen=True)
class DataSetting:
    """One (data set, image size, way, shot, query) point of the grid."""

    name: str
    image_size: int
    way: int
    shot: int
    query: int = 15

    @property
    def label(self) -> str:
        return f"{self.name} {self.way}-way {self.shot}-shot"


@dataclass(frozen=True)
class BaselineVariant:
    """A baseline variant with the backbone and training budget it is trained with."""

    baseline: Component
    backbone: Component
    train: TrainSettings


@dataclass(frozen=True)
class Suite:
    """A validated suite: the axes of the grid, each already expanded."""

    name: str
    path: Path
    description: str
    seeds: tuple[int, ...]
    datasets: tuple[DataSetting, ...]
    baselines: tuple[BaselineVariant, ...]
    threats: tuple[Component, ...]
    eval: EvalSettings
    published: dict[str, Any] = field(default_factory=dict)


def suite_path(name_or_path: str) -> Path:
    """A suite file from a name found in ``suites/`` (here or in the repository) or a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise BenchError(f"suite file {candidate} does not exist. Give a path to a .yaml file or one "
                             f"of the shipped names: {', '.join(shipped_suites())}.")
        return candidate
    for folder in (Path.cwd() / "suites", REPO_ROOT / "suites"):
        if (folder / f"{name_or_path}.yaml").is_file():
            return folder / f"{name_or_path}.yaml"
    names = shipped_suites()
    raise BenchError(f"no suite named {name_or_path!r}. Known suites: {', '.join(names)}."
                     f"{close_match(name_or_path, names)} A path to a .yaml file works too.")


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in (REPO_ROOT / "suites").glob("*.yaml"))


def load_suite(name_or_path: str) -> Suite:
    """Read, parse and validate a suite; raise one `BenchError` listing every problem."""
    path = suite_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BenchError(f"{path}: not valid YAML ({exc}). Fix the syntax and run `bench validate "
                         f"{path}` again.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: cannot read the suite ({exc}).") from exc
    errors: list[ParamError] = []
    suite = _parse(raw, path, errors)
    if errors or suite is None:
        lines = "\n".join(f"  - {e}" for e in errors)
        raise BenchError(f"{path}: invalid suite ({len(errors)} problem{'s' * (len(errors) != 1)}):\n"
                         f"{lines}\nFix the suite and run `bench validate {path}` again.")
    return suite


def _parse(raw: Any, path: Path, errors: list[ParamError]) -> Suite | None:
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        errors.append(ParamError("(top level)", f"the suite is {kind}; expected a mapping with keys "
                                 f"{', '.join(TOP_KEYS)} (see suites/smoke.yaml)"))
        return None
    for key in raw:
        if key not in TOP_KEYS:
            errors.append(ParamError(str(key), f"unknown key. Allowed: {', '.join(TOP_KEYS)}."
                                     f"{close_match(str(key), list(TOP_KEYS))}"))
    for key in ("datasets", "baselines", "threats"):
        if key not in raw:
            errors.append(ParamError(key, "missing; every suite names its datasets, baselines and threats"))
    name = _guard(errors, lambda: _suite_name(raw.get("name", path.stem)))
    seeds = _guard(errors, lambda: _seeds(raw.get("seeds", [0])))
    backbone = _guard(errors, lambda: _mapping(raw.get("backbone", {}), "backbone"))
    train = _guard(errors, lambda: _settings(TrainSettings, raw.get("train"), "train"))
    evaluation = _guard(errors, lambda: _settings(EvalSettings, raw.get("eval"), "eval"))
    datasets = _each(errors, raw.get("datasets"), "datasets", _data_settings)
    baselines = _each(errors, raw.get("baselines"), "baselines",
                      lambda item, p: _baselines(item, p, backbone or {}, train or TrainSettings()))
    threats = _each(errors, raw.get("threats"), "threats", lambda item, p: _components(THREATS, item, p))
    _check_duplicates(errors, baselines, threats, datasets)
    if errors:
        return None
    suite = Suite(name, path, str(raw.get("description", "")), seeds, tuple(datasets), tuple(baselines),
                  tuple(threats), evaluation, dict(raw.get("published") or {}))
    errors.extend(_check_data(suite))
    return suite


def _guard(errors: list[ParamError], thunk: Any) -> Any:
    try:
        return thunk()
    except ParamError as exc:
        errors.append(exc)
    except BenchError as exc:
        errors.append(ParamError("(top level)", str(exc)))
    return None


def _each(errors: list[ParamError], items: Any, key: str, parse: Any) -> list[Any]:
    """Parse every element of a list section, collecting errors instead of stopping."""
    if items is None:
        return []
    if not isinstance(items, list) or not items:
        errors.append(ParamError(key, f"expected a non-empty list, got {items!r}"))
        return []
    out: list[Any] = []
    for i, item in enumerate(items):
        out.extend(_guard(errors, lambda item=item, i=i: parse(item, f"{key}[{i}]")) or [])
    return out


def _suite_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ParamError("name", f"{value!r} is not a valid suite name (letters, digits, '-', '_', '.')")
    return value


def _seeds(value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ParamError("seeds", f"expected a non-negative integer or a list of them, got {value!r}")
    if len(set(values)) != len(values):
        raise ParamError("seeds", f"duplicate seeds in {value!r}")
    return tuple(values)


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParamError(path, f"expected a mapping, got {value!r}")
    return value


def _settings(cls: type, raw: Any, path: str) -> Any:
    variants = expand_params(raw, cls, path)
    if len(variants) != 1:
        raise ParamError(path, "training and evaluation settings are not grid axes; give single values")
    return build_config(cls, variants[0], path)


def _data_settings(item: Any, path: str) -> list[DataSetting]:
    item = _mapping(item, path)
    source = _registered(DATASETS, item.get("name"), f"{path}.name")
    rest = {k: v for k, v in item.items() if k != "name"}
    out = []
    for params in expand_params(rest, _DataParams, path):
        size = params.get("image_size", source.default_size)
        out.append(DataSetting(item["name"], size, params.get("way", 5), params.get("shot", 1),
                               params.get("query", 15)))
    return out


@dataclass(frozen=True)
class _DataParams:
    image_size: int = 0
    way: int = 5
    shot: int = 1
    query: int = 15


def _registered(registry: Any, name: Any, path: str) -> Any:
    if not isinstance(name, str):
        raise ParamError(path, f"expected a {registry.kind} name, got {name!r}. Allowed: "
                         f"{', '.join(registry.names())}")
    try:
        return registry.get(name)
    except BenchError as exc:
        raise ParamError(path, str(exc)) from exc


def _components(registry: Any, item: Any, path: str, extra_keys: tuple[str, ...] = (),
                defaults: dict[str, Any] | None = None) -> list[Component]:
    """Expand one ``{name, params, label}`` entry into its grid of validated components."""
    if isinstance(item, str):
        item = {"name": item}
    item = _mapping(item, path)
    allowed = ("name", "params", "label") + extra_keys
    for key in item:
        if key not in allowed:
            raise ParamError(f"{path}.{key}", f"unknown key. Allowed: {', '.join(allowed)}."
                             f"{close_match(str(key), list(allowed))}")
    cls = _registered(registry, item.get("name"), f"{path}.name")
    out = []
    for given in expand_params(item.get("params"), cls.Config, f"{path}.params"):
        config = build_config(cls.Config, {**(defaults or {}), **given}, f"{path}.params")
        out.append(Component(item["name"], tuple(sorted(given.items())), config,
                             _label(item, given)))
    return out


def _label(item: dict[str, Any], given: dict[str, Any]) -> str:
    base = str(item.get("label", item["name"]))
    if not given or "label" in item:
        return base
    return base + "[" + ",".join(f"{k}={_short(v)}" for k, v in sorted(given.items())) + "]"


def _short(value: Any) -> str:
    """Compact label text; pixel radii print as fractions of 255 (``8/255``)."""
    if not isinstance(value, float):
        return str(value)
    steps = value * 255
    if 0 < value < 1 and abs(steps - round(steps, 1)) < 1e-6:
        return f"{round(steps, 1):g}/255"
    return f"{value:.4g}"


def _baselines(item: Any, path: str, backbone: dict[str, Any], train: TrainSettings) -> list[BaselineVariant]:
    item = _mapping(item, path) if not isinstance(item, str) else {"name": item}
    variants = _components(BASELINES, {k: v for k, v in item.items() if k not in ("train", "backbone")},
                           path)
    cls = BASELINES.get(item["name"])
    spec = {**backbone, **_mapping(item.get("backbone", {}), f"{path}.backbone")}
    bb_params = {**cls.backbone_defaults, **(spec.get("params") or {})}
    backbones = _components(BACKBONES, {"name": spec.get("name", "conv4"), "params": bb_params},
                            f"{path}.backbone")
    overrides = expand_params(item.get("train"), TrainSettings, f"{path}.train")
    budget = dataclasses.replace(train, **overrides[0])
    if budget.adversarial != "none" and "label" not in item:
        variants = [dataclasses.replace(v, label=f"{v.label}+aq") for v in variants]
    return [BaselineVariant(v, b, budget) for v in variants for b in backbones]


def _check_duplicates(errors: list[ParamError], baselines: list[BaselineVariant],
                      threats: list[Component], datasets: list[DataSetting]) -> None:
    for key, items, ident in (
        ("baselines", baselines, lambda v: (v.baseline.label, v.baseline.config, v.backbone.config, v.train)),
        ("threats", threats, lambda t: (t.name, t.config)),
        ("datasets", datasets, lambda d: d),
    ):
        seen: dict[Any, int] = {}
        for i, entry in enumerate(items):
            ident_value = ident(entry)
            if ident_value in seen:
                errors.append(ParamError(key, f"duplicate entry {_display(entry)!r} "
                                         f"(expanded variants {seen[ident_value]} and {i}); remove one or "
                                         f"give them different params or labels"))
            seen[ident_value] = i


def _display(entry: Any) -> str:
    if isinstance(entry, BaselineVariant):
        return entry.baseline.label
    return str(getattr(entry, "label", entry))


def _check_data(suite: Suite) -> list[ParamError]:
    """Shape checks that need the data set's split sizes (known without loading the data)."""
    errors = []
    for d in suite.datasets:
        source = DATASETS.get(d.name)
        path = f"datasets[{d.name} {d.way}-way {d.shot}-shot]"
        if d.image_size != source.default_size and not source.resizable:
            errors.append(ParamError(f"{path}.image_size", f"{d.image_size} is not available for "
                                     f"{d.name}. Allowed: {source.default_size}"))
        for split in {suite.eval.split, "train"}:
            classes = source.split_classes.get(split, 0)
            way = d.way if split != "train" else max(d.way, _train_way(suite, d))
            if way > classes or way < 2:
                errors.append(ParamError(f"{path}.way", f"{way}-way episodes need 2 to {classes} classes, "
                                         f"the {split} split of {d.name} has {classes}"))
        if d.shot < 1 or d.query < 1 or d.shot + d.query > source.samples_per_class:
            errors.append(ParamError(f"{path}.shot", f"shot={d.shot} and query={d.query} must be >= 1 with "
                                     f"shot + query <= {source.samples_per_class} images per class of {d.name}"))
        errors.extend(_check_shift_targets(suite, d, path))
    return errors


def _check_shift_targets(suite: Suite, d: DataSetting, path: str) -> list[ParamError]:
    """Domain-shift threats draw episodes of the same shape from another data set."""
    errors = []
    for threat in suite.threats:
        target = getattr(threat.config, "dataset", None)
        if target is None:
            continue
        source = DATASETS.get(target)
        classes = source.split_classes.get(suite.eval.split, 0)
        if d.way > classes or d.shot + d.query > source.samples_per_class:
            errors.append(ParamError(f"threats[{threat.label}]", f"{d.way}-way {d.shot}-shot {d.query}-query "
                                     f"episodes do not fit {target}'s {suite.eval.split} split ({classes} "
                                     f"classes, {source.samples_per_class} images per class) for {path}"))
    return errors


def data_needed(suite: Suite) -> list[tuple[str, int]]:
    """Every (data set, image size) the suite reads, domain-shift targets included."""
    needed = {(d.name, d.image_size) for d in suite.datasets}
    for threat in suite.threats:
        target = getattr(threat.config, "dataset", None)
        if target is not None:
            needed.add((target, DATASETS.get(target).default_size))
    return sorted(needed)


def _train_way(suite: Suite, setting: DataSetting) -> int:
    return max((v.train.way or setting.way) for v in suite.baselines)
