"""The local backend: one worker process per slot, each pinned to its GPU or CPU threads.

A single slot runs jobs inline in the driver process (no process start-up, and Ctrl-C
behaves as for any command). Several slots run one single-process executor each, created
with the slot's ``CUDA_VISIBLE_DEVICES`` before CUDA initialises, so every job of that
worker sees exactly its GPU (GPU workers are spawned; single-threaded CPU workers are forked,
see `start_method`). Workers start when the backend is made and load the suite's
data sets at once (`bench.run.worker.preload`): start-up overlaps across workers and with the
driver's planning instead of delaying each slot's first job. A worker that dies (killed,
out of memory) fails its job and is replaced; the other slots keep working.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from bench.registry import BASELINES
from bench.run import stopping
from bench.run.worker import configure, preload
from bench.scheduler.slots import Slot


def start_method(slot: Slot) -> str:
    """``fork`` for single-threaded CPU slots, ``spawn`` otherwise.

    A forked worker inherits the driver's imports, so it starts in a fraction of a second
    where a spawned one spends about 4 s importing torch and this package (measured: 9 s of
    start-up per worker became 3.5 s). Forking is unsafe in the other cases: CUDA cannot be
    used in a forked child, and GNU OpenMP hangs in a child that runs more than one thread
    after the parent used its thread pool (seen here with torch's matmul).
    """
    cpu_only = slot.device == "cpu" and slot.threads == 1
    return "fork" if cpu_only and "fork" in multiprocessing.get_all_start_methods() else "spawn"


def start_worker(threads: int, env: dict[str, str]) -> None:
    """A worker process's set-up (`bench.run.worker.configure`), then the baseline registry loaded,
    so that the Config classes of user and project baselines (modules that exist only once the
    registry imports their files) can be unpickled with the first job."""
    configure(threads, env, watch_parent=True)
    BASELINES.names()


STOP_GRACE_SECONDS = 30.0  # for a stopped train job to reach its next meta-update and save


class InlineExecutor(Executor):
    """Runs each submitted call immediately in this process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            future.set_exception(exc)
        return future


class LocalBackend:
    """Slots on this machine; ``submit`` places a job on a free slot."""

    def __init__(self, slots: list[Slot], datasets: list[tuple[str, int]] | None = None) -> None:
        self.slots = slots
        self.datasets = datasets or []
        self.capacity = len(slots)
        self.inline = len(slots) == 1  # jobs run in the caller's thread (and nothing forks)
        self.free = list(range(len(slots)))
        self.running: dict[int, Future] = {}  # slot -> its job in flight
        self.executors: dict[int, Executor] = {}
        if len(slots) == 1:
            configure(slots[0].threads)
            self.executors[0] = InlineExecutor()
            preload(self.datasets, slots[0].device)
        else:
            for index in range(len(slots)):
                self._executor(index)

    def _executor(self, index: int) -> Executor:
        if index not in self.executors:
            slot = self.slots[index]
            self.executors[index] = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context(start_method(slot)),
                initializer=start_worker, initargs=(slot.threads, slot.env))
            with stopping.deferred():  # the worker starts with SIGINT/SIGTERM pending, not fatal
                # Started now, not at the first job; a failed preload resurfaces in that job.
                self.executors[index].submit(preload, self.datasets, slot.device)
        return self.executors[index]

    def next_slot(self) -> str:
        """The label of the slot the next `submit` uses (for the progress display)."""
        return self.slots[self.free[0]].label if self.free else ""

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[Future, str]:
        """Run ``fn(*args, device)`` on a free slot; returns the future and the slot's label."""
        index = self.free.pop(0)
        slot = self.slots[index]
        try:
            future = self._submit_to(index, fn, *args, slot.device)
        except BaseException:
            self.free.append(index)
            raise
        self.running[index] = future
        future.add_done_callback(functools.partial(self._release, index))
        return future, slot.label

    def _submit_to(self, index: int, fn: Callable[..., Any], *args: Any) -> Future:
        try:
            return self._executor(index).submit(fn, *args)
        except BrokenProcessPool:  # the worker died while idle (killed, or during its preload)
            self.executors.pop(index).shutdown(wait=False, cancel_futures=True)
            return self._executor(index).submit(fn, *args)

    def _release(self, index: int, future: Future) -> None:
        self.running.pop(index, None)
        if future.exception() is not None and not isinstance(self.executors.get(index), InlineExecutor):
            # A crashed worker leaves a broken pool: start a fresh process for this slot.
            self.executors.pop(index).shutdown(wait=False, cancel_futures=True)
        self.free.append(index)
        self.free.sort()

    def shutdown(self, kill: bool = False) -> None:
        """Release the workers; ``kill``: SIGTERM them first, so each running train job saves its
        resumable state at its next meta-update (`bench.run.stopping`), then, after at most
        `STOP_GRACE_SECONDS` for the running jobs to return, end them."""
        processes = [p for e in self.executors.values() if isinstance(e, ProcessPoolExecutor)
                     for p in list(getattr(e, "_processes", {}).values())]
        if kill and processes:
            for process in processes:
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGTERM)
            wait(self.running.values(), timeout=STOP_GRACE_SECONDS)
            for process in processes:
                process.kill()
        for executor in self.executors.values():
            executor.shutdown(wait=not kill, cancel_futures=True)
        self.executors.clear()
