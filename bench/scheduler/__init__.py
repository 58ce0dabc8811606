"""Running a suite's plan: data first (so bad input writes nothing), then the DAG."""

from __future__ import annotations

from dataclasses import dataclass

from bench.plan.jobs import Plan, make_plan
from bench.registry import DATASETS
from bench.run import stopping
from bench.scheduler.backend import Backend
from bench.scheduler.dag import Driver
from bench.scheduler.model_eval import check_user_models
from bench.scheduler.outcomes import JobOutcome, summary
from bench.scheduler.progress import Progress
from bench.scheduler.resume import ResumeOptions
from bench.suite.load import Suite, data_needed
from bench.tracking import Tracker
from bench.tracking.recording import results_columns

__all__ = ["RunOptions", "ResumeOptions", "run_suite", "JobOutcome", "summary"]


@dataclass(frozen=True)
class RunOptions:
    """How to run: ``bench run`` flags.

    Attributes:
        device: auto, cpu or cuda. workers: slots (default: every GPU, else every core).
        jobs_per_gpu: jobs sharing one GPU. memory_per_job_gb: instead, fill each GPU's free
            memory. threads: torch threads per job (part of the numerics: fixed, not derived
            from the worker count). retries: re-runs of a failed job. backend: local or ray.
        address: Ray cluster address (None starts a local Ray instance).
        resume: what to do with finished and stale runs (`bench.scheduler.resume`).
    """

    device: str = "auto"
    workers: int | None = None
    jobs_per_gpu: int = 1
    memory_per_job_gb: float | None = None
    threads: int = 1
    retries: int = 0
    backend: str = "local"
    address: str | None = None
    resume: ResumeOptions = ResumeOptions()


def check_data(suite: Suite) -> None:
    """Every data set the suite reads must load (glyphs builds itself); raises `DataError`."""
    for name, size in data_needed(suite):
        DATASETS.get(name)().ensure(None, size)


def make_backend(options: RunOptions, datasets: list[tuple[str, int]] | None = None) -> Backend:
    """The backend for ``options``; local workers preload ``datasets`` as they start."""
    if options.backend == "ray":
        from bench.scheduler.ray_backend import RayBackend

        return RayBackend(options.address, options.device, options.jobs_per_gpu, options.threads)
    from bench.scheduler.local import LocalBackend
    from bench.scheduler.slots import make_slots

    return LocalBackend(make_slots(options.device, options.workers, options.jobs_per_gpu,
                                   options.threads, options.memory_per_job_gb), datasets)


def run_suite(suite: Suite, tracking_uri: str | None, options: RunOptions,
              progress: Progress | None = None, plan: Plan | None = None) -> list[JobOutcome]:
    """Run every unfinished job of ``suite``; returns one outcome per train job."""
    from bench.plan import fingerprint

    fingerprint.clear_cache()  # the code on disk may have changed since this process read it
    check_data(suite)
    check_user_models(suite, plan)  # a researcher's own networks, on one real episode
    with stopping.handled():
        backend = make_backend(options, data_needed(suite))  # workers warm up while the driver plans
        try:
            plan = plan or make_plan(suite)
            with stopping.interruptible():  # a new store is made in a temporary file, renamed when complete
                tracker = Tracker(tracking_uri, suite.name, description=suite.description)
            tracker.publish_results_view(results_columns(plan))
            progress = progress or Progress()
            driver = Driver(plan, tracker, backend, options.retries, progress, options.resume)
        except BaseException:
            backend.shutdown(kill=True)
            raise
        outcomes = driver.run()
        if fingerprint.UNHASHED:
            progress.line(f"note: user modules without Python source are not in the code fingerprint (a change "
                          f"there does not make runs stale): {', '.join(sorted(fingerprint.UNHASHED))}")
        served = tracker.uri.startswith(("http://", "https://"))
        how = "" if served else f" (after `mlflow ui --backend-store-uri {tracker.uri}`)"
        progress.line(f"MLflow runs table with the accuracy columns: {tracker.results_url()}{how}")
        return outcomes
