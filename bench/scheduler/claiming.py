"""The driver's side of claims (`bench.tracking.claims`): a job starts only under its claim.

`Gate.admit` claims a job before it is handed to a slot. A job claimed by another live driver
is parked (`park`) and looked at again after a randomised `RECHECK_SECONDS` (two drivers that
withdrew from one key at once then try again at different moments); meanwhile this driver moves
on to other jobs, and says once which driver holds it. While the driver runs, a thread renews its
claims every `BEAT_SECONDS`; `close` releases them all, so a stopped driver's jobs are free at
once (a killed one's after the stale timeout, or at once on the same machine).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from bench.run import stopping
from bench.tracking.claims import BEAT_SECONDS, Claim, ClaimBoard

RECHECK_SECONDS = 2.0
T = TypeVar("T")


class Gate(Generic[T]):
    """Claims of one driver, and its tasks parked behind other drivers' claims."""

    def __init__(self, board: ClaimBoard, say: Callable[[str], None]) -> None:
        self.board, self.say = board, say
        self.parked: list[tuple[float, T]] = []  # (when to look again, task)
        self.announced: set[str] = set()
        self.stopped = threading.Event()
        self.beats = threading.Thread(target=self._beat, name="claim-beats", daemon=True)
        self.beats.start()

    def admit(self, key: str, name: str) -> bool:
        """Whether this driver holds ``key``'s claim now (claiming it if it is free)."""
        other = self.board.acquire(key, name)
        if other is None:
            return True
        if key not in self.announced:
            self.announced.add(key)
            self.say(f"waiting {name}: {describe(other)}; moving on to other jobs meanwhile")
        return False

    def park(self, task: T) -> None:
        self.parked.append((time.monotonic() + RECHECK_SECONDS * (0.5 + random.random()), task))

    def any_due(self) -> bool:
        now = time.monotonic()
        return any(when <= now for when, _ in self.parked)

    def due(self) -> list[T]:
        """The parked tasks whose time to look again has come (removed from the parking)."""
        now = time.monotonic()
        ready = [task for when, task in self.parked if when <= now]
        self.parked = [(when, task) for when, task in self.parked if when > now]
        return ready

    def release(self, key: str) -> None:
        self.board.release(key)

    @contextmanager
    def held(self, key: str, name: str) -> Iterator[None]:
        """Hold ``key`` for a short step (copying a finished run), waiting while another holds it."""
        while not self.admit(key, name):
            stopping.check()
            time.sleep(stopping.POLL_SECONDS)
        try:
            yield
        finally:
            self.release(key)

    def claimed_elsewhere(self) -> set[str]:
        """Keys held by other live drivers now."""
        return set(self.board.holders())

    def close(self) -> None:
        """Stop renewing and release every claim of this driver."""
        self.stopped.set()
        self.beats.join(timeout=2 * BEAT_SECONDS)
        self.board.release_all()

    def _beat(self) -> None:
        while not self.stopped.wait(BEAT_SECONDS):
            try:
                self.board.renew()
            except Exception:  # noqa: BLE001 - a missed beat is retried; the job goes on
                continue


def describe(claim: Claim) -> str:
    """``running in bench run 4242 on node7``, from a claim's holder."""
    host, _, pid = claim.holder.split(":")[:3]
    return f"running in bench run {pid} on {host}"
