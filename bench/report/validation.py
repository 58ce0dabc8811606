"""The validation curves behind a table: what each train run saw on its validation episodes.

A train run records its curve as the MLflow metric ``val_accuracy_pct`` by meta-update and the
step it kept as the tag ``selected_step`` (`bench.tracking.recording.record_train`). `gather` carries
both onto the eval records that used its checkpoint as plain tags (the report reads records
only), encoded by `encode`; `collect` decodes them per (row, seed) into `ValidationCurve`s,
which the HTML report draws (`bench.report.plots.validation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench.tracking.records import LABEL, SEED, RunRecord

CURVE = "train_validation"  # on eval records: "100:45.2;200:51" (step:accuracy %), in step order
SELECTED_STEP = "train_selected_step"  # on eval records: the meta-update whose weights were evaluated


@dataclass(frozen=True)
class ValidationCurve:
    """One train run's validation accuracy (%) by meta-update, and the step it kept (None when
    it kept its last weights without validating)."""

    points: tuple[tuple[int, float], ...]
    selected: int | None

    def accuracy_at(self, step: int) -> float | None:
        return dict(self.points).get(step)


def encode(points: Iterable[tuple[int, float]]) -> str:
    """``100:45.2;200:51`` (a tag value; accuracies at MLflow's float repr)."""
    return ";".join(f"{step}:{value!r}" for step, value in points)


def decode(text: str) -> tuple[tuple[int, float], ...]:
    items = (item.split(":", 1) for item in text.split(";") if item)
    return tuple(sorted((int(step), float(value)) for step, value in items))


def curves_by_row(records: Iterable[RunRecord]) -> dict[str, dict[int, ValidationCurve]]:
    """Row label -> seed -> its train run's curve, from the finished eval records of a table
    (every eval record of one train run carries the same curve)."""
    out: dict[str, dict[int, ValidationCurve]] = {}
    for record in records:
        text = record.tags.get(CURVE)
        if not text:
            continue
        step = record.tags.get(SELECTED_STEP, "")
        curve = ValidationCurve(decode(text), int(step) if step.isdigit() else None)
        out.setdefault(record.tags.get(LABEL, ""), {})[int(record.tags.get(SEED, "0"))] = curve
    return out
