"""Suite sections -> typed values, collecting every problem instead of stopping at the first.

Each section is parsed on its own; a problem is recorded with its key path and parsing goes on,
so one `bench validate` lists everything to fix. Lists are grid axes wherever a value may be a
list (`bench.suite.params.expand_params`): top-level and per-baseline ``train``, ``backbone.params``,
baseline and threat ``params`` and data settings. ``eval`` is not an axis: every baseline and
threat is evaluated on the same fixed test episodes.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bench.errors import BenchError
from bench.fields import is_adversarial_only
from bench.registry import BACKBONES, BASELINES, DATASETS, THREATS, close_match
from bench.suite import scalars
from bench.suite.labels import Draft, component_label, flat_settings, variant_labels
from bench.suite.params import ParamError, build_config, expand_layers, expand_params, is_axis
from bench.suite.values import BaselineVariant, Component, DataParams, DataSetting, Suite, TrainSettings

TOP_KEYS = ("name", "description", "seeds", "backbone", "datasets", "train", "eval", "baselines", "threats",
            "published", "references", "report")
REPORT_KEYS = ("mce_reference",)
ENTRY_KEYS = ("name", "params", "label")
BASELINE_KEYS = (*ENTRY_KEYS, "train", "backbone", "datasets")
BACKBONE_KEYS = ("name", "params", "weights")
DATA_KEYS = ("name", *(f.name for f in dataclasses.fields(DataParams)))
DEFAULT_BACKBONE = "conv4"
ADVERSARIAL_ONLY = tuple(f.name for f in dataclasses.fields(TrainSettings)
                         if is_adversarial_only(TrainSettings, f.name))


class Located(NamedTuple):
    """A parsed item with its suite entry (``datasets[0]``) and, for one grid point of several,
    which one (``datasets[0] (grid point 2 of 3)``)."""

    item: Any
    path: str
    where: str


@dataclass(frozen=True)
class Parsed:
    """A suite and where each of its items came from, for the cross-checks' key paths."""

    suite: Suite
    datasets: list[Located]
    drafts: list[Draft]
    threats: list[Located]


@dataclass(frozen=True)
class Shared:
    """The validated suite-wide ``backbone`` and ``train`` sections (raw YAML values)."""

    backbone: dict[str, Any]
    train: dict[str, Any]


def parse_suite(raw: Any, path: Path, errors: list[ParamError]) -> Parsed | None:
    """The suite in ``raw`` (parsed YAML), or None with the problems appended to ``errors``."""
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        errors.append(ParamError("(top level)", f"the suite is {kind}; expected a mapping with keys "
                                 f"{', '.join(TOP_KEYS)} (see suites/smoke.yaml)"))
        return None
    errors.extend(_unknown(raw, TOP_KEYS, ""))
    errors.extend(ParamError(key, "missing; every suite names its datasets, baselines and threats")
                  for key in ("datasets", "baselines", "threats") if key not in raw)
    name = _guard(errors, lambda: scalars.suite_name(raw.get("name", path.stem)))
    description = _guard(errors, lambda: scalars.text(raw.get("description", ""), "description"))
    seeds = _guard(errors, lambda: scalars.seeds(raw.get("seeds", [0])))
    evaluation = _guard(errors, lambda: scalars.eval_settings(raw.get("eval")))
    shared = Shared(_guard(errors, lambda: _shared_backbone(raw.get("backbone"))) or {},
                    _guard(errors, lambda: _shared_train(raw.get("train"))) or {})
    datasets = _each(errors, raw.get("datasets"), "datasets", _data_entry)
    drafts = _each(errors, raw.get("baselines"), "baselines", lambda item, p: _baseline_entry(item, p, shared))
    threats = _each(errors, raw.get("threats"), "threats", _threat_entry)
    published = _guard(errors, lambda: _mapping(raw.get("published") or {}, "published"))
    references = _guard(errors, lambda: _mapping(raw.get("references") or {}, "references"))
    mce_reference = _guard(errors, lambda: _report_section(raw.get("report")))
    if errors:
        return None
    drafts = [dataclasses.replace(d, variant=dataclasses.replace(
        d.variant, baseline=dataclasses.replace(d.variant.baseline, label=label)))
        for d, label in zip(drafts, variant_labels(drafts), strict=True)]
    suite = Suite(name, path, description, seeds, tuple(d.item for d in datasets),
                  tuple(d.variant for d in drafts), tuple(t.item for t in threats), evaluation, published,
                  mce_reference=mce_reference, references=references)
    return Parsed(suite, datasets, drafts, threats)


