"""Typed parameters from YAML: coercion against a Config dataclass, fractions, grid axes.

Suites give hyperparameters as plain YAML values. Each value is checked against the type
annotation of the matching field of the component's ``Config`` dataclass. A YAML list is a
grid axis (one variant per element), except for tuple-typed fields, where a list of lists
is the axis. Fractions such as ``8/255`` are parsed with a regular expression, never `eval`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from typing import Any, Literal

from bench.registry import close_match

FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*$")


class ParamError(ValueError):
    """A bad value at a key path; `bench.config` adds the file name and collects them."""

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
        if value not in args:
            allowed = [str(a) for a in args]
            raise ParamError(path, f"{value!r} is not allowed. Allowed: {', '.join(allowed)}."
                             f"{close_match(str(value), allowed)}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamError(path, f"expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    return _coerce_scalar(value, annotation, path)


def _coerce_scalar(value: Any, annotation: Any, path: str) -> Any:
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParamError(path, f"expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(path, f"expected an integer, got {value!r}")
        return _non_negative(value, path)
    if annotation is float:
        number = parse_number(value)
        if number is None:
            raise ParamError(path, f"expected a number (e.g. 0.03, 1e-3 or 8/255), got {value!r}")
        return _non_negative(number, path)
    if annotation is str:
        if not isinstance(value, str):
            raise ParamError(path, f"expected a string, got {value!r}")
        return value
    return value


def _non_negative(number: Any, path: str) -> Any:
    # Every hyperparameter in the catalogue (rates, radii, counts, weights) is >= 0.
    if number < 0:
        raise ParamError(path, f"{number!r} is negative; use a value >= 0")
    return number


def axis_values(value: Any, annotation: Any) -> list[Any]:
    """The grid axis a YAML value stands for: a list is an axis, a scalar a single value."""
    is_tuple = typing.get_origin(annotation) is tuple
    if isinstance(value, list) and (not is_tuple or (value and isinstance(value[0], list))):
        return value
    return [value]


def expand_params(raw: Any, config_cls: type, path: str) -> list[dict[str, Any]]:
    """All variants of ``raw`` (a mapping of YAML values) validated against ``config_cls``.

    Returns:
        One dict of coerced values per grid point (only the keys given in ``raw``), in the
        order of the Cartesian product of the axes as written.
    """
    if raw is None:
        return [{}]
    if not isinstance(raw, dict):
        raise ParamError(path, f"expected a mapping of parameter names to values, got {raw!r}")
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
        axes.append([(key, coerce(v, hints[key], f"{path}.{key}")) for v in values])
    return [dict(point) for point in itertools.product(*axes)]


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
