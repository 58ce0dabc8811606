"""Entries added to a suite from outside its file: models trained elsewhere, threats of `bench eval`.

`bench eval-model` and `bench.api.benchmark` evaluate a researcher's model on a suite's own
test episodes and threats as one more ``baselines:`` entry, a ``pretrained`` baseline on a
``module`` backbone (`baselines.pretrained`, `bench.model_backbone`). The entry is stored with
the suite's runs (an MLflow experiment tag per label, `bench.tracking.Tracker.additions`),
so `bench report SUITE` plans its rows beside the suite's own baselines, paired tests
included, without the suite file changing. An entry's job keys are those of the same entry
written into the suite file. Threats that `bench eval` evaluated the suite's checkpoints on are
stored the same way and become extra columns of the report.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError

HEADS = ("auto", "prototype", "linear", "model")


def model_entry(reference: str, label: str, weights: str | None = None, head: str = "auto",
                transductive: bool = False) -> dict[str, Any]:
    """The ``baselines:`` entry evaluating the model ``reference`` builds (``package.module:attr``).

    Args:
        weights: a state-dict file loaded into the model (made absolute: the entry outlives
            the working directory it was given in).
        head: `baselines.pretrained`'s head. transductive: the model's declared mode.
    """
    if not label or not label.strip():
        raise BenchError("--label: give the row's name in the report (e.g. --label my-encoder).")
    if head not in HEADS:
        raise BenchError(f"--head {head!r}: unknown head. Allowed: {', '.join(HEADS)}.")
    params: dict[str, Any] = {"factory": reference}
    if transductive:
        params["transductive"] = True
    backbone: dict[str, Any] = {"name": "module", "params": params}
    if weights:
        backbone["weights"] = str(Path(weights).expanduser().resolve())
    entry: dict[str, Any] = {"name": "pretrained", "label": label.strip(), "backbone": backbone}
    if head != "auto":
        entry["params"] = {"head": head}
    return entry


@dataclass(frozen=True)
class Additions:
    """Raw entries appended to a suite's ``baselines`` and ``threats`` (as YAML would give them)."""

    baselines: tuple[dict[str, Any], ...] = ()
    threats: tuple[Any, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.baselines or self.threats)


def with_added(raw: Any, added: Additions) -> Any:
    """A copy of a suite's YAML data with the ``added`` entries appended to their sections."""
    if not added:
        return raw
    out = copy.deepcopy(raw)
    for section, entries in (("baselines", added.baselines), ("threats", added.threats)):
        if not entries:
            continue
        if not isinstance(raw, dict) or not isinstance(raw.get(section), list):
            raise BenchError(f"entries can be added only to a suite whose `{section}:` is a list.")
        out[section] = [*out[section], *copy.deepcopy(list(entries))]
    return out


def entry_tag(entry: Any) -> str:
    """A stable name for a threat entry (its canonical JSON, hashed): entries have no label of their own."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:12]


def check_label(own_labels: list[str], label: str) -> None:
    """Refuse a model label that names one of the suite's own baselines (its row would merge)."""
    if label in own_labels:
        raise BenchError(f"--label {label!r} is the label of one of the suite's baselines "
                         f"({', '.join(own_labels)}); give the model a name of its own.")


def entry_label(entry: dict[str, Any]) -> str:
    return str(entry.get("label", ""))