def _guard(errors: list[ParamError], thunk: Callable[[], Any]) -> Any:
    """``thunk()``, or None with its problem recorded: bad input never ends in a traceback."""
    try:
        return thunk()
    except ParamError as exc:
        errors.append(exc)
    except BenchError as exc:
        errors.append(ParamError("(top level)", str(exc)))
    except Exception as exc:  # noqa: BLE001 - any input must give a message, never a traceback
        errors.append(ParamError("(top level)", f"could not be validated ({type(exc).__name__}: {exc}); "
                                 f"check the values against suites/smoke.yaml"))
    return None


def _each(errors: list[ParamError], items: Any, key: str, parse: Callable[[Any, str], list[Any]]) -> list[Any]:
    """Parse every element of a list section, collecting errors instead of stopping."""
    if items is None:
        return []
    if not isinstance(items, list) or not items:
        errors.append(ParamError(key, f"expected a non-empty list, got {items!r:.80}"))
        return []
    out: list[Any] = []
    for i, item in enumerate(items):
        out.extend(_guard(errors, functools.partial(parse, item, f"{key}[{i}]")) or [])
    return out


def _unknown(mapping: dict[Any, Any], allowed: tuple[str, ...], path: str) -> list[ParamError]:
    return [ParamError(f"{path}.{key}" if path else str(key), f"unknown key. Allowed: {', '.join(allowed)}."
                       f"{close_match(str(key), list(allowed))}") for key in mapping if key not in allowed]


def _entry(item: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A ``{name, ...}`` entry (a bare name stands for ``{name: NAME}``) with known keys only."""
    item = {"name": item} if isinstance(item, str) else _mapping(item, path)
    for error in _unknown(item, allowed, path):
        raise error
    return item


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParamError(path, f"expected a mapping (key: value), got {value!r:.80}")
    return value


def _report_section(raw: Any) -> str | None:
    """``report: {mce_reference: <baseline label>}``: the baseline whose corruption errors
    normalise the relative mCE (Hendrycks & Dietterich 2019 use AlexNet); None without one."""
    if raw is None:
        return None
    section = _mapping(raw, "report")
    for error in _unknown(section, REPORT_KEYS, "report"):
        raise error
    value = section.get("mce_reference")
    return None if value is None else scalars.text(value, "report.mce_reference")


def _shared_train(raw: Any) -> dict[str, Any]:
    expand_params(raw, TrainSettings, "train")
    return raw or {}


def _shared_backbone(raw: Any) -> dict[str, Any]:
    spec = _entry(raw or {}, "backbone", BACKBONE_KEYS)
    cls = _registered(BACKBONES, spec.get("name", DEFAULT_BACKBONE), "backbone.name")
    expand_params(spec.get("params"), cls.Config, "backbone.params")
    return spec


def _registered(registry: Any, name: Any, path: str) -> Any:
    if not isinstance(name, str):
        raise ParamError(path, f"expected a {registry.kind} name, got {name!r:.80}. Allowed: "
                         f"{', '.join(registry.names())}")
    try:
        return registry.get(name)
    except BenchError as exc:
        raise ParamError(path, str(exc)) from exc


def _user_label(item: dict[str, Any], path: str) -> str | None:
    if "label" not in item:
        return None
    label = item["label"]
    if not isinstance(label, str) or not label.strip():
        raise ParamError(f"{path}.label", f"expected a non-empty string, got {label!r:.80}")
    return label


def _grid_where(path: str, index: int, count: int) -> str:
    return path if count == 1 else f"{path} (grid point {index + 1} of {count})"


def _data_entry(item: Any, path: str) -> list[Located]:
    item = _entry(item, path, DATA_KEYS)
    source = _registered(DATASETS, item.get("name"), f"{path}.name")
    points = expand_params({k: v for k, v in item.items() if k != "name"}, DataParams, path)
    out = []
    for i, point in enumerate(points):
        d = build_config(DataParams, point, path)
        setting = DataSetting(item["name"], d.image_size or source.default_size, d.way, d.shot, d.query, d.within,
                              native_size=source.default_size)
        out.append(Located(setting, path, _grid_where(path, i, len(points))))
    return out


def _threat_entry(item: Any, path: str) -> list[Located]:
    item = _entry(item, path, ENTRY_KEYS)
    cls = _registered(THREATS, item.get("name"), f"{path}.name")
    user_label = _user_label(item, path)
    points = expand_params(item.get("params"), cls.Config, f"{path}.params")
    out = []
    for i, given in enumerate(points):
        config = build_config(cls.Config, given, f"{path}.params")
        threat = Component(item["name"], tuple(sorted(given.items())), config,
                           component_label(item["name"], config, given, user_label))
        out.append(Located(threat, path, _grid_where(path, i, len(points))))
    return out


class _Backbone(NamedTuple):
    component: Component
    entry: frozenset[str]  # label keys the baseline entry sets itself
    axes: frozenset[str]  # label keys from a suite-wide grid axis


def _backbones(item: dict[str, Any], path: str, cls: Any, shared: dict[str, Any]) -> list[_Backbone]:
    """The backbone grid of one baseline entry: the baseline's defaults (its paper's settings),
    then the suite-wide params (for the same backbone), then the entry's, each overriding."""
    spec = _entry(item.get("backbone") or {}, f"{path}.backbone", BACKBONE_KEYS)
    shared_name = shared.get("name", DEFAULT_BACKBONE)
    name = spec.get("name", shared_name)
    config_cls = _registered(BACKBONES, name, f"{path}.backbone.name").Config
    inherited = _mapping(shared.get("params") or {}, "backbone.params") if name == shared_name else {}
    own = _mapping(spec.get("params") or {}, f"{path}.backbone.params")
    layers = [(dict(cls.backbone_defaults), f"{path}.backbone.params"), (inherited, "backbone.params"),
              (own, f"{path}.backbone.params")]
    entry = frozenset({"backbone"} if "name" in spec else set()) | {f"backbone.{k}" for k in own}
    axes = frozenset(f"backbone.{k}" for k in inherited if is_axis(inherited, config_cls, k))
    weights = _weights(spec.get("weights", shared.get("weights") if name == shared_name else None), path)
    return [_Backbone(Component(name, tuple(sorted(p.items())), build_config(config_cls, p, f"{path}.backbone.params"),
                                name, weights), entry | ({"backbone.weights"} if weights else set()), axes)
            for p in expand_layers(layers, config_cls)]


