"""Worker-side entry points: run one job, never raise, return a result or a failure.

These are top-level functions so that local worker processes and Ray tasks can import them.
Exceptions become `Failure` values carrying the traceback text, so the driver can record the
error in MLflow however the job was run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
import traceback
from dataclasses import dataclass

import torch

from bench.plan.jobs import EvalJob, TrainJob
from bench.run import stopping
from bench.run.resume_state import ResumeFile
from bench.run.runner import EvalResult, TrainResult, execute_eval, execute_train, load_dataset
from bench.run.step_progress import StepReporter
from bench.seeding import set_deterministic
from bench.suite.load import Suite


@dataclass(frozen=True)
class Failure:
    """A job that raised: the exception summary and its traceback."""

    key: str
    error: str
    traceback: str


def configure(threads: int, env: dict[str, str] | None = None, watch_parent: bool = False) -> None:
    """Per-process set-up: pinned GPU (via ``CUDA_VISIBLE_DEVICES``), thread count, determinism.

    The thread count is part of a job's numerics (float reductions split differently), so it
    is fixed per job, never derived from the number of workers.
    """
    os.environ.update(env or {})
    stopping.note_signals()  # whatever the parent shell left: stop at a meta-update, state saved
    set_deterministic(threads)
    keep_freed_memory()
    if watch_parent:
        parent = os.getppid()
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit


def keep_freed_memory() -> None:
    """Let glibc keep freed tensor memory for reuse instead of returning it to the kernel.

    CPU tensors of 128 KiB-32 MiB are otherwise mmapped and unmapped on every training step,
    and each reuse faults its pages in again: about 200,000 page faults and 5% of the time of
    a 10 s ProtoNet job in a fresh worker (a long-lived driver process happens to avoid them,
    so worker jobs ran slower than the same jobs run inline). Numerics are unaffected. No-op
    where the C library has no ``mallopt``.
    """
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
        mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def _exit_with_parent(parent: int) -> None:
    # A SIGKILLed driver cannot stop its workers; they notice the re-parenting and exit.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def preload(datasets: list[tuple[str, int]], device: str) -> None:
    """Warm a fresh worker: load the suite's data sets before its first job arrives.

    Submitted when a worker starts, so the imports and the data loading of every worker
    overlap with each other and with the driver's own start-up instead of delaying (and
    being timed as part of) each worker's first job.
    """
    import torch._dynamo  # noqa: F401 - torch.optim imports it on first use: 2-3 s off the first job

    for name, image_size in datasets:
        load_dataset(name, image_size, device)


def run_train(job: TrainJob, steps_dir: str | None, resume_path: str | None, device: str) -> TrainResult | Failure:
    """Train ``job``, resuming from ``resume_path`` where a state is there (`bench.run.resume_state`);
    its progress goes to ``steps_dir`` (`bench.run.step_progress`). A SIGINT or SIGTERM noted by
    `bench.run.stopping` stops it at the next meta-update, its state saved."""
    resume = ResumeFile(resume_path) if resume_path else None
    try:
        return execute_train(job, device, StepReporter(steps_dir, job.key), resume, stopping.check)
    except Exception as exc:  # noqa: BLE001 - recorded as a FAILED run by the driver
        return _failure(job.key, exc)


def run_eval(job: EvalJob, suite: Suite, checkpoint: bytes, device: str) -> EvalResult | Failure:
    """Evaluate ``job``; a SIGINT or SIGTERM abandons it after the current episode (re-run in full)."""
    try:
        return execute_eval(job, suite, checkpoint, device, stopping.check)
    except Exception as exc:  # noqa: BLE001
        return _failure(job.key, exc)


def _failure(key: str, exc: BaseException) -> Failure:
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        summary = f"out of memory: {exc}"
    else:
        summary = f"{type(exc).__name__}: {exc}"
    return Failure(key, summary, traceback.format_exc())
