"""CSV and JSON: every number of the report, one record per (data setting, baseline, column).

Accuracies, intervals, gaps and differences are in percent (4 decimals), p-values to 6
significant digits, so files are byte-stable across platforms' last-bit float noise.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from bench.report.results import Report, TableResult
from bench.report.tables import provenance
from bench.report.text import RULES
from bench.report.views import row_titles
from bench.stats import Paired
from bench.threats.base import ThreatKind

FIELDS = ("dataset", "way", "shot", "image_size", "query", "within", "baseline", "baseline_title", "transductive",
          "stochastic", "eot_draws", "column", "column_header", "column_kind", "threat_model", "members",
          "status", "mean", "ci_low", "ci_high", "ci_half", "rule", "n", "seeds_used", "seeds_expected",
          "bold", "tie", "sanity", "best_diff", "best_p", "best_p_holm", "gap", "gap_ci_half", "gap_p", "gap_test",
          "gap_unit", "published", "published_ci", "device_seconds", "seed_means", "reason")


def pct(value: float | None) -> float | None:
    return None if value is None or value != value else round(100 * float(value), 4)


def sig(value: float | None) -> float | None:
    return None if value is None or value != value else float(f"{value:.6g}")


def _paired(prefix: str, paired: Paired | None) -> dict[str, Any]:
    if paired is None:
        return {}
    return {prefix: pct(paired.diff), f"{prefix}_ci_half": pct(paired.half), f"{prefix}_p": sig(paired.p),
            f"{prefix}_test": paired.test, f"{prefix}_unit": paired.unit}


def cell_record(report: Report, table: TableResult, label: str, column: Any) -> dict[str, Any]:
    """All numbers of one cell (absent values are None)."""
    setting, result = table.data.setting, table.cells[(label, column.label)]
    cell = table.data.cells[(label, column.label)]
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    modes = table.data.modes.get(label)
    draws = column.param("eot_draws")
    out.update(dataset=setting.name, way=setting.way, shot=setting.shot, image_size=setting.image_size,
               query=setting.query, within=setting.within, baseline=label, baseline_title=row_titles(table)[label],
               transductive=modes.transductive if modes else None, stochastic=modes.stochastic if modes else None,
               eot_draws=(int(draws) if modes and modes.stochastic else 1) if draws is not None else None,
               column=column.label,
               column_header=column.header, column_kind=column.kind_text,
               threat_model=column.threat_model.text() if column.threat_model else None,
               members=" | ".join(column.members), status=result.status, seeds_used=result.seeds_used,
               seeds_expected=result.seeds_expected, bold=result.bold, tie=result.tie, reason=result.reason,
               device_seconds=sig(result.device_seconds),
               sanity="; ".join(sorted({f.check for f in table.flags_of(label, column.label)})) or None,
               seed_means=" ".join(f"{s}:{pct(float(np.mean(cell.per_seed[s])))}" for s in sorted(cell.per_seed)))
    if result.interval is not None:
        iv = result.interval
        out.update(mean=pct(iv.mean), ci_low=pct(iv.low), ci_high=pct(iv.high), ci_half=pct(iv.half),
                   rule=RULES[iv.rule].format(level=table.options.level), n=iv.n)
    versus = next((c for c in table.comparisons if c.column == column.label and c.other == label), None)
    if versus is not None and versus.paired is not None:
        out.update(best_diff=pct(versus.paired.diff), best_p=sig(versus.paired.p), best_p_holm=sig(versus.p_holm))
    out.update(_paired("gap", table.gaps.get((label, column.label))))
    paper = report.published.get((label, setting.label))
    if paper is not None and column.kind is ThreatKind.CLEAN:
        out.update(published=float(paper.mean), published_ci=float(paper.ci) if paper.ci else None)
    return out


def records(report: Report) -> list[dict[str, Any]]:
    return [cell_record(report, table, label, column) for table in report.tables
            for label, _ in table.data.rows for column in table.data.columns]


def render_csv(report: Report) -> str:
    """``leaderboard.csv``; two ``#`` comment lines say how it was made (``pandas: comment="#"``)."""
    buffer = io.StringIO()
    buffer.write(f"# {provenance(report)}\n# accuracies in percent; best_*: the column's best minus this row "
                 f"(paired); gap: clean minus this column\n")
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in records(report):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def render_json(report: Report) -> str:
    """``leaderboard.json``: provenance, options, per-table facts and every cell record."""
    tables = [{"dataset": t.data.setting.name, "way": t.data.setting.way, "shot": t.data.setting.shot,
               "image_size": t.data.setting.image_size, "query": t.data.setting.query,
               **({"within": t.data.setting.within} if t.data.setting.within else {}),
               "rows": [label for label, _ in t.data.rows], "columns": [c.label for c in t.data.columns],
               "seeds": list(t.data.seeds), "facts": t.data.facts, "comparisons": len(t.comparisons),
               "rules": [RULES[r].format(level=t.options.level) for r in t.rules]} for t in report.tables]
    options = report.tables[0].options if report.tables else None
    document = {"suite": report.suite.name, "generated_by": report.command, "tracking_uri": report.uri,
                "filters": report.filters, "ignored_records": report.ignored,
                "options": None if options is None else {"ci": options.ci, "test": options.test,
                                                         "level": options.level, "alpha": options.alpha},
                "tables": tables, "cells": records(report)}
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
