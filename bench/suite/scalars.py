"""The suite's scalar sections: its name, description, seeds and evaluation settings (one
value each, never a grid axis), parsed with the key path of any problem."""

from __future__ import annotations

import re
from typing import Any

from bench.suite.params import ParamError, build_config, expand_params, is_axis
from bench.suite.values import EvalSettings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ParamError(path, f"expected a string, got {value!r:.80}")
    return value


MAX_NAME = 100  # a suite name becomes an MLflow experiment and a reports/ folder name


def suite_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ParamError("name", f"{value!r:.80} is not a valid suite name (letters, digits, '-', '_', '.')")
    if len(value) > MAX_NAME:
        raise ParamError("name", f"the suite name is {len(value):,} characters long ({value[:40]!r}...); it names "
                         f"an MLflow experiment and a reports/ folder. Allowed: at most {MAX_NAME} characters")
    return value


def seeds(value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ParamError("seeds", f"expected a non-negative integer or a list of them, got {value!r:.80}")
    if len(set(values)) != len(values):
        raise ParamError("seeds", f"duplicate seeds in {value!r:.80}")
    return tuple(values)


def eval_settings(raw: Any) -> EvalSettings:
    for key in raw if isinstance(raw, dict) else ():
        if is_axis(raw, EvalSettings, key):
            raise ParamError(f"eval.{key}", "is not a grid axis: every baseline and threat is evaluated on the "
                             "same fixed test episodes; give one value")
    return build_config(EvalSettings, expand_params(raw, EvalSettings, "eval")[0], "eval")
