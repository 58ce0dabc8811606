"""SIGINT and SIGTERM during `bench run`: noted by a handler, acted on at a safe point.

Python's default SIGINT handler raises KeyboardInterrupt wherever the main thread happens to
be, including inside a garbage-collection callback of SQLAlchemy or MLflow, where the exception
is printed as "ignored" and lost: the run then went on to the end and exited 0. A process
started from a background shell also inherits SIGINT *ignored*, and Python then installs no
handler at all. So `bench run` installs its own handlers for both signals, whatever it
inherited; they only record the signal, and the driver loop raises `Stopped` at the next
point where stopping is safe (between job completions, at most `POLL_SECONDS` later).

From start-up on: the ``bench`` command installs `at_once` before it imports anything heavy, so
a signal during its imports or planning ends it at once with 130/143 and no traceback (nothing
has been recorded by then). A signal sent to the whole process group (Slurm, ``scancel``, a
container stop, ``kill -- -PGID``) also reaches the workers: they start with both signals
blocked (`deferred`, inherited through fork and exec) until their own handlers are in place
(`note_signals`), so none dies of it; a running job stops at its next meta-update or episode,
and the driver, which got the same signal, records nothing of the stopped jobs.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

POLL_SECONDS = 0.2
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report
_received: list[int] = []
_early = False  # `at_once` is in force: a signal noted before `handled` began still counts


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


def _stop_now(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Stopped(signum)


@contextmanager
def _installed(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread; the caller's stay in force
        return
    previous = {sig: signal.signal(sig, handler) for sig in EXIT_CODES}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def at_once() -> Iterator[None]:
    """For a whole command: SIGINT and SIGTERM raise `Stopped` where they arrive, whatever the
    process inherited (a background shell leaves SIGINT ignored); `handled` narrows this to
    safe points for the part that records runs. Restored afterwards."""
    global _early
    _received.clear()
    _early = True
    try:
        with _installed(_stop_now):
            yield
    finally:
        _early = False


@contextmanager
def handled() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are recorded (see `check`); restored afterwards."""
    if not _early:
        _received.clear()  # a Python caller's earlier stopped run does not stop this one
    with _installed(_note):
        yield


@contextmanager
def interruptible() -> Iterator[None]:
    """Within `handled`: a step that may be abandoned midway because its writes are atomic
    (creating a SQLite store: seconds of migrations), so a signal raises `Stopped` at once."""
    check()
    with _installed(_stop_now):
        yield


@contextmanager
def deferred() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread while it starts worker processes: a child inherits
    the mask through fork and exec, so a group signal during its start-up waits (pending) until
    `note_signals` installs its handlers, instead of killing it before it can save anything.
    Signals that reach this process meanwhile are delivered when the block ends."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, list(EXIT_CODES))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def note_signals() -> None:
    """In a worker process: SIGINT and SIGTERM are recorded for `check` for the rest of its life
    (a forked worker inherits the driver's handlers; a spawned one, or a Ray worker, does not),
    then unblocked (`deferred`): one that arrived during start-up is noted now."""
    if threading.current_thread() is threading.main_thread():
        if not _early:  # a forked worker of a stopping command keeps what the driver noted
            _received.clear()
        for sig in EXIT_CODES:
            signal.signal(sig, _note)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, list(EXIT_CODES))


def exit_code_if_stopped(code: int) -> int:
    """``code``, or 130/143 when a signal arrived but its `Stopped` was swallowed on the way (in
    a garbage-collection callback, say): a stopped command never reports success."""
    return EXIT_CODES.get(signal.Signals(_received[0]), 130) if _received and code == 0 else code


def check() -> None:
    """Raise `Stopped` if a signal arrived since `handled` began."""
    if _received:
        raise Stopped(_received[0])
