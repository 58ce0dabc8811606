"""Sanity checks against gradient masking, as pure functions over evaluation records.

Following Carlini et al. 2019 ("On Evaluating Adversarial Robustness", Sec. 5) and Athalye et al.
2018 ("Obfuscated Gradients Give a False Sense of Security"), an attack evaluation is suspect when:

1. ``eps_zero``: an attack at eps = 0 does not reproduce clean accuracy episode for episode;
2. ``monotone_eps``: accuracy rises when eps grows (other parameters equal);
3. ``monotone_steps``: accuracy rises when the number of attack steps grows;
4. ``gradient_free``: the gradient-free Square attack beats the best gradient attack at the
   same norm and eps by a wide margin (gradients are then uninformative, i.e. masked).

Rises are judged on the SAME test episodes, so each comparison is paired: a violation is
flagged when the whole 95% Student-t interval of the per-episode differences lies above the
tolerance (above 0 for 2 and 3, above ``margin`` for 4); noise alone is not flagged.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.params import parse_number
from bench.report.stats import mean_ci

GRADIENT_ATTACKS = ("fgsm", "pgd", "pgd_l2", "mifgsm", "cw", "apgd_ce", "apgd_dlr")
GRADIENT_FREE = ("square",)
L2_ATTACKS = ("pgd_l2", "cw")  # the rest are L-inf unless their params say norm: L2
ATTACKS_WITH_EPS = GRADIENT_ATTACKS + GRADIENT_FREE + ("autoattack", "support_pgd", "support_query_pgd")
EXACT = 1e-9  # per-episode accuracies are ratios of counts: equal values are equal floats


@dataclass(frozen=True)
class Record:
    """One threat evaluated on a fixed episode set by one trained model.

    Attributes:
        threat: registry name (``"pgd"``). params: resolved parameters (values may be strings,
            as MLflow stores them). accuracies: per-episode accuracies, in episode order.
        label: display name for messages. group: the trained model (e.g. the train job key);
            only records of one group are compared.
    """

    threat: str
    params: Mapping[str, Any]
    accuracies: Sequence[float]
    label: str = ""
    group: str = ""

    @property
    def name(self) -> str:
        return self.label or self.threat


@dataclass(frozen=True)
class Violation:
    """A failed check: ``check`` is one of the four names above; ``message`` is for the report."""

    check: str
    group: str
    message: str
    records: tuple[str, ...] = field(default_factory=tuple)


def number(params: Mapping[str, Any], key: str) -> float | None:
    """A numeric parameter (``8/255``, ``"0.031"`` or a float), or None."""
    return parse_number(params[key]) if key in params else None


def paired_rise(low: Record, high: Record) -> tuple[float, float]:
    """Mean and 95% CI half-width of ``high - low`` per episode (paired)."""
    diff = np.asarray(high.accuracies, dtype=np.float64) - np.asarray(low.accuracies, dtype=np.float64)
    mean, half = mean_ci(diff)
    return mean, 0.0 if half != half else half  # one episode: no interval, judge the mean


def eps_zero(records: Sequence[Record], group: str) -> list[Violation]:
    """Every attack at eps = 0 must equal the clean record on every episode."""
    clean = next((r for r in records if r.threat == "clean"), None)
    out = []
    for r in records:
        if clean is None or r.threat not in ATTACKS_WITH_EPS or number(r.params, "eps") != 0:
            continue
        differ = [i for i, (a, b) in enumerate(zip(r.accuracies, clean.accuracies, strict=True)) if abs(a - b) > EXACT]
        if differ:
            out.append(Violation("eps_zero", group, f"{r.name} at eps=0 differs from clean accuracy on "
                                 f"{len(differ)} of {len(r.accuracies)} episodes (first: "
                                 f"episode {differ[0]}); the attack changes unperturbed inputs", (r.name, clean.name)))
    return out


def monotone(records: Sequence[Record], key: str, group: str) -> list[Violation]:
    """Accuracy must not rise with ``key`` (eps or steps) among records equal in all else."""
    series: dict[tuple, list[tuple[float, Record]]] = defaultdict(list)
    for r in records:
        value = number(r.params, key)
        if r.threat in ATTACKS_WITH_EPS and value is not None:
            rest = tuple(sorted((k, str(v)) for k, v in r.params.items() if k != key and not _tied(k, key)))
            series[(r.threat, rest)].append((value, r))
    out = []
    for points in series.values():
        points.sort(key=lambda p: p[0])
        for (a, low), (b, high) in itertools.pairwise(points):
            mean, half = paired_rise(low, high)
            if a < b and mean - half > 0:
                out.append(Violation(f"monotone_{key}", group, f"{high.name} ({key}={b:g}) is {mean:+.1%} more "
                                     f"accurate than {low.name} ({key}={a:g}) (95% CI ±{half:.1%}); a stronger "
                                     f"attack should not do worse: suspect gradient masking", (low.name, high.name)))
    return out


def _tied(param: str, key: str) -> bool:
    # A step size scaled with eps (alpha = eps / 4) is part of the eps axis, not another setting.
    return key == "eps" and param == "alpha"


def norm_of(record: Record) -> str:
    return str(record.params.get("norm", "L2" if record.threat in L2_ATTACKS else "Linf"))


def gradient_free(records: Sequence[Record], group: str, margin: float) -> list[Violation]:
    """Square must not beat the strongest gradient attack of the same norm and eps by > margin."""
    out = []
    for square in (r for r in records if r.threat in GRADIENT_FREE):
        eps = number(square.params, "eps")
        rivals = [r for r in records if r.threat in GRADIENT_ATTACKS and norm_of(r) == norm_of(square)
                  and number(r.params, "eps") == eps]
        if not rivals or eps == 0:
            continue
        best = min(rivals, key=lambda r: float(np.mean(r.accuracies)))
        mean, half = paired_rise(square, best)
        if mean - half > margin:
            out.append(Violation("gradient_free", group, f"gradient-free {square.name} is {mean:.1%} stronger than "
                                 f"the best gradient attack {best.name} (95% CI ±{half:.1%}, tolerance {margin:.0%}): "
                                 f"gradients are uninformative, suspect gradient masking", (square.name, best.name)))
    return out


def check_records(records: Iterable[Record], margin: float = 0.05) -> list[Violation]:
    """All four checks within each group of records; an empty list means no warning.

    Args:
        records: evaluation records of one or more trained models (``Record.group``).
        margin: how much stronger (absolute accuracy) Square may be than the gradient attacks.
    """
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r.group].append(r)
    out: list[Violation] = []
    for group, members in sorted(groups.items()):
        out += eps_zero(members, group)
        out += monotone(members, "eps", group)
        out += monotone(members, "steps", group)
        out += gradient_free(members, group, margin)
    return out
