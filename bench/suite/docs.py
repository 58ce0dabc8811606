"""``docs/suite-format.md``, generated from the schema: every key of a suite, its type, default,
allowed values and meaning, read from the dataclasses the parser validates against and from
the registries (`bench docs suite-format` writes it; a test checks that it is current).

Meanings come from each dataclass's ``Attributes:`` docstring; types, defaults and ranges from
its fields and their declarations (`bench.fields`), so the page cannot drift from the parser.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from bench.fields import allowed_text, metadata
from bench.registry import BACKBONES, BASELINES, DATASETS, THREATS
from bench.suite.labels import format_value
from bench.suite.values import DataParams, EvalSettings, TrainSettings

PAGE = Path("docs") / "suite-format.md"
ATTRIBUTE = re.compile(r"(?:^|(?<=[\s.]))([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*): ")
LITERAL = re.compile(r"^Literal\[(.*)\]$")
TOP_LEVEL = [
    ("name", "string", "the file name", "the suite's name: its MLflow experiment and `reports/<name>/`"),
    ("description", "string", "\"\"", "one line shown in reports and as the MLflow experiment's description"),
    ("seeds", "list of integers", "[0]", "training seeds; every job's seeds derive from its identity and this seed"),
    ("datasets", "list of entries", "required", "data settings (below); each is a grid point, lists are axes"),
    ("backbone", "name or {name, params, weights}", "conv4", "the suite-wide backbone (below); lists are grid "
     "axes; `weights`: a torch.save(state_dict) file loaded into it (docs/outside-models.md)"),
    ("train", "mapping", "(defaults below)", "the suite-wide training budget (below); lists are grid axes"),
    ("eval", "mapping", "(defaults below)", "the fixed test episodes, shared by every baseline and threat; "
     "no lists"),
    ("baselines", "list of entries", "required", "baseline variants (below); a variant may override train "
     "and backbone"),
    ("threats", "list of entries", "required", "evaluation conditions (below); list params are grid axes"),
    ("published", "mapping", "{}", "published clean accuracies per baseline label and data setting "
     "(docs/reports.md)"),
    ("references", "mapping", "{}", "published clean accuracies of methods the suite does not run, per data "
     "setting and method name; listed under the setting's table (docs/reports.md)"),
    ("report", "mapping", "{}", "`mce_reference: <baseline label>`: the relative mCE's reference "
     "(docs/reports.md)"),
]
ENTRY = [("name", "registry name", "required", "which baseline / threat / backbone (lists below)"),
         ("label", "string", "made from what differs", "the row or column name in reports; two equal labels "
          "are refused"),
         ("params", "mapping", "{}", "the component's parameters (tables below); a list is a grid axis")]


def attribute_meanings(cls: type) -> dict[str, str]:
    """Field name -> its meaning, from the ``Attributes:`` part of the docstrings of ``cls`` and
    of the dataclasses it inherits fields from (`bench.threats.base.EoTConfig`)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if "__dataclass_fields__" in vars(klass):
            out.update(_own_meanings(klass))
    return out


def _own_meanings(cls: type) -> dict[str, str]:
    doc = cls.__doc__ or ""
    if "Attributes" in doc:  # the block from "Attributes...:" to the end of its paragraph
        doc = doc.split("Attributes", 1)[1].split(":", 1)[1]
    doc = " ".join(doc.split("\n\n")[0].split()) if doc.strip() else ""
    matches = list(ATTRIBUTE.finditer(doc))
    out = {}
    for match, following in zip(matches, [*matches[1:], None], strict=False):
        text = doc[match.end(): following.start() if following else len(doc)].strip()
        for name in match.group(1).split(", "):
            out[name] = text
    return out


def _type_text(field: dataclasses.Field) -> str:
    literal = LITERAL.match(str(field.type))
    return "one of " + literal.group(1).replace("'", "") if literal else str(field.type).replace("|", "or")


