"""Worker-side entry points: run one job, never raise, return a result or a failure.

These are top-level functions so that local worker processes and Ray tasks can import them.
Exceptions become `Failure` values carrying the traceback text, so the driver can record the
error in MLflow however the job was run.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass

import torch

from bench.config import Suite
from bench.plan import EvalJob, TrainJob
from bench.runner import EvalResult, TrainResult, execute_eval, execute_train
from bench.seeding import set_deterministic


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
    set_deterministic(threads)
    if watch_parent:
        parent = os.getppid()
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A SIGKILLed driver cannot stop its workers; they notice the re-parenting and exit.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def run_train(job: TrainJob, device: str) -> TrainResult | Failure:
    try:
        return execute_train(job, device)
    except Exception as exc:  # noqa: BLE001 - recorded as a FAILED run by the driver
        return _failure(job.key, exc)


def run_eval(job: EvalJob, suite: Suite, checkpoint: bytes, device: str) -> EvalResult | Failure:
    try:
        return execute_eval(job, suite, checkpoint, device)
    except Exception as exc:  # noqa: BLE001
        return _failure(job.key, exc)


def _failure(key: str, exc: BaseException) -> Failure:
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        summary = f"out of memory: {exc}"
    else:
        summary = f"{type(exc).__name__}: {exc}"
    return Failure(key, summary, traceback.format_exc())
