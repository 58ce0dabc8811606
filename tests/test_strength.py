"""How strong a table's attacks were (issue 25): the worst case against a reference attack
(AutoAttack, APGD-100 x 3), named when absent, and the power of the Square check."""

from __future__ import annotations

import dataclasses

import numpy as np

from bench.report.model import Cell, ColumnRole
from bench.report.strength import CHECK, is_reference, reference_flags, strength_lines
from tests.helpers import CLEAN
from tests.helpers import attack_table as table

PGD = ("pgd8", "pgd", {"eps": 0.1, "steps": 20}, [0.5, 0.4, 0.5, 0.6])
AUTOATTACK = ("aa", "autoattack", {"eps": 0.1}, [0.2, 0.1, 0.2, 0.3])


def test_a_worst_case_over_the_reference_passes_and_names_it() -> None:
    data = table([("clean", "clean", {}, CLEAN), PGD, AUTOATTACK])
    assert reference_flags(data) == []
    assert strength_lines(data) == ["reference at L∞ 0.1: aa"]


def test_a_worst_case_that_leaves_the_reference_out_is_flagged_with_the_gap() -> None:
    data = table([("clean", "clean", {}, CLEAN), PGD, AUTOATTACK])
    worst = next(c for c in data.columns if c.role is ColumnRole.WORST_CASE)
    narrow = dataclasses.replace(worst, members=("pgd8",))
    data.columns = [c if c is not worst else narrow for c in data.columns]
    data.cells[("model", worst.label)] = Cell((0,), {0: np.asarray(PGD[3])}, {0: "h"})
    flags = reference_flags(data)
    assert [(f.check, f.column) for f in flags] == [(CHECK, worst.label)]
    assert "30.0 points above aa" in flags[0].message


def test_apgd_counts_as_a_reference_only_with_100_steps_and_3_restarts() -> None:
    weak = table([("apgd", "apgd_ce", {"eps": 0.1, "steps": 100, "n_restarts": 1}, [0.3] * 4)])
    strong = table([("apgd", "apgd_ce", {"eps": 0.1, "steps": 100, "n_restarts": 3}, [0.3] * 4)])
    assert not is_reference(weak.columns[0]) and is_reference(strong.columns[0])
    assert strength_lines(weak) == ["reference at L∞ 0.1: none (no AutoAttack or APGD-100×3 evaluation): the "
                                    "worst case there is unchecked"]


def test_the_square_check_reports_its_power() -> None:
    feeble = table([("clean", "clean", {}, CLEAN), PGD, ("sq", "square", {"eps": 0.1}, CLEAN)])
    biting = table([("clean", "clean", {}, CLEAN), PGD, ("sq", "square", {"eps": 0.1}, [0.6, 0.5, 0.5, 0.6])])
    (low,) = [line for line in strength_lines(feeble) if line.startswith("power")]
    (high,) = [line for line in strength_lines(biting) if line.startswith("power")]
    assert "0.0 ± 0.0 points below clean (low power" in low
    assert high.endswith("(powered)") and "37.5" in high
