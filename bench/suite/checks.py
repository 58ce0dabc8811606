"""Cross-checks of a parsed suite: what no single section can tell on its own.

Everything here is known without loading any data: split sizes and images per class are
declared by each data source, what a backbone accepts is found by running it on the meta
device (shapes only, no memory, no compute), whether a head is sized by the evaluation way is
declared by the baseline (``Baseline.any_way``), and a threat declares its target data set
(`bench.threats.base.target_dataset`) and its smallest way (``Threat.min_way``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch

from bench.backbones import build_backbone
from bench.errors import BenchError
from bench.fields import code_fields
from bench.registry import BACKBONES, BASELINES, DATASETS, THREATS, close_match
from bench.suite.labels import Draft, duplicate_labels
from bench.suite.params import ParamError
from bench.suite.parse import Located, Parsed
from bench.suite.published import parse_published, parse_references
from bench.suite.values import DataSetting, Suite, training_setting
from bench.suite.within import check_grouping, check_within
from bench.threats.base import ThreatKind, target_dataset
from bench.user_code import load_reference

# The one resizable data set (glyphs) is held as a single uint8 tensor of 42,780 images:
# 2.8 GB at 256 px, on the device it is used on. Larger sizes are a typo, not an experiment.
MAX_IMAGE_SIZE = 256


def check_suite(parsed: Parsed) -> list[ParamError]:
    """Every cross-section problem of ``parsed``, each once."""
    errors = _duplicates(parsed) + _published(parsed.suite) + _mce_reference(parsed.suite)
    for data in parsed.datasets:
        errors += _data_shape(data, parsed.suite)
        errors += _threat_fit(data, parsed.threats, parsed.suite) + check_within(data, parsed.suite.eval.split)
        for draft in (d for d in parsed.drafts if d.variant.runs_on(data.item)):
            errors += _train_way(draft, data) + _image_size(draft, data)
    errors += _unmatched_datasets(parsed)
    unique: dict[str, ParamError] = {}
    for error in errors:
        unique.setdefault(str(error), error)
    return list(unique.values())


def _duplicates(parsed: Parsed) -> list[ParamError]:
    """Identical entries (the same job twice), then equal labels of different entries."""
    def variant_identity(d: Draft) -> Any:
        v = d.variant
        return (v.baseline.name, v.baseline.config, v.backbone.name, v.backbone.config, v.backbone.weights, v.train,
                v.datasets)

    sections = [
        ("baselines", [(variant_identity(d), d.variant.baseline.label, d.where) for d in parsed.drafts]),
        ("threats", [((t.item.name, t.item.config), t.item.label, t.where) for t in parsed.threats]),
        ("datasets", [(d.item, d.item.label, d.where) for d in parsed.datasets]),
    ]
    errors: list[ParamError] = []
    for section, items in sections:
        seen: dict[Any, str] = {}
        labelled = []
        for identity, label, where in items:
            if identity in seen:
                errors.append(ParamError(f"{seen[identity]} and {where}", f"duplicate entry {label!r}: the same "
                                         f"configuration twice; remove one or change its settings"))
                continue
            seen[identity] = where
            labelled.append((label, where))
        if section != "baselines":
            errors += duplicate_labels(section, labelled)
    return errors + _duplicate_rows(parsed)


def _duplicate_rows(parsed: Parsed) -> list[ParamError]:
    """Two baseline entries may share a label only on disjoint data settings (``datasets:``):
    a label names a row of each setting's table, so one setting must not see it twice."""
    errors: list[ParamError] = []
    for data in parsed.datasets:
        labelled = [(d.variant.baseline.label, d.where) for d in parsed.drafts if d.variant.runs_on(data.item)]
        errors += duplicate_labels("baselines", labelled)
    return errors


def _data_shape(data: Located, suite: Suite) -> list[ParamError]:
    d, path, source = data.item, data.path, DATASETS.get(data.item.name)
    errors = []
    classes = source.split_classes.get(suite.eval.split, 0)
    if d.way > classes:
        errors.append(ParamError(f"{path}.way", f"{d.way}-way episodes need {d.way} classes; the {suite.eval.split} "
                                 f"split of {d.name} has {classes}. Allowed: 2 to {classes}"))
    if d.shot + d.query > source.samples_per_class:
        errors.append(ParamError(f"{path}.query" if d.shot < source.samples_per_class else f"{path}.shot",
                                 f"shot={d.shot} and query={d.query} need {d.shot + d.query} images per class; "
                                 f"{d.name} has {source.samples_per_class}. Allowed: shot + query <= "
                                 f"{source.samples_per_class} images per class of {d.name}"))
    if not source.resizable and d.image_size != source.default_size:
        errors.append(ParamError(f"{path}.image_size", f"{d.image_size} is not available for {d.name} (its "
                                 f"images are prepared at one size). Allowed: {source.default_size}"))
    elif d.image_size > MAX_IMAGE_SIZE:
        errors.append(ParamError(f"{path}.image_size", f"{d.image_size} px is too large (the data set is held in "
                                 f"memory as one tensor). Allowed: up to {MAX_IMAGE_SIZE}"))
    return errors


