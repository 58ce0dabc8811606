"""Labels that name what distinguishes a variant (DESIGN.md "Identity").

The report keys rows by label, so two variants with one label would merge into one row and one
of them would vanish. A baseline variant's label is its registry name plus exactly the settings
that differ between the suite's variants of that baseline and that the variant sets itself
(``protonet`` and ``protonet[train.steps=6]``; ``maml[backbone=resnet12]``), with ``+aq`` for
adversarial training (Goldblum et al. 2020's adversarial querying), unless the suite gives a
``label:``. A threat's label lists every parameter the suite gave (``pgd[eps=8/255,steps=10]``).
Equal final labels are refused by `duplicate_labels`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.fields import is_pixels
from bench.suite.params import ParamError
from bench.suite.values import BaselineVariant


@dataclass(frozen=True)
class Draft:
    """A baseline variant before labelling, with what its label is computed from.

    Attributes:
        variant: the variant (its label still the registry name). path: its suite entry
            (``baselines[2]``); where: the same, naming the grid point when there are several.
        settings: flat key (``lr``, ``train.steps``, ``backbone``, ``backbone.hidden``) -> value
            text, only the keys that apply (adversarial-training keys only when it is on).
        given: the keys the entry sets itself or that come from a suite-wide grid axis.
        entry: the keys the entry sets itself. user_label: the entry's ``label:``, if any.
    """

    variant: BaselineVariant
    path: str
    where: str
    settings: dict[str, str]
    given: frozenset[str]
    entry: frozenset[str]
    user_label: str | None

    @property
    def adversarial(self) -> bool:
        return self.variant.train.adversarial != "none"


def format_value(config: Any, name: str, value: Any) -> str:
    """Label text of field ``name`` of ``config``: pixel quantities as fractions of 255."""
    if isinstance(value, tuple):
        return "-".join(format_value(config, name, v) for v in value)
    if not isinstance(value, float):
        return str(value)
    steps = value * 255
    if is_pixels(config, name) and 0 < value < 1 and abs(steps - round(steps, 1)) < 1e-6:
        return f"{round(steps, 1):g}/255"
    return f"{value:.6g}"


def flat_settings(config: Any, prefix: str = "", skip: Iterable[str] = ()) -> dict[str, str]:
    """``prefix + field -> text`` for every field of a Config instance, except ``skip``."""
    fields = getattr(config, "__dataclass_fields__", {})
    return {prefix + name: format_value(config, name, getattr(config, name)) for name in fields if name not in skip}


def component_label(name: str, config: Any, given: dict[str, Any], user_label: str | None) -> str:
    """``name[k=v,...]`` over the given parameters (threats), or the user's label."""
    if user_label is not None:
        return user_label
    return name + _brackets({k: format_value(config, k, v) for k, v in given.items()})


def variant_labels(drafts: list[Draft]) -> list[str]:
    """The final label of each draft, in order (see the module docstring for the rule)."""
    groups: dict[str, list[Draft]] = defaultdict(list)
    for draft in drafts:
        groups[draft.variant.baseline.name].append(draft)
    distinct = {name: {k for k in {k for d in group for k in d.settings}
                       if len({d.settings[k] for d in group if k in d.settings}) > 1}
                for name, group in groups.items()}
    labels = []
    for draft in drafts:
        if draft.user_label is not None:
            labels.append(draft.user_label)
            continue
        keys = distinct[draft.variant.baseline.name] & draft.given & set(draft.settings)
        labels.append(draft.variant.baseline.name + _brackets({k: draft.settings[k] for k in keys})
                      + ("+aq" if draft.adversarial else ""))
    return labels


def _brackets(values: dict[str, str]) -> str:
    return "[" + ",".join(f"{k}={values[k]}" for k in sorted(values)) + "]" if values else ""


def duplicate_labels(section: str, labelled: list[tuple[str, str]]) -> list[ParamError]:
    """One error per label given to two entries (``labelled``: (label, entry path) pairs)."""
    first: dict[str, str] = {}
    errors = []
    for label, path in labelled:
        if label in first:
            errors.append(ParamError(
                f"{first[label]} and {path}", f"two {section} are labelled {label!r}; the report keys rows by "
                f"label, so one would hide the other. Give them different settings or a `label:` each, or "
                f"remove one"))
        else:
            first[label] = path
    return errors
