"""``bench run SUITE --dry-run --summary``: the plan as counts per baseline and job kind.

A reference suite has hundreds of jobs (robust-omniglot: 5 train jobs, 365 evaluations); the
full dry run lists each. The summary gives, per baseline label, its train jobs and its
evaluations per threat kind, each as ``to run / total``, then the totals.
"""

from __future__ import annotations

from collections import Counter

from bench.plan.jobs import Plan
from bench.registry import THREATS
from bench.scheduler.resume import Decision

TRAIN = "train"


def summary_lines(plan: Plan, decisions: dict[str, Decision]) -> list[str]:
    """One line per baseline label: ``train 1/1 · attack 12/12 · corruption 0/54``, then totals."""
    total: Counter[tuple[str, str]] = Counter()  # (kind, "run" | "all")
    rows: dict[str, Counter[tuple[str, str]]] = {}
    for job in plan.train_jobs:
        counts = rows.setdefault(job.variant.baseline.label, Counter())
        kinds = [(TRAIN, job.key)] + [(str(THREATS.get(e.threat.name).kind), e.key) for e in plan.eval_jobs[job.key]]
        for kind, key in kinds:
            to_run = decisions[key].action == "run"
            counts.update({(kind, "all"): 1, (kind, "run"): int(to_run)})
            total.update({(kind, "all"): 1, (kind, "run"): int(to_run)})
    order = [TRAIN, *dict.fromkeys(kind for kind, _ in sorted(total) if kind != TRAIN)]
    width = max(len(label) for label in [*rows, "total"])
    lines = [f"{label:<{width}}  {_cells(counts, order)}" for label, counts in rows.items()]
    return [*lines, f"{'total':<{width}}  {_cells(total, order)}", "(to run / planned, per job kind)"]


def _cells(counts: Counter[tuple[str, str]], order: list[str]) -> str:
    return " · ".join(f"{kind} {counts[(kind, 'run')]}/{counts[(kind, 'all')]}" for kind in order
                      if counts[(kind, "all")])
