"""Sanity checks against gradient masking, computed from a table's records.

Following Carlini et al. 2019 ("On Evaluating Adversarial Robustness", Sec. 5) and Athalye et
al. 2018 ("Obfuscated Gradients Give a False Sense of Security"), an attack evaluation is
suspect when, for one trained model (row) and seed:

- ``eps=0``: an attack at radius 0 does not reproduce clean accuracy episode for episode;
- ``rises with eps`` / ``rises with steps``: within one attack family (same attack, all other
  parameters equal) accuracy is higher at a larger radius or with more steps;
- ``gradient-free stronger``: an attack declared gradient-free (Square) beats the strongest
  gradient attack at the same threat model (norm and radius) by more than `MARGIN`:
  gradients then carry no information about the loss (masked, or a non-differentiable model);
- ``worst case above a member``: a worst-case column exceeds one of its attacks.

Every comparison is paired on the shared test episodes of one seed: a rise is flagged only
when the whole 95% Student-t interval of the per-episode differences lies above the tolerance,
so noise alone is never flagged. Which columns are attacks, their threat model and whether
they are gradient-free come from what the threat classes declare, never from names.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bench.report.model import Column, ColumnRole, SettingData
from bench.stats import mean_ci
from bench.suite.params import parse_number
from bench.threats.base import ThreatKind

MARGIN = 0.05  # Square may beat the gradient attacks by up to 5 points before it is flagged
EXACT = 1e-9  # per-episode accuracies are ratios of counts: equal values are equal floats
FLAG = "‡"


@dataclass(frozen=True)
class Flag:
    """A failed check on cell (``row``, ``column``) at ``seed``, with the numbers behind it."""

    row: str
    column: str
    seed: int
    check: str
    message: str


def sanity_flags(data: SettingData) -> list[Flag]:
    """Every violation in one table, in row, check and column order."""
    attacks = [c for c in data.columns if c.kind is ThreatKind.ATTACK and c.threat_model is not None]
    clean = next((c for c in data.columns if c.kind is ThreatKind.CLEAN), None)
    flags: list[Flag] = []
    for row, _ in data.rows:
        for seed in data.seeds:
            values = {c.label: data.cells[(row, c.label)].per_seed.get(seed) for c in data.columns}
            found = {k: v for k, v in values.items() if v is not None}
            flags += _eps_zero(row, seed, attacks, clean, found)
            flags += _monotone(row, seed, attacks, found, "eps") + _monotone(row, seed, attacks, found, "steps")
            flags += _gradient_free(row, seed, attacks, found)
            flags += _worst_case(row, seed, [c for c in data.columns if c.role is ColumnRole.WORST_CASE], found)
    return flags


def paired_rise(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """Mean and 95% CI half-width of ``high - low`` per episode (paired; `bench.report.strength` too)."""
    mean, half = mean_ci(high - low)
    return mean, 0.0 if half != half else half  # one episode: no interval, judge the mean


def _eps_zero(row: str, seed: int, attacks: list[Column], clean: Column | None,
              found: dict[str, np.ndarray]) -> list[Flag]:
    if clean is None or clean.label not in found:
        return []
    out = []
    for column in attacks:
        if column.threat_model.eps != 0 or column.label not in found:  # type: ignore[union-attr]
            continue
        differ = int(np.sum(np.abs(found[column.label] - found[clean.label]) > EXACT))
        if differ:
            out.append(Flag(row, column.label, seed, "eps=0", f"{column.label} at eps = 0 differs from clean "
                            f"on {differ} of {found[clean.label].size} episodes: the attack changes unperturbed "
                            f"inputs"))
    return out


def _monotone(row: str, seed: int, attacks: list[Column], found: dict[str, np.ndarray], key: str) -> list[Flag]:
    families: dict[tuple, list[tuple[float, Column]]] = defaultdict(list)
    for column in attacks:
        value = parse_number(column.param(key)) if column.param(key) is not None else None
        if value is not None and column.label in found:
            # a step size scaled with eps belongs to the eps axis, not to another setting
            rest = tuple((k, v) for k, v in column.params if k != key and not (key == "eps" and k == "alpha"))
            families[(column.name, rest)].append((value, column))
    out = []
    for points in families.values():
        points.sort(key=lambda p: p[0])
        for (a, low), (b, high) in itertools.pairwise(points):
            mean, half = paired_rise(found[low.label], found[high.label])
            if a < b and mean - half > 0:
                out.append(Flag(row, high.label, seed, f"rises with {key}", f"{high.label} is {100 * mean:+.1f} "
                                f"points (95% CI ±{100 * half:.1f}) more accurate than {low.label}: a stronger "
                                f"attack should not do worse; suspect gradient masking or a weak attack"))
    return out


def _gradient_free(row: str, seed: int, attacks: list[Column], found: dict[str, np.ndarray]) -> list[Flag]:
    out = []
    for free in (c for c in attacks if c.gradient_free and c.label in found):
        rivals = [c for c in attacks if not c.gradient_free and c.threat_model == free.threat_model
                  and c.label in found]
        if not rivals or free.threat_model.eps == 0:  # type: ignore[union-attr]
            continue
        best = min(rivals, key=lambda c: float(np.mean(found[c.label])))
        mean, half = paired_rise(found[free.label], found[best.label])
        if mean - half > MARGIN:
            out.append(Flag(row, best.label, seed, "gradient-free stronger", f"gradient-free {free.label} leaves "
                            f"{100 * mean:.1f} points (95% CI ±{100 * half:.1f}) less accuracy than the strongest "
                            f"gradient attack {best.label} (tolerance {100 * MARGIN:.0f}): its gradients are "
                            f"uninformative; suspect gradient masking"))
    return out


def _worst_case(row: str, seed: int, worst: list[Column], found: dict[str, np.ndarray]) -> list[Flag]:
    out = []
    for column in (c for c in worst if c.label in found):
        above = [m for m in column.members if m in found and np.mean(found[column.label]) > np.mean(found[m]) + EXACT]
        if above:
            out.append(Flag(row, column.label, seed, "worst case above a member",
                            f"{column.label} exceeds {above[0]}: the worst case must not be above any attack"))
    return out


def sanity_lines(flags: list[Flag], columns: list[Column]) -> list[str]:
    """The "Sanity" section: each violation with its numbers, or what was checked."""
    if not any(c.kind is ThreatKind.ATTACK for c in columns):
        return ["no attack columns: nothing to check for gradient masking"]
    if not flags:
        return ["every check passed: attacks at eps = 0 equal clean, accuracy does not rise with eps or steps "
                "within an attack family, no gradient-free attack beats the gradient attacks at its threat model "
                f"by more than {100 * MARGIN:.0f} points, no worst case exceeds its attacks (paired 95% intervals) "
                "or a reference attack (AutoAttack, APGD-100×3) by more than 1 point"]
    return [f"{FLAG} {f.row}, seed {f.seed}, {f.column}: {f.check}: {f.message}" for f in flags]
