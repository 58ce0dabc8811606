"""``--baselines``, ``--seeds``, ``--threats``, ``--datasets``: run or show part of a suite.

A filter keeps the jobs whose baseline (label or registry name), seed, threat (label or name) or
data setting (``glyphs 5-way 1-shot`` or the data set's name) matches one of its comma-separated
patterns (globs: ``maml*``, ``pgd*``). Filtering never changes a job's key: the selected jobs are
the very jobs of the whole suite, so they are found, reused and reported as such. A pattern
that matches nothing is an error (a typo must not silently select nothing).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from bench.errors import BenchError
from bench.plan.jobs import EvalJob, Plan, TrainJob


@dataclass(frozen=True)
class Selection:
    """Patterns per axis; an empty tuple keeps everything on that axis."""

    baselines: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()
    threats: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, baselines: str | None = None, seeds: str | None = None, threats: str | None = None,
                  datasets: str | None = None) -> Selection:
        def split(text: str | None) -> tuple[str, ...]:
            return tuple(p.strip() for p in (text or "").split(",") if p.strip())

        return cls(split(baselines), split(seeds), split(threats), split(datasets))

    def describe(self) -> str:
        parts = [f"--{axis} {','.join(values)}" for axis, values in
                 (("baselines", self.baselines), ("seeds", self.seeds), ("threats", self.threats),
                  ("datasets", self.datasets)) if values]
        return " ".join(parts)


def _names(job: TrainJob) -> dict[str, list[str]]:
    return {"baselines": [job.variant.baseline.label, job.variant.baseline.name], "seeds": [str(job.seed)]}


def _eval_names(job: EvalJob) -> dict[str, list[str]]:
    """An evaluation's threat and its test setting (a train job serves several settings)."""
    return {"threats": [job.threat.label, job.threat.name], "datasets": [job.setting.label, job.setting.name]}


def _matches(patterns: tuple[str, ...], names: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def select(plan: Plan, selection: Selection) -> Plan:
    """The plan restricted to the selected jobs (train jobs without a selected evaluation go)."""
    _refuse_unmatched(plan, selection)
    train_jobs, eval_jobs = [], {}
    for job in plan.train_jobs:
        names = _names(job)
        if not all(_matches(getattr(selection, axis), names[axis]) for axis in names):
            continue
        evals = tuple(e for e in plan.eval_jobs[job.key]
                      if all(_matches(getattr(selection, axis), n) for axis, n in _eval_names(e).items()))
        if evals:
            train_jobs.append(job)
            eval_jobs[job.key] = evals
    return Plan(plan.suite, tuple(train_jobs), eval_jobs)


def _refuse_unmatched(plan: Plan, selection: Selection) -> None:
    names: dict[str, set[str]] = {"baselines": set(), "seeds": set(), "datasets": set(), "threats": set()}
    for job in plan.train_jobs:
        for axis, values in _names(job).items():
            names[axis].update(values)
        for ev in plan.eval_jobs[job.key]:
            for axis, values in _eval_names(ev).items():
                names[axis].update(values)
    for axis in names:
        for pattern in getattr(selection, axis):
            if not _matches((pattern,), sorted(names[axis])):
                shown = ", ".join(sorted(names[axis])[:12])
                raise BenchError(f"--{axis} {pattern!r} matches nothing in suite {plan.suite.name!r}. Known: "
                                 f"{shown}{', ...' if len(names[axis]) > 12 else ''} (globs such as 'maml*' work).")
