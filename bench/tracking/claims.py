"""Claims: which `bench run` process is running which job, kept in the store itself.

Any number of drivers (same suite, overlapping suites, other machines) may share one store;
each job must still run once. Before a driver starts a job it claims the job's key; the claim is
a RUNNING run in the store-wide experiment `EXPERIMENT` (so the MLflow UI shows what runs where),
tagged with the key and its holder, renewed (`renew`) while the job runs and deleted when its
result is recorded (`release`).

Mutual exclusion needs no compare-and-set, which MLflow lacks: a driver first writes its claim,
then looks for other live claims of the key and withdraws its own if there is one (Lamport's
"announce, then check"). Of two drivers racing for a key, the one that checks second sees the
other's claim, so both can never go ahead; both may withdraw, and then both retry later at
random moments (`bench.scheduler.claiming`). This holds on any store whose writes are visible to
the next read: SQLite, and a `mlflow server` on one database.

A claim is dead when its holder is: on this machine (same host name and process-id namespace)
when the process is gone, at once; elsewhere when its beat has not changed for
``stale_seconds`` of this driver's own clock (so clocks of different machines never need to
agree). A dead claim is ended (status KILLED) by whoever finds it, and its job taken over.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from bench.tracking.store import open_client, retried

EXPERIMENT = "bench-claims"  # store-wide: a key is claimed once whichever suite runs it
KEY, HOLDER, BEAT, NAME = "bench.claim.key", "bench.claim.holder", "bench.claim.beat", "bench.claim.job"
BEAT_SECONDS = 5.0
STALE_SECONDS = float(os.environ.get("BENCH_CLAIM_TIMEOUT", "60"))  # 12 missed beats


@dataclass(frozen=True)
class Claim:
    """One claim as read from the store: its run, job key, holder and last beat."""

    run_id: str
    key: str
    holder: str
    beat: str
    job: str

    @property
    def host(self) -> str:
        return self.holder.split(":")[0]


def this_process() -> str:
    """``host:pid-namespace:pid:token``; the token tells apart two lives of one pid."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").rstrip("]")
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}:{namespace}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_gone(holder: str, here: str) -> bool:
    """Whether ``holder`` ran on this machine (and process-id namespace) and has exited."""
    host, namespace, pid = holder.split(":")[:3]
    if [host, namespace] != here.split(":")[:2]:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A process that has exited but is not yet reaped by its parent (it still answers kill 0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"  # the state follows the command name in parentheses


class ClaimBoard:
    """This driver's view of the claims in the store at ``uri``; thread-safe (`renew` runs on a
    thread of its own)."""

    def __init__(self, uri: str, stale_seconds: float = STALE_SECONDS) -> None:
        self.client = open_client(uri, create=True)
        self.experiment_id = self._experiment()
        self.holder, self.stale_seconds = this_process(), stale_seconds
        self.held: dict[str, str] = {}  # key -> run id of our claim
        self.seen: dict[str, tuple[str, float]] = {}  # run id -> (beat, when we first saw it)
        self.lock = threading.Lock()

    @retried
    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name(EXPERIMENT)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(EXPERIMENT))
        except mlflow.exceptions.MlflowException:  # another driver created it first
            return str(self.client.get_experiment_by_name(EXPERIMENT).experiment_id)

    def acquire(self, key: str, job: str) -> Claim | None:
        """Claim ``key`` for this driver: None when it is ours, else a live other holder's claim."""
        with self.lock:
            if key in self.held:
                return None
            others = self._live(key)
            if others:
                return others[0]
            mine = self._create(key, job)
            others = self._live(key, besides=mine)
            if others:
                self._delete(mine)
                return others[0]
            self.held[key] = mine
            return None

    def holders(self) -> dict[str, Claim]:
        """Key -> the live claim of another driver, for every key claimed elsewhere."""
        with self.lock:
            live = [c for c in self._claims(None) if c.holder != self.holder and self._alive(c)]
            return {claim.key: claim for claim in live}

    def renew(self) -> None:
        """Beat every claim this driver holds (called every `BEAT_SECONDS`)."""
        with self.lock:
            for run_id in list(self.held.values()):
                self._beat(run_id)

    def release(self, key: str) -> None:
        with self.lock:
            run_id = self.held.pop(key, None)
            if run_id is not None:
                self._delete(run_id)

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)

    def _live(self, key: str, besides: str = "") -> list[Claim]:
        claims = [c for c in self._claims(key) if c.run_id != besides]
        for claim in [c for c in claims if not self._alive(c)]:
            self._end(claim.run_id)
        return [c for c in claims if self._alive(c)]

    def _alive(self, claim: Claim) -> bool:
        if claim.holder == self.holder:
            return True
        if process_gone(claim.holder, self.holder):
            return False
        now = time.monotonic()
        beat, since = self.seen.get(claim.run_id, ("", now))
        if beat != claim.beat:
            self.seen[claim.run_id] = (claim.beat, now)
            return True
        return now - since < self.stale_seconds

    @retried
    def _claims(self, key: str | None) -> list[Claim]:
        where = "attributes.status = 'RUNNING'" + (f" and tags.`{KEY}` = '{key}'" if key else "")
        runs = self.client.search_runs([self.experiment_id], filter_string=where, max_results=50_000)
        return [_claim(run) for run in runs if KEY in run.data.tags]

    @retried
    def _create(self, key: str, job: str) -> str:
        tags = {KEY: key, HOLDER: self.holder, BEAT: str(time.time()), NAME: job}
        return str(self.client.create_run(self.experiment_id, run_name=job, tags=tags).info.run_id)

    @retried
    def _beat(self, run_id: str) -> None:
        self.client.set_tag(run_id, BEAT, str(time.time()))

    @retried
    def _end(self, run_id: str) -> None:
        self.client.set_terminated(run_id, "KILLED")  # its holder died: taken over

    @retried
    def _delete(self, run_id: str) -> None:
        self.client.delete_run(run_id)


def _claim(run: Any) -> Claim:
    tags = run.data.tags
    return Claim(run.info.run_id, tags[KEY], tags.get(HOLDER, "?:?:0"), tags.get(BEAT, ""), tags.get(NAME, ""))