def _unmatched_datasets(parsed: Parsed) -> list[ParamError]:
    """Each pattern of a baseline entry's ``datasets:`` must match a data setting of the suite."""
    settings = [d.item for d in parsed.datasets]
    errors = []
    for draft in parsed.drafts:
        for pattern in draft.variant.datasets:
            if not any(dataclasses.replace(draft.variant, datasets=(pattern,)).runs_on(d) for d in settings):
                labels = [d.label for d in settings]
                errors.append(ParamError(f"{draft.path}.datasets", f"{pattern!r} matches no data setting of the "
                                         f"suite. Allowed: {', '.join(labels)} (or globs, e.g. 'omniglot 20-way *')"
                                         f"{close_match(pattern, labels)}"))
    return errors


def _train_option_path(draft: Draft, option: str) -> str:
    """Where a ``train`` option was set: the baseline entry, else the suite's top level."""
    return f"{draft.path}.train.{option}" if f"train.{option}" in draft.entry else f"train.{option}"


def _train_way(draft: Draft, data: Located) -> list[ParamError]:
    """Training episodes must fit the train split; a head sized by the way fixes the test way."""
    d, train = data.item, draft.variant.train
    way = train.way or d.way
    path = _train_option_path(draft, "way") if train.way else f"{data.path}.way"
    source = DATASETS.get(d.name)
    classes = source.split_classes.get("train", 0)
    if way > classes:
        return [ParamError(path, f"{way}-way training episodes need {way} classes; the train split of {d.name} "
                           f"has {classes}. Allowed: 2 to {classes}")]
    cls = BASELINES.get(draft.variant.baseline.name)
    if train.way and train.way != d.way and not cls.any_way:
        flexible = ", ".join(n for n, c in BASELINES if c.any_way)
        return [ParamError(path, f"{cls.name} sizes its classifier head by the training way, so a {train.way}-way "
                           f"trained head cannot classify the {d.way}-way test episodes of {data.where}. Allowed: "
                           f"{d.way} (or no train.way); baselines that handle any way: {flexible}")]
    return _train_images(draft, data) + _val_way(draft, data, way) + _train_within(draft, data)


def _train_within(draft: Draft, data: Located) -> list[ParamError]:
    """``train.within``: a grouping of the data set whose every train-split group holds the training way."""
    setting = training_setting(draft.variant, data.item)
    way_path = _train_option_path(draft, "way") if draft.variant.train.way else f"{data.path}.way"
    return check_grouping(setting, "train", _train_option_path(draft, "within"), way_path)


def _train_images(draft: Draft, data: Located) -> list[ParamError]:
    """``train.shot`` + ``train.query`` images per class must exist in the data set."""
    d, train = data.item, draft.variant.train
    if train.shot is None and train.query is None:
        return []  # the test setting's own shot and query, checked by `_data_shape`
    shot, query = train.shot or d.shot, train.query or d.query
    per_class = DATASETS.get(d.name).samples_per_class
    if shot + query <= per_class:
        return []
    path = _train_option_path(draft, "query" if train.query else "shot")
    return [ParamError(path, f"training episodes of shot={shot} and query={query} need {shot + query} images per "
                       f"class; {d.name} has {per_class}. Allowed: train.shot + train.query <= {per_class}")]


def _val_way(draft: Draft, data: Located, train_way: int) -> list[ParamError]:
    """Validation episodes must fit the val split (a data set without one validates nothing)."""
    d, train = data.item, draft.variant.train
    way, classes = train.val_way or train_way, DATASETS.get(d.name).split_classes.get("val", 0)
    if train.validate_every == 0 or classes == 0 or way <= classes:
        return []
    return [ParamError(_train_option_path(draft, "val_way" if train.val_way else "way"),
                       f"{way}-way validation episodes need {way} classes; the val split of {d.name} has "
                       f"{classes}. Allowed: train.val_way from 2 to {classes} (e.g. the test way, as Snell et al.'s "
                       f"code validates), or train.validate_every: 0")]


