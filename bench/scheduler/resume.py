"""Resume planning: for every job, run it, skip it, or reuse another suite's run, and why.

A job is found by key anywhere in the store (any suite's experiment), and a finished run
counts only when its code fingerprint equals today's (`bench.plan.fingerprint`): a run made by
other code is *stale* and is re-run unless the user keeps it (``--reuse-stale``, recorded on
the run). ``--rerun PATTERN`` (a baseline label, threat label or job key; globs allowed) and
``--force`` re-run finished jobs on request. `bench run` and `bench run --dry-run` both read
their decisions from here, so the dry run says exactly what the run will do.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from bench.plan.fingerprint import Fingerprint, changed_files, eval_fingerprint, train_fingerprint
from bench.plan.jobs import EvalJob, Plan, TrainJob
from bench.run.resume_state import ResumeFile, state_folder
from bench.tracking import FinishedRun

Action = Literal["run", "skip", "copy"]


@dataclass(frozen=True)
class ResumeOptions:
    """``bench run`` flags: keep stale runs, re-run jobs matching patterns, re-run everything."""

    reuse_stale: bool = False
    rerun: tuple[str, ...] = ()
    force: bool = False


@dataclass(frozen=True)
class Decision:
    """What happens to one job.

    Attributes:
        action: ``run`` (train or evaluate now), ``skip`` (this suite's finished run stands) or
            ``copy`` (another suite's finished run is copied into this suite's experiment).
        reason: why, for people (``new``, ``stale: baselines/x.py changed``, ``--force``...).
        found: the finished run that is kept or copied. stale: kept although stale.
        fingerprint: today's code fingerprint of the job.
    """

    action: Action
    reason: str
    found: FinishedRun | None
    stale: bool
    fingerprint: Fingerprint

    def describe(self) -> str:
        if self.action == "run":
            return "to run" if self.reason == "new" else f"to run: {self.reason}"
        where = f"reused from suite {self.found.suite!r}" if self.action == "copy" and self.found else "finished"
        return where + (" (stale, kept by --reuse-stale)" if self.stale else "")


def decide(plan: Plan, finished: list[FinishedRun], experiment_id: str | None,
           options: ResumeOptions) -> dict[str, Decision]:
    """Job key -> decision, for every train and eval job of ``plan``."""
    by_key: dict[str, list[FinishedRun]] = {}
    for run in finished:
        by_key.setdefault(run.key, []).append(run)
    decisions: dict[str, Decision] = {}
    for job in plan.train_jobs:
        train = _decide(job, train_fingerprint(job), by_key, experiment_id, options, None)
        decisions[job.key] = train
        for ev in plan.eval_jobs[job.key]:
            retrained = None if train.action != "run" else ("new" if train.reason == "new" else "retrained")
            decisions[ev.key] = _decide(ev, eval_fingerprint(ev), by_key, experiment_id, options, retrained)
    return decisions


def decide_again(job: TrainJob | EvalJob, finished: list[FinishedRun], experiment_id: str | None,
                 options: ResumeOptions) -> Decision:
    """A job's decision from the store as it is now (``finished``: its key's finished runs), as
    for a train job not run by this driver: after another driver ran it meanwhile."""
    fingerprint = train_fingerprint(job) if isinstance(job, TrainJob) else eval_fingerprint(job)
    return _decide(job, fingerprint, {job.key: finished}, experiment_id, options, None)


def may_be_done_elsewhere(decision: Decision) -> bool:
    """Whether another driver may have finished the job this one is about to run: true unless it
    runs on request (``--force``, ``--rerun``) or evaluates a model this driver retrained."""
    return decision.reason == "new" or decision.reason.startswith("stale")


def _decide(job: TrainJob | EvalJob, fingerprint: Fingerprint, by_key: dict[str, list[FinishedRun]],
            experiment_id: str | None, options: ResumeOptions, forced_reason: str | None) -> Decision:
    requested = forced_reason or _requested(job, options)
    candidates = by_key.get(job.key, [])
    if requested or not candidates:
        return Decision("run", requested or "new", None, False, fingerprint)
    best = _best(candidates, fingerprint.digest, experiment_id)
    stale = best.fingerprint != fingerprint.digest
    if stale and not options.reuse_stale:
        return Decision("run", stale_reason(best, fingerprint), best, False, fingerprint)
    action: Action = "skip" if best.experiment_id == experiment_id else "copy"
    return Decision(action, "", best, stale, fingerprint)


def stale_reason(run: FinishedRun, current: Fingerprint) -> str:
    if not run.fingerprint:
        return "stale: recorded before code fingerprints existed"
    changed = changed_files(run.files, current)
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return f"stale: code changed since it ran ({shown or 'fingerprint differs'})"


def _best(candidates: list[FinishedRun], digest: str, experiment_id: str | None) -> FinishedRun:
    """Prefer runs of today's code, then this suite's own, then the latest."""
    return max(candidates, key=lambda r: (r.fingerprint == digest, r.experiment_id == experiment_id,
                                          r.start_time))


def _requested(job: TrainJob | EvalJob, options: ResumeOptions) -> str | None:
    if options.force:
        return "--force"
    names = [job.key]
    if isinstance(job, TrainJob):
        names.append(job.variant.baseline.label)
    else:
        names += [job.train.key, job.train.variant.baseline.label, job.threat.label]
    for pattern in options.rerun:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return f"--rerun {pattern}"
    return None


def unmatched(plan: Plan, options: ResumeOptions) -> list[str]:
    """The ``--rerun`` patterns that match no job of ``plan`` (a typo must not pass silently)."""
    jobs: list[TrainJob | EvalJob] = [*plan.train_jobs, *plan.all_eval_jobs()]
    return [pattern for pattern in options.rerun
            if not any(_requested(job, ResumeOptions(rerun=(pattern,))) for job in jobs)]


def resumes_from(tracking_uri: str, job: TrainJob, decision: Decision) -> int | None:
    """The step a train job that will run resumes from (its saved state), None from scratch."""
    if decision.action != "run":
        return None
    step = ResumeFile.for_job(state_folder(tracking_uri), job.key, decision.fingerprint.digest).saved_step()
    return step or None
