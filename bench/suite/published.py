"""Published numbers named by a suite, shown beside ours ("paper 49.42 ± 0.78 / ours 48.9 ± 0.8").

Suite YAML shape (docs/reports.md)::

    published:
      protonet:                                   # a baseline label (or registry name)
        glyphs 5-way 1-shot: 49.42 +- 0.78        # clean accuracy in %, CI optional
        glyphs 5-way 5-shot:                      # or a mapping with the source
          accuracy: "68.20 +- 0.66"
          source: Snell et al. 2017, Table 1

The setting key is the data setting's label (``"<data set> <way>-way <shot>-shot"``).

``references:`` gives published results of methods the suite does not run (people, Bayesian
program learning, a siamese net on Lake et al.'s task), per setting; the report lists them as
paper-only rows under the table::

    references:
      omniglot-lake 20-way 1-shot within alphabet:
        people: {accuracy: "95.5", source: "Lake et al. 2015 (4.5% error)"}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.registry import close_match

if TYPE_CHECKING:
    from bench.suite.values import Suite

NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*(?:(?:\+-|±|\+/-)\s*(\d+(?:\.\d+)?)\s*%?)?\s*$")


@dataclass(frozen=True)
class Published:
    """A published clean accuracy as written (percent): ``mean`` and optional ``ci`` text."""

    mean: str
    ci: str | None
    source: str

    def text(self) -> str:
        return f"{self.mean} ± {self.ci}" if self.ci else self.mean


def parse_value(value: Any, path: str) -> Published:
    """``49.42``, ``"49.42 +- 0.78"``, ``"49.42 ± 0.78"`` or ``{accuracy: ..., source: ...}``."""
    source = ""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"accuracy", "source"})
        if unknown or "accuracy" not in value:
            raise BenchError(f"{path}: expected keys accuracy (required) and source, got {sorted(value)}.")
        source, value = str(value.get("source", "")), value["accuracy"]
    match = NUMBER.match(str(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    if match is None:
        raise BenchError(f"{path}: {value!r} is not a published accuracy; write it in percent as "
                         f"\"49.42 +- 0.78\" (CI optional), e.g. `glyphs 5-way 1-shot: 49.42 +- 0.78`.")
    return Published(match.group(1), match.group(2), source)


def parse_published(suite: Suite) -> dict[tuple[str, str], Published]:
    """``(baseline label, setting label) -> Published``; unknown names are an error (typos)."""
    known: dict[str, str] = {}
    for variant in suite.baselines:  # a registry name stands for the first variant of that baseline
        known.setdefault(variant.baseline.name, variant.baseline.label)
    known |= {v.baseline.label: v.baseline.label for v in suite.baselines}
    settings = [d.label for d in suite.datasets]
    out: dict[tuple[str, str], Published] = {}
    for baseline, entries in (suite.published or {}).items():
        path = f"{suite.path}: published.{baseline}"
        if str(baseline) not in known:
            allowed = sorted(known)
            raise BenchError(f"{path}: no baseline labelled {baseline!r} in the suite. Allowed: "
                             f"{', '.join(allowed)}.{close_match(str(baseline), allowed)}")
        if not isinstance(entries, dict):
            raise BenchError(f"{path}: expected a mapping of data settings to accuracies, got {entries!r}.")
        label = known[str(baseline)]
        for setting, value in entries.items():
            if setting not in settings:
                raise BenchError(f"{path}[{setting!r}]: no such data setting. Allowed: {', '.join(settings)}."
                                 f"{close_match(str(setting), settings)}")
            out[(label, str(setting))] = parse_value(value, f"{path}[{setting!r}]")
    return out


def parse_references(suite: Suite) -> dict[str, tuple[tuple[str, Published], ...]]:
    """``setting label -> ((method, Published), ...)`` in the suite's order; unknown settings
    and unreadable accuracies are errors."""
    settings = [d.label for d in suite.datasets]
    out: dict[str, tuple[tuple[str, Published], ...]] = {}
    for setting, entries in (suite.references or {}).items():
        path = f"{suite.path}: references[{setting!r}]"
        if setting not in settings:
            raise BenchError(f"{path}: no such data setting. Allowed: {', '.join(settings)}."
                             f"{close_match(str(setting), settings)}")
        if not isinstance(entries, dict) or not entries:
            raise BenchError(f"{path}: expected a mapping of method names to accuracies, got {entries!r}.")
        out[str(setting)] = tuple((str(name), parse_value(value, f"{path}.{name}")) for name, value in entries.items())
    return out
