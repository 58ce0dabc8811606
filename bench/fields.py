"""Declarations on the fields of Config dataclasses: ranges, pixel quantities, data-set names.

Validation, labels and the report must know what a field IS (a count, an L-inf radius in pixel
units, the name of a data set) without guessing from its name. A field says so in its
``metadata``, and one checker (`check_value`, `check_point`) reads it for the Config of every
component, so a new hyperparameter never needs new validation code. Vocabulary (all optional):

* ``min``, ``max``: inclusive bounds; ``above``: an exclusive lower bound.
* ``pixels``: True for an L-inf radius or step size in [0, 1] pixel units (labels print it as
  ``n/255``), or ``(field, value)``: a pixel quantity only while that other field has that value
  (APGD's ``eps`` while ``norm`` is ``Linf``; an L2 radius is no fraction of 255).
* ``dataset``: the value names a registered data set (domain shift's target).
* ``adversarial``: read only by adversarial training (labels of natural variants ignore it).
* ``identity``: False for a setting that cannot change a result (how often a resumable state is
  written): it stays out of job keys and labels.
* ``code``: the value names Python code, ``package.module:attribute`` (a model factory): the
  code fingerprint (`bench.plan.fingerprint`) hashes that module and the user code it imports.

A number without bounds must still be finite and >= 0: every rate, radius, count and weight in
the catalogue is, and NaN or infinity always means a typo (``1e999``) or a broken suite.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from bench.registry import DATASETS, close_match


class FieldError(ValueError):
    """A value outside what its field declares; the caller adds the key path."""


def count(default: Any, minimum: int = 1) -> Any:
    """A count (steps, episodes, restarts, widths): an integer >= ``minimum`` (each, for a tuple)."""
    return dataclasses.field(default=default, metadata={"min": minimum})


def bounded(default: Any, low: float | None = None, high: float | None = None,
            above: float | None = None) -> Any:
    """A number in ``[low, high]`` (``above``: strictly greater than it)."""
    meta = {key: value for key, value in (("min", low), ("max", high), ("above", above)) if value is not None}
    return dataclasses.field(default=default, metadata=meta)


def pixels(default: float, when: tuple[str, Any] | None = None) -> Any:
    """An L-inf radius or step in [0, 1] pixel units; ``when=(field, value)`` makes it one only
    while ``field`` has ``value`` (else it is a finite number >= 0, e.g. an L2 radius)."""
    return dataclasses.field(default=default, metadata={"pixels": when or True, "min": 0})


def dataset_name(default: str) -> Any:
    """The name of a registered data set."""
    return dataclasses.field(default=default, metadata={"dataset": True})


def adversarial_only(default: Any, **meta: Any) -> Any:
    """A training setting read only when adversarial training is on (``meta``: its bounds)."""
    return dataclasses.field(default=default, metadata={**meta, "adversarial": True})


def not_identity(default: Any, **meta: Any) -> Any:
    """A setting that cannot change a result (``meta``: its bounds): left out of job keys."""
    return dataclasses.field(default=default, metadata={**meta, "identity": False})


def code_reference(default: str) -> Any:
    """``package.module:attribute``: code outside the project that a job runs (a model factory);
    ``""`` means unset (the Config refuses it where the reference is required)."""
    return dataclasses.field(default=default, metadata={"code": True})


CODE_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def code_fields(config: Any) -> list[str]:
    """The values of the fields of ``config`` declared `code_reference` (empty ones left out)."""
    return [getattr(config, f.name) for f in dataclasses.fields(config) if f.metadata.get("code")
            and getattr(config, f.name)]


def identity_fields(config: Any) -> dict[str, Any]:
    """``dataclasses.asdict(config)`` without the fields declared `not_identity`."""
    return {f.name: v for f in dataclasses.fields(config) if f.metadata.get("identity", True)
            for v in [dataclasses.asdict(config)[f.name]]}


def metadata(config_cls: type, name: str) -> Mapping[str, Any]:
    """The declarations of field ``name`` of ``config_cls`` (empty for an undeclared field)."""
    for f in dataclasses.fields(config_cls):
        if f.name == name:
            return f.metadata
    return {}


def check_value(value: Any, meta: Mapping[str, Any]) -> None:
    """Raise `FieldError` when a coerced value breaks its field's declarations.

    Conditional pixel quantities are checked by `check_point`, which knows the other fields.
    """
    if meta.get("code") and value != "" and not (isinstance(value, str) and CODE_REFERENCE.match(value)):
        raise FieldError(f"{value!r:.80} is not a code reference. Expected package.module:attribute (e.g. "
                         f"mymodels.encoders:make_encoder), importable from the project folder or the environment")
    if meta.get("dataset") and value not in DATASETS:
        allowed = DATASETS.names()
        raise FieldError(f"unknown data set {value!r}. Allowed: {', '.join(allowed)}.{close_match(value, allowed)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, above, high = _bounds(meta)
    outside = (low is not None and value < low) or (high is not None and value > high) or \
        (above is not None and value <= above)
    if outside or (isinstance(value, float) and not math.isfinite(value)):
        raise FieldError(f"{value!r} is out of range. Allowed: {allowed_text(meta, isinstance(value, int))}")


def _bounds(meta: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(inclusive low, exclusive low, inclusive high); undeclared numbers are >= 0."""
    above = meta.get("above")
    low = meta.get("min", None if above is not None else 0)
    high = 1 if meta.get("pixels") is True else meta.get("max")
    return low, above, high


def allowed_text(meta: Mapping[str, Any], integer: bool = False) -> str:
    """The declared range in words, for error messages."""
    if meta.get("pixels") is True:
        return "a finite pixel radius or step in [0, 1] (e.g. 8/255)"
    low, above, high = _bounds(meta)
    parts = [f"{sign} {bound}" for sign, bound in ((">=", low), (">", above), ("<=", high)) if bound is not None]
    return ("an integer " if integer else "a finite number ") + " and ".join(parts)


def is_pixels(config: Any, name: str) -> bool:
    """Whether field ``name`` of the Config instance ``config`` is a pixel quantity (n/255)."""
    declared = metadata(type(config), name).get("pixels")
    if isinstance(declared, tuple):
        other, value = declared
        return bool(getattr(config, other) == value)
    return bool(declared)


def check_point(config_cls: type, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, message)`` for each conditional pixel quantity above 1 in one grid point.

    ``values`` holds the given fields; the others take their defaults.
    """
    problems = []
    for f in dataclasses.fields(config_cls):
        declared = f.metadata.get("pixels")
        if not isinstance(declared, tuple) or f.name not in values:
            continue
        other, expected = declared
        current = values.get(other, getattr(config_cls, other, None))
        if current == expected and values[f.name] > 1:
            problems.append((f.name, f"{values[f.name]!r} is out of range. Allowed: a pixel radius or step in "
                                     f"[0, 1] (e.g. 8/255) while {other} is {expected}"))
    return problems


def is_adversarial_only(config_cls: type, name: str) -> bool:
    """Whether field ``name`` is read only by adversarial training."""
    return bool(metadata(config_cls, name).get("adversarial"))
