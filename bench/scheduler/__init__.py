"""Running a suite's plan: data first (so bad input writes nothing), then the jobs."""

from bench.scheduler.local import run_suite

__all__ = ["run_suite"]
