"""``--set key.path=value``: change a suite for one command without copying its YAML.

A value is read by the same bounded YAML loader as suite files (``--set train.steps=10``,
``--set "threats[1].params.eps=[2/255, 8/255]"`` for an axis) and put at the dotted path, which
may index lists (``baselines[1].train.steps=50``); the result is then validated exactly like a
suite file, so a misspelt key gets the same message with its key path. An override changes the
configuration, hence the job keys: overridden runs are other jobs, never mixed with the plain
suite's (and the report footer lists the overrides behind it).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from bench.errors import BenchError
from bench.suite.read import parse_yaml_text

STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")
HINT = "Give --set KEY.PATH=VALUE, e.g. --set train.steps=10 or --set baselines[1].train.steps=50."


def apply_overrides(raw: Any, overrides: tuple[str, ...]) -> Any:
    """A copy of the suite's YAML data with every override applied, in order."""
    if not overrides:
        return raw
    if not isinstance(raw, dict):
        raise BenchError(f"--set needs a suite that is a mapping; this one is {type(raw).__name__}.")
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--set {item!r}: no '='. {HINT}")
        value = parse_yaml_text(text, f"--set {key}", HINT)
        _put(out, _steps(key.strip()), value, key.strip())
    return out


def _steps(key: str) -> list[str | int]:
    """``baselines[1].train.steps`` -> ``["baselines", 1, "train", "steps"]``."""
    steps: list[str | int] = []
    for part in key.split("."):
        match = STEP.match(part)
        if match is None:
            raise BenchError(f"--set {key}: {part!r} is not a key or key[index]. {HINT}")
        steps.append(match.group(1))
        steps += [int(index) for index in re.findall(r"\[(\d+)\]", match.group(2))]
    return steps


def _put(node: Any, steps: list[str | int], value: Any, key: str) -> None:
    for i, step in enumerate(steps[:-1]):
        node = _child(node, step, steps[i + 1], key)
    last = steps[-1]
    if isinstance(last, int):
        _check_index(node, last, key)
    elif not isinstance(node, dict):
        raise BenchError(f"--set {key}: {last!r} goes into a mapping, but the suite has {node!r} there.")
    node[last] = value


def _child(node: Any, step: str | int, following: str | int, key: str) -> Any:
    """The container at ``step`` (created as a mapping when absent; a bare name in a list of
    entries, such as ``baselines: [protonet]``, becomes ``{name: protonet}``)."""
    if isinstance(step, int):
        _check_index(node, step, key)
        if isinstance(node[step], str) and isinstance(following, str):
            node[step] = {"name": node[step]}
        return node[step]
    if not isinstance(node, dict):
        raise BenchError(f"--set {key}: {step!r} goes into a mapping, but the suite has {node!r} there.")
    if node.get(step) is None:
        node[step] = [] if isinstance(following, int) else {}
    return node[step]


def _check_index(node: Any, index: int, key: str) -> None:
    if not isinstance(node, list):
        raise BenchError(f"--set {key}: [{index}] indexes a list, but the suite has {node!r} there.")
    if index >= len(node):
        raise BenchError(f"--set {key}: index {index} is out of range; that list has {len(node)} entries "
                         f"(0 to {len(node) - 1}).")