def _image_size(draft: Draft, data: Located) -> list[ParamError]:
    d, backbone = data.item, draft.variant.backbone
    if d.image_size > MAX_IMAGE_SIZE:
        return []  # already refused by `_data_shape`
    if getattr(BACKBONES.get(backbone.name), "user_code", False):
        return _user_code(draft)  # run on real images by `bench.scheduler.model_eval.preflight`
    args = (backbone.name, backbone.config, DATASETS.get(d.name).channels, d.image_size)
    try:
        hash(backbone.config)
        problem = _backbone_problem(*args)
    except TypeError:  # a user backbone's Config that is not frozen cannot be a cache key
        problem = _backbone_problem.__wrapped__(*args)
    if problem is None:
        return []
    return [ParamError(f"{data.path}.image_size", f"{d.image_size} px images do not fit the {backbone.name} backbone "
                       f"of {draft.where} ({problem}). Allowed: larger images (each 2x2 pooling halves the side)")]


def _user_code(draft: Draft) -> list[ParamError]:
    """The code references of a backbone's config must import (nothing is built here)."""
    errors = []
    for reference in code_fields(draft.variant.backbone.config):
        try:
            load_reference(reference)
        except BenchError as exc:
            errors.append(ParamError(f"{draft.path}.backbone.params", str(exc)))
    return errors


@functools.lru_cache(maxsize=256)
def _backbone_problem(name: str, config: Any, channels: int, size: int) -> str | None:
    """Why ``name`` cannot run on ``(channels, size, size)`` images, found on the meta device."""
    try:
        with torch.device("meta"):
            build_backbone(name, dataclasses.asdict(config), channels, size)(torch.empty(2, channels, size, size))
    except Exception as exc:  # noqa: BLE001 - a backbone may fail in any way; report it, never crash
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # An operation without a meta kernel says nothing about the image size: the run decides.
        return None if "meta" in text.lower() else text
    return None


def _threat_fit(data: Located, threats: list[Located], suite: Suite) -> list[ParamError]:
    d, errors = data.item, []
    for threat in threats:
        cls = THREATS.get(threat.item.name)
        if d.way < cls.min_way:
            errors.append(ParamError(f"{threat.path}.name", f"{cls.name} needs episodes of at least {cls.min_way} "
                                     f"classes; {data.where} is {d.way}-way. Allowed: way >= {cls.min_way}"))
        if cls.needs_color and DATASETS.get(d.name).channels == 1:
            errors.append(ParamError(f"{threat.path}.name", f"{cls.name} changes colour only: on {d.name}'s "
                                     f"one-channel images it would leave the test episodes as they are. Remove it "
                                     f"or use a colour data set (e.g. miniimagenet, cifarfs)"))
        target = target_dataset(threat.item.config)
        if target is not None and not _fits(d, target, suite.eval.split):
            source = DATASETS.get(target)
            errors.append(ParamError(f"{threat.path}.params.dataset", f"{d.way}-way {d.shot}-shot {d.query}-query "
                                     f"episodes of {data.where} do not fit {target}'s {suite.eval.split} split "
                                     f"({source.split_classes.get(suite.eval.split, 0)} classes, "
                                     f"{source.samples_per_class} images per class)"))
    return errors


def _fits(d: DataSetting, dataset: str, split: str) -> bool:
    source = DATASETS.get(dataset)
    return d.way <= source.split_classes.get(split, 0) and d.shot + d.query <= source.samples_per_class


def _mce_reference(suite: Suite) -> list[ParamError]:
    """``report.mce_reference`` names a baseline label of the suite that is evaluated on
    corruptions (else no relative mCE could be normalised by it)."""
    reference = suite.mce_reference
    labels = [v.baseline.label for v in suite.baselines]
    if reference is None:
        return []
    if reference not in labels:
        return [ParamError("report.mce_reference", f"no baseline labelled {reference!r} in the suite. Allowed: "
                           f"{', '.join(labels)}.{close_match(reference, labels)}")]
    if not any(THREATS.get(t.name).kind == ThreatKind.CORRUPTION for t in suite.threats):
        return [ParamError("report.mce_reference", "the suite runs no corruption, so there is no mCE to "
                           "normalise; remove report.mce_reference or add corruption threats")]
    return []


def _published(suite: Suite) -> list[ParamError]:
    """``published:`` names known baselines and data settings, with readable accuracies (the
    parser the report uses, so the rules cannot drift apart)."""
    try:
        parse_published(suite)
        parse_references(suite)
    except BenchError as exc:
        path, _, message = str(exc).removeprefix(f"{suite.path}: ").partition(": ")
        return [ParamError(path, message)]
    return []
