"""``--where KEY=VALUE`` and ``--baselines A,B``: which evaluation jobs a report shows.

A filter is matched against the tags a job's MLflow run carries (``dataset``, ``way``,
``shot``, ``seed``, ``label``, ``baseline``, ``threat``, ``threat_label``, ``threat_kind``, ...)
and against its flattened parameters (``threat.config.eps``, ``threat.config.severity``, ...).
The same test is applied to the jobs the suite plans, so a filtered-out cell is neither shown
nor reported as missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from bench.errors import BenchError
from bench.registry import close_match


class NoMatchingJobs(BenchError):
    """The filters leave nothing to report (or name a key or baseline the suite does not have)."""


def _number(text: str) -> float | None:
    """``"8/255"``, ``"0.5"``, ``"3"`` -> float; anything else -> None (compared as text)."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        return None


def _same(wanted: str, actual: str) -> bool:
    if wanted == actual:
        return True
    a, b = _number(wanted), _number(actual)
    return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


@dataclass(frozen=True)
class Filters:
    """Conditions on a job's tags/params; every condition must hold.

    Attributes:
        where: key -> accepted values (one must match; numbers compare by value, ``8/255`` works).
        baselines: accepted baseline labels; a registry name that is no label stands for all
            its variants (empty: all).
    """

    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    baselines: tuple[str, ...] = ()

    def matches(self, tags: Mapping[str, str]) -> bool:
        # here, not at the top: the CLI imports this module at every start, bench.tracking imports mlflow
        from bench.tracking.records import LABEL

        if self.baselines and tags.get(LABEL) not in self.baselines:
            return False
        return all(key in tags and any(_same(v, tags[key]) for v in values) for key, values in self.where.items())

    def resolve(self, known: Sequence[str], variants: Sequence[tuple[str, str]]) -> Filters:
        """Check ``--where`` keys against ``known`` and turn ``--baselines`` into labels.

        Args:
            known: every tag and param key the suite's jobs have.
            variants: ``(label, registry name)`` of the suite's baseline variants.

        Raises:
            NoMatchingJobs: an unknown key or baseline (a typo would otherwise hide everything).
        """
        for key in self.where:
            if key not in known:
                raise NoMatchingJobs(f"--where {key}=...: unknown key {key!r}. Allowed: {', '.join(sorted(known))}."
                                 f"{close_match(key, sorted(known))}")
        labels = [label for label, _ in variants]
        chosen: list[str] = []
        for wanted in self.baselines:
            found = [wanted] if wanted in labels else [label for label, name in variants if name == wanted]
            if not found:
                allowed = sorted(set(labels) | {name for _, name in variants})
                raise NoMatchingJobs(f"--baselines: no baseline {wanted!r} in the suite. Allowed: {', '.join(allowed)}."
                                 f"{close_match(wanted, allowed)}")
            chosen += [label for label in found if label not in chosen]
        return Filters(self.where, tuple(chosen)) if self.baselines else self

    def describe(self) -> str:
        parts = [f"{k}={','.join(v)}" for k, v in self.where.items()]
        if self.baselines:
            parts.append(f"baselines={','.join(self.baselines)}")
        return "; ".join(parts)


def parse_filters(where: Sequence[str] | None, baselines: str | None) -> Filters:
    """Parse ``--where`` items (``KEY=V1,V2``; repeatable) and ``--baselines A,B``."""
    conditions: dict[str, tuple[str, ...]] = {}
    for item in where or ():
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise BenchError(f"--where {item!r}: expected KEY=VALUE (e.g. --where threat=pgd or "
                             f"--where threat.config.eps=8/255).")
        accepted = tuple(v.strip() for v in values.split(",") if v.strip())
        conditions[key.strip()] = conditions.get(key.strip(), ()) + accepted
    names = tuple(b.strip() for b in (baselines or "").split(",") if b.strip())
    return Filters(conditions, names)
