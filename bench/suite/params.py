"""Typed parameters from YAML: coercion against a Config dataclass, fractions, grid axes.

Suites give hyperparameters as plain YAML values. Each value is checked against the type
annotation of the matching field of the component's ``Config`` dataclass and against what the
field declares (`bench.fields`: ranges, pixel quantities, data-set names). A YAML list is a
grid axis (one variant per element), except for tuple-typed fields, where a list of lists is
the axis. Fractions such as ``8/255`` are parsed with a regular expression, never `eval`.
`expand_params` is the one expansion function behind every axis of a suite.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

from bench.fields import FieldError, check_point, check_value
from bench.registry import close_match

FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*$")


class ParamError(ValueError):
    """A bad value at a key path; `bench.suite.load` adds the file name and collects them."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def parse_number(value: Any) -> float | None:
    """A float from a number, a numeric string (``"1e-3"``) or a fraction (``"8/255"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = FRACTION.match(value)
        if match:
            denominator = float(match.group(2))
            return float(match.group(1)) / denominator if denominator else None
        try:
            return float(value)
        except ValueError:
            return None
    return None


def coerce(value: Any, annotation: Any, path: str) -> Any:
    """``value`` converted to ``annotation`` (int, float, bool, str, Literal, tuple, Optional)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        # `True == 1` in Python: without the type check `severity: true` would pass as 1.
        if not any(value == a and type(value) is type(a) for a in args):
            allowed = [str(a) for a in args]
            raise ParamError(path, f"{_show(value)} is not allowed. Allowed: {', '.join(allowed)}."
                             f"{close_match(str(value), allowed) if isinstance(value, str) else ''}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamError(path, f"expected a list, got {_show(value)}")
        item = args[0] if args else Any
        return tuple(coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    return _coerce_scalar(value, annotation, path)


def _coerce_scalar(value: Any, annotation: Any, path: str) -> Any:
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParamError(path, f"expected true or false, got {_show(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(path, f"expected an integer, got {_show(value)}")
        return value
    if annotation is float:
        number = parse_number(value)
        if number is None or not math.isfinite(number):
            kind = "a finite number" if number is not None else "a number"
            raise ParamError(path, f"expected {kind} (e.g. 0.03, 1e-3 or 8/255), got {_show(value)}")
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise ParamError(path, f"expected a string, got {_show(value)}")
        return value
    return value


def _show(value: Any) -> str:
    """``repr`` cut short: a pasted blob must not flood the error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def axis_values(value: Any, annotation: Any) -> list[Any]:
    """The grid axis a YAML value stands for: a list is an axis, a scalar a single value."""
    is_tuple = typing.get_origin(annotation) is tuple
    if isinstance(value, list) and (not is_tuple or (value and isinstance(value[0], list))):
        return value
    return [value]


def is_axis(raw: Any, config_cls: type, key: str) -> bool:
    """Whether ``raw[key]`` stands for several grid points."""
    hints = typing.get_type_hints(config_cls)
    return isinstance(raw, dict) and key in raw and key in hints and len(axis_values(raw[key], hints[key])) > 1


def expand_params(raw: Any, config_cls: type, path: str) -> list[dict[str, Any]]:
    """All variants of ``raw`` (a mapping of YAML values) validated against ``config_cls``.

    Returns:
        One dict of coerced values per grid point (only the keys given in ``raw``), in the
        order of the Cartesian product of the axes as written.
    """
    if raw is None:
        return [{}]
    if not isinstance(raw, dict):
        raise ParamError(path, f"expected a mapping of parameter names to values, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    axes: list[list[tuple[str, Any]]] = []
    for key, value in raw.items():
        if key not in fields:
            allowed = sorted(fields)
            raise ParamError(f"{path}.{key}", f"unknown parameter. Allowed: {', '.join(allowed) or '(none)'}."
                             f"{close_match(str(key), allowed)}")
        values = axis_values(value, hints[key])
        if not values:
            raise ParamError(f"{path}.{key}", "an empty list is an empty grid axis; give at least one value")
        axes.append([(key, _checked(v, hints[key], fields[key], f"{path}.{key}")) for v in values])
    points = [dict(point) for point in itertools.product(*axes)]
    for point in points:
        for name, message in check_point(config_cls, point):
            raise ParamError(f"{path}.{name}", message)
    return points


def _checked(value: Any, annotation: Any, field: dataclasses.Field, path: str) -> Any:
    """``value`` coerced to the field's type and within what the field declares."""
    coerced = coerce(value, annotation, path)
    items = list(enumerate(coerced)) if isinstance(coerced, tuple) else [(None, coerced)]
    for index, item in items:  # a declaration on a tuple field holds for each element
        try:
            check_value(item, field.metadata)
        except FieldError as exc:
            raise ParamError(path if index is None else f"{path}[{index}]", str(exc)) from exc
    return coerced


def expand_layers(layers: Sequence[tuple[Any, str]], config_cls: type) -> list[dict[str, Any]]:
    """Grid points of settings given at several levels (suite-wide first, then an entry's).

    Each layer is expanded on its own (errors name its own key path); a later layer's value
    replaces an earlier one's, so an entry that fixes a suite-wide axis collapses it.
    Duplicates are removed, keeping the order of the product.
    """
    points: list[dict[str, Any]] = [{}]
    for raw, path in layers:
        points = [{**p, **q} for p in points for q in expand_params(raw, config_cls, path)]
    unique: list[dict[str, Any]] = []
    for point in points:
        if point not in unique:
            unique.append(point)
    return unique


def build_config(config_cls: type, params: dict[str, Any], path: str) -> Any:
    """Instantiate ``config_cls``; its ``__post_init__`` may raise ValueError for bad ranges."""
    try:
        return config_cls(**params)
    except (TypeError, ValueError) as exc:
        raise ParamError(path, str(exc)) from exc


def defaults(config_cls: type) -> dict[str, Any]:
    """Field name -> default value of a Config dataclass (for `bench list`)."""
    return {f.name: f.default for f in dataclasses.fields(config_cls)
            if f.default is not dataclasses.MISSING}