def _default(config_cls: type, field: dataclasses.Field) -> str:
    if field.default is dataclasses.MISSING:
        return "required"
    try:
        return format_value(config_cls(), field.name, field.default)
    except (TypeError, ValueError):  # a Config with required fields: the raw default
        return repr(field.default)


def _allowed(config_cls: type, field: dataclasses.Field) -> str:
    meta = metadata(config_cls, field.name)
    if LITERAL.match(str(field.type)) or field.type in ("bool", "str"):
        return "–"
    if meta.get("dataset"):
        return "a data set name: " + ", ".join(DATASETS.names())
    if "int" in str(field.type) or "float" in str(field.type):
        return allowed_text(meta, integer="int" in str(field.type))
    return "–"


def field_rows(config_cls: type) -> list[list[str]]:
    """key, type, default, allowed, meaning for each field of a Config dataclass."""
    meanings = attribute_meanings(config_cls)
    # keyword-only fields (inherited options such as ``eot_draws``) after the class's own
    ordered = sorted(dataclasses.fields(config_cls), key=lambda f: f.kw_only is True)
    return [[f"`{f.name}`", _type_text(f), _default(config_cls, f), _allowed(config_cls, f),
             meanings.get(f.name, "")] for f in ordered]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows] + [""]


FIELD_HEADERS = ["key", "type", "default", "allowed", "meaning"]


def _sections() -> list[str]:
    lines = ["## Top level", "", *_table(["key", "type", "default", "meaning"],
                                        [[f"`{k}`", t, d, m] for k, t, d, m in TOP_LEVEL])]
    lines += ["## `datasets[]`", "", "Each entry: `name` (a data set: " + ", ".join(DATASETS.names()) + ") and:", "",
              *_table(FIELD_HEADERS, field_rows(DataParams))]
    lines += ["## `train`", "", "Suite-wide, or per baseline entry (`baselines[i].train`, merged over it). "
              "A list value is a grid axis.", "", *_table(FIELD_HEADERS, field_rows(TrainSettings))]
    lines += ["## `eval`", "", *_table(FIELD_HEADERS, field_rows(EvalSettings))]
    lines += ["## Entries of `baselines`, `threats` and `backbone`", "",
              "A bare name stands for `{name: NAME}`. Baseline entries also take `train`, `backbone` and "
              "`datasets` (data-setting labels or globs, e.g. `omniglot 20-way *`: the entry runs on those "
              "settings only, so a recipe that differs per setting is its own entry; entries on disjoint "
              "settings may share a label).", "",
              *_table(["key", "type", "default", "meaning"], [[f"`{k}`", t, d, m] for k, t, d, m in ENTRY])]
    return lines


def _registry_sections(title: str, registry: Any, config: str) -> list[str]:
    lines = [f"## {title}", ""]
    for name, cls in registry:
        lines += [f"### `{name}`", ""]
        summary = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        if summary:
            lines += [summary, ""]
        fields = dataclasses.fields(getattr(cls, config)) if hasattr(cls, config) else ()
        lines += _table(FIELD_HEADERS, field_rows(getattr(cls, config))) if fields else ["No parameters.", ""]
    return lines


def render_page() -> str:
    """The whole page."""
    lines = ["# Suite format", "",
             "Generated by `bench docs suite-format` from the schema (`bench/suite/values.py`, the registered "
             "baselines, threats and backbones and their Config dataclasses); do not edit by hand. Every value "
             "is validated exactly as written here; an error names the key path and what is allowed. "
             "Pixel quantities are written as fractions of 255 (`8/255`).", "", *_sections(),
             *_registry_sections("Baselines (`baselines[].params`)", BASELINES, "Config"),
             *_registry_sections("Threats (`threats[].params`)", THREATS, "Config"),
             *_registry_sections("Backbones (`backbone.params`)", BACKBONES, "Config")]
    return "\n".join(lines).rstrip("\n") + "\n"
