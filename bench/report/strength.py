"""How strong a table's attack evaluation is: the worst case against a reference attack, and
the power of the gradient-free check (issue 25; RobustBench's standard).

Two questions the flags of `bench.report.sanity` leave open:

- Is the worst case at a threat model as low as a strong attack gets? The reference is an
  AutoAttack evaluation (Croce & Hein 2020, "standard") or APGD with at least
  `REFERENCE_STEPS` iterations and `REFERENCE_RESTARTS` restarts at the same norm and radius. A
  worst case more than `TOLERANCE` above it is flagged; a threat model without one is named as
  unchecked.
- Could the Square check have caught masking? It only can where Square itself lowers accuracy:
  its power is the clean minus Square accuracy (paired, 95% CI). Square within `MARGIN` of clean
  says nothing about the gradient attacks.
"""

from __future__ import annotations

import numpy as np

from bench.report.model import Column, ColumnRole, SettingData
from bench.report.sanity import MARGIN, Flag, paired_rise
from bench.suite.params import parse_number
from bench.threats.base import ThreatKind

REFERENCE_STEPS, REFERENCE_RESTARTS = 100, 3  # APGD-CE as strong as AutoAttack's first member
TOLERANCE = 0.01  # a worst case may sit 1 point above the reference (issue 25's bound)
CHECK = "worst case above the reference attack"


def is_reference(column: Column) -> bool:
    """AutoAttack, or APGD with >= 100 iterations and >= 3 restarts (declared names of the
    registry: ``autoattack``, ``apgd_ce``, ``apgd_dlr``)."""
    if column.name == "autoattack":
        return True
    steps, restarts = (parse_number(column.param(k) or "0") for k in ("steps", "n_restarts"))
    return column.name.startswith("apgd") and (steps or 0) >= REFERENCE_STEPS and \
        (restarts or 0) >= REFERENCE_RESTARTS


def reference_flags(data: SettingData) -> list[Flag]:
    """A worst case more than `TOLERANCE` above the strongest reference at its threat model."""
    flags = []
    for worst in (c for c in data.columns if c.role is ColumnRole.WORST_CASE):
        references = [c for c in _attacks(data) if is_reference(c) and c.threat_model == worst.threat_model]
        for row, _ in data.rows:
            for seed in data.seeds:
                found = {c.label: v for c in [worst, *references]
                         if (v := data.cells[(row, c.label)].per_seed.get(seed)) is not None}
                flags += _above_reference(row, seed, worst, [c for c in references if c.label in found], found)
    return flags


def _above_reference(row: str, seed: int, worst: Column, references: list[Column],
                     found: dict[str, np.ndarray]) -> list[Flag]:
    if worst.label not in found or not references:
        return []
    strongest = min(references, key=lambda c: float(np.mean(found[c.label])))
    above = float(np.mean(found[worst.label]) - np.mean(found[strongest.label]))
    if above <= TOLERANCE:
        return []
    return [Flag(row, worst.label, seed, CHECK, f"{worst.label} is {100 * above:.1f} points above "
                 f"{strongest.label} (tolerance {100 * TOLERANCE:.0f}): the headline attacks are weaker than "
                 f"the reference; add it to the worst case")]


def strength_lines(data: SettingData) -> list[str]:
    """Which threat models have a reference attack, and the Square check's power per row."""
    attacks = _attacks(data)
    models = sorted({c.threat_model for c in attacks if c.threat_model is not None and c.threat_model.eps > 0})
    lines = []
    for model in models:
        here = [c for c in attacks if c.threat_model == model]
        names = [c.header for c in here if is_reference(c)]
        lines.append(f"reference at {model.text()}: {', '.join(names)}" if names else
                     f"reference at {model.text()}: none (no AutoAttack or APGD-{REFERENCE_STEPS}×"
                     f"{REFERENCE_RESTARTS} evaluation): the worst case there is unchecked")
        lines += _power_lines(data, [c for c in here if c.gradient_free])
    return lines


def _power_lines(data: SettingData, squares: list[Column]) -> list[str]:
    clean = next((c for c in data.columns if c.kind is ThreatKind.CLEAN), None)
    if clean is None:
        return []
    out = []
    for square in squares:
        for row, _ in data.rows:
            for seed in data.seeds:
                a, b = (data.cells[(row, c.label)].per_seed.get(seed) for c in (square, clean))
                if a is None or b is None:
                    continue
                mean, half = paired_rise(a, b)
                verdict = "low power: it barely attacks, so it cannot reveal masking" if mean - half <= MARGIN \
                    else "powered"
                out.append(f"power of {square.header} on {row}, seed {seed}: {100 * mean:.1f} ± {100 * half:.1f} "
                           f"points below clean ({verdict})")
    return out


def _attacks(data: SettingData) -> list[Column]:
    return [c for c in data.columns if c.kind is ThreatKind.ATTACK and c.threat_model is not None]
