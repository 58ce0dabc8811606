"""SIGINT and SIGTERM during `bench run`: noted by a handler, acted on at a safe point.

Python's default SIGINT handler raises KeyboardInterrupt wherever the main thread happens to
be, including inside a garbage-collection callback of SQLAlchemy or MLflow, where the exception
is printed as "ignored" and lost: the run then went on to the end and exited 0. A process
started from a background shell also inherits SIGINT *ignored*, and Python then installs no
handler at all. So `bench run` installs its own handlers for both signals, whatever it
inherited; they only record the signal, and the driver loop raises `Stopped` at the next
point where stopping is safe (between job completions, at most `POLL_SECONDS` later).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

POLL_SECONDS = 0.2
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report
_received: list[int] = []


class Stopped(KeyboardInterrupt):
    """The run was asked to stop by ``signum``; `exit_code` is what the CLI returns."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(signal.Signals(self.signum), 130)


def _note(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)


@contextmanager
def handled() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are recorded (see `check`); restored afterwards."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread; the caller's stay in force
        return
    previous = {sig: signal.signal(sig, _note) for sig in EXIT_CODES}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def note_signals() -> None:
    """In a worker process: SIGINT and SIGTERM are recorded for `check` for the rest of its life
    (a forked worker inherits the driver's handlers; a spawned one, or a Ray worker, does not)."""
    if threading.current_thread() is threading.main_thread():
        _received.clear()
        for sig in EXIT_CODES:
            signal.signal(sig, _note)


def check() -> None:
    """Raise `Stopped` if a signal arrived since `handled` began."""
    if _received:
        raise Stopped(_received[0])