def _weights(value: Any, path: str) -> str | None:
    """``backbone.weights``: a file path (checked for existence before a run, not here: a report
    plans the jobs of a weights file that has since moved)."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ParamError(f"{path}.backbone.weights", f"expected the path of a weights file, got {value!r:.80}")
    return value.strip() if value else None


def _patterns(value: Any, path: str) -> tuple[str, ...]:
    """A baseline entry's ``datasets:``: one pattern or a list of them (not a grid axis)."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ParamError(path, f"expected data-setting labels or globs (e.g. 'omniglot 20-way *'), got {value!r}")
    return tuple(v.strip() for v in items)


def _baseline_entry(item: Any, path: str, shared: Shared) -> list[Draft]:
    """Every variant of one ``baselines:`` entry: params x backbone x train grid points."""
    item = _entry(item, path, BASELINE_KEYS)
    cls = _registered(BASELINES, item.get("name"), f"{path}.name")
    user_label = _user_label(item, path)
    own_train = _mapping(item.get("train") or {}, f"{path}.train")
    trains = expand_layers([(shared.train, "train"), (own_train, f"{path}.train")], TrainSettings)
    train_keys = frozenset(f"train.{k}" for k in own_train)
    train_axes = frozenset(f"train.{k}" for k in shared.train if is_axis(shared.train, TrainSettings, k))
    points = list(itertools.product(expand_params(item.get("params"), cls.Config, f"{path}.params"),
                                    _backbones(item, path, cls, shared.backbone), trains))
    drafts = []
    for i, (params, backbone, train_point) in enumerate(points):
        config = build_config(cls.Config, params, f"{path}.params")
        train = build_config(TrainSettings, train_point, f"{path}.train")
        variant = BaselineVariant(Component(item["name"], tuple(sorted(params.items())), config, item["name"]),
                                  backbone.component, train, _patterns(item.get("datasets"), f"{path}.datasets"))
        entry = frozenset(params) | train_keys | backbone.entry
        drafts.append(Draft(variant, path, _grid_where(path, i, len(points)), _settings(variant),
                            entry | train_axes | backbone.axes, entry, user_label))
    return drafts


def _settings(variant: BaselineVariant) -> dict[str, str]:
    """The flat label settings of a variant; adversarial-training keys only when it is on."""
    skip = ADVERSARIAL_ONLY if variant.train.adversarial == "none" else ()
    return {**flat_settings(variant.baseline.config), **flat_settings(variant.train, "train.", skip),
            "backbone": variant.backbone.name, **flat_settings(variant.backbone.config, "backbone."),
            **({"backbone.weights": variant.backbone.weights} if variant.backbone.weights else {})}
