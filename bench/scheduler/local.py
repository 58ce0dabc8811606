"""The local backend: train jobs one after another in this process, each followed by its
evaluations. Data sets are loaded (and checked) before the tracking store is touched, so a
missing data set stops the run with nothing written to MLflow."""

from __future__ import annotations

import torch

from bench.config import Suite
from bench.data.dataset import ImageDataset
from bench.plan import Plan, make_plan
from bench.progress import Progress
from bench.registry import DATASETS
from bench.runner import Context, JobOutcome, run_job
from bench.seeding import set_deterministic
from bench.tracking import Tracker


def load_datasets(suite: Suite, device: torch.device) -> dict[tuple[str, int], ImageDataset]:
    """Every data set the suite uses, on ``device``; raises `DataError` if one is missing."""
    needed = sorted({(d.name, d.image_size) for d in suite.datasets})
    return {(name, size): DATASETS.get(name)().ensure(None, size).to(device) for name, size in needed}


def summary(outcome: JobOutcome) -> str:
    """One line per finished train job: status, time, accuracies."""
    if outcome.failed:
        head = "FAILED"
    elif outcome.trained or outcome.accuracies:
        head = "done"
    else:
        return f"skip    {outcome.job.name} (already finished)"
    cells = "  ".join(f"{k} {100 * m:.1f}±{100 * h:.1f}" for k, (m, h) in outcome.accuracies.items())
    trained = f"trained {outcome.seconds:.1f}s" if outcome.trained else "checkpoint reused"
    failures = ("  failed: " + "; ".join(outcome.failed)) if outcome.failed else ""
    return f"{head:7} {outcome.job.name}  [{trained}]  {cells}{failures}"


def run_suite(suite: Suite, tracking_uri: str | None, device: torch.device,
              progress: Progress | None = None, plan: Plan | None = None) -> list[JobOutcome]:
    """Run every unfinished job of ``suite``; returns one outcome per train job."""
    progress = progress or Progress()
    plan = plan or make_plan(suite)
    set_deterministic()
    datasets = load_datasets(suite, device)
    tracker = Tracker(tracking_uri, suite.name)
    finished = tracker.finished()
    ctx = Context(tracker, device, datasets, {}, suite, progress)
    outcomes = []
    for job in plan.train_jobs:
        outcome = run_job(ctx, job, plan.eval_jobs[job.key], finished)
        progress.line(summary(outcome))
        outcomes.append(outcome)
    return outcomes
