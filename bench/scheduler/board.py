"""The state behind `bench run`'s progress display: a bar over every job that will run, an
ETA, and one line per running job.

The bar counts train AND eval jobs of the plan that actually run (finished and reused jobs
are left out), so its total is true from the start; a job counts once however many attempts
it takes, and the evaluations of a train job that failed for good count as done (failed).
Train and eval jobs take very different times, so the ETA is estimated per kind: the mean
measured duration of the finished jobs of a kind times the jobs of that kind still to run
(less the time the running ones have already spent), summed over kinds and divided by the
slots that can still be kept busy. It reads ``?`` until every kind still to run has a
measured job. The driver measures wall time from submission to completion. A running train
job reports its steps (`bench.run.step_progress`): its row shows ``step 120/300``, and its time
left is estimated from its own pace (elapsed x steps left / steps done) instead of the mean.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tqdm import tqdm

from bench.plan.jobs import EvalJob, TrainJob

KINDS = ("train", "eval")
Steps = Callable[[str], "tuple[int, int] | None"]
MAX_ROWS = 8  # running jobs listed; the rest are counted
MIN_BAR = 10  # columns the bar itself needs; with fewer, the counts are shortened, then the bar dropped
BAR = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed} elapsed{postfix}]"


def kind_of(job: TrainJob | EvalJob) -> str:
    return "train" if isinstance(job, TrainJob) else "eval"


@dataclass(frozen=True)
class Running:
    """A job in progress: its phase, the train job's name, the threat (evals), slot, start."""

    phase: str
    label: str
    threat: str
    since: float
    slot: str = ""
    key: str = ""


class JobBoard:
    """Counts, durations and running jobs of one run; thread-safe (a display thread reads it).

    Attributes:
        title: the bar's description. totals: jobs to run per kind. capacity: parallel slots.
        clock: seconds (monotonic), injectable for tests. steps: job key -> (step, total) that
            a running train job last reported, or None (`bench.run.step_progress.StepFiles.read`).
    """

    def __init__(self, title: str, totals: dict[str, int], capacity: int,
                 clock: Callable[[], float] = time.monotonic, steps: Steps = lambda key: None) -> None:
        self.title, self.totals, self.capacity, self.clock = title, dict(totals), max(1, capacity), clock
        self.steps = steps
        self.done = dict.fromkeys(KINDS, 0)
        self.durations: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.running: dict[str, Running] = {}
        self.began = clock()
        self.lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def start(self, job: TrainJob | EvalJob, slot: str = "") -> None:
        """``job`` is handed to the backend, on ``slot`` where the backend can say which."""
        threat = job.threat.label if isinstance(job, EvalJob) else ""
        label = job.train.name if isinstance(job, EvalJob) else job.name
        with self.lock:
            self.running[job.key] = Running(kind_of(job), label, threat, self.clock(), slot, job.key)

    def end(self, job: TrainJob | EvalJob, success: bool, final: bool = True) -> None:
        """``job`` came back; a success is measured for the ETA, a ``final`` outcome counted."""
        with self.lock:
            entry = self.running.pop(job.key, None)
            if entry is not None and success:
                self.durations[entry.phase].append(self.clock() - entry.since)
            if final:
                self.done[kind_of(job)] += 1

    def drop(self, kind: str, count: int) -> None:
        """``count`` jobs of ``kind`` will not run after all (their train job failed)."""
        with self.lock:
            self.done[kind] += count

    def eta(self) -> float | None:
        """Seconds until every job is done, or None before each kind left has been measured."""
        with self.lock:
            return self._eta(self.clock())

    def _eta(self, now: float) -> float | None:
        """`eta` with the lock held (see the module docstring for the estimate)."""
        work, longest, jobs_left = 0.0, 0.0, 0
        for kind in KINDS:
            left = self.totals.get(kind, 0) - self.done[kind]
            if left <= 0:
                continue
            if not self.durations[kind]:
                return None
            mean = sum(self.durations[kind]) / len(self.durations[kind])
            rest = [self._time_left(r, now, mean) for r in self.running.values() if r.phase == kind]
            work += sum(rest) + max(left - len(rest), 0) * mean
            longest = max([longest, *rest])
            jobs_left += left
        return max(work / max(1, min(self.capacity, jobs_left)), longest)

    def _time_left(self, entry: Running, now: float, mean: float) -> float:
        """A running job's seconds to go: from its reported pace where it reports steps."""
        elapsed, reported = now - entry.since, self.steps(entry.key) if entry.phase == "train" else None
        if reported is not None and reported[0] > 0:
            step, total = reported
            return elapsed * (total - step) / step
        return max(mean - elapsed, 0.0)

    def lines(self, columns: int, rows: int) -> list[str]:
        """The bar, then one line per running job (oldest first); nothing for a run of no jobs."""
        with self.lock:
            if not self.total:
                return []
            now = self.clock()
            bar = self._bar(now, columns)
            entries = sorted(self.running.values(), key=lambda r: r.since)
        room = max(0, min(MAX_ROWS, rows - 1))
        shown = entries if len(entries) <= room else entries[:max(0, room - 1)]
        more = [f"  … and {len(entries) - len(shown)} more running"] if len(shown) < len(entries) else []
        return [bar, *(row(entry, now, self.steps(entry.key)) for entry in shown), *more]

    def _bar(self, now: float, columns: int) -> str:
        """``tiny: jobs  40%|████▍      | 4/10 [00:03 elapsed, ETA 00:04, train 2/2, eval 2/8]``,
        shortened (never cut inside a word by tqdm) to fit ``columns``."""
        eta = self._eta(now)
        head = f"ETA {'?' if eta is None else tqdm.format_interval(eta)}"
        counts = "".join(f", {k} {self.done[k]}/{self.totals[k]}" for k in KINDS if self.totals.get(k))
        done = min(sum(self.done.values()), self.total)
        meter = functools.partial(tqdm.format_meter, done, self.total, now - self.began, prefix=self.title)
        for postfix in (head + counts, head):
            bare = meter(bar_format=BAR.replace("{bar}", ""), postfix=postfix)
            if len(bare) + MIN_BAR <= columns:
                return meter(ncols=columns, bar_format=BAR, postfix=postfix)
        return bare  # no room for a bar: the numbers alone (the display clips them)


def row(entry: Running, now: float, steps: tuple[int, int] | None = None) -> str:
    """``  cpu0  eval   00:03  threat fgsm[eps=8/255] · protonet · glyphs 5-way 1-shot · seed 0``,
    ``  cpu1  train  00:12  step 120/300 · maml · glyphs 5-way 1-shot · seed 0``"""
    what = f"threat {entry.threat} · {entry.label}" if entry.threat else entry.label
    if entry.phase == "train" and steps is not None:
        what = f"step {steps[0]}/{steps[1]} · {what}"
    slot = f"{entry.slot:>5}  " if entry.slot else ""
    return f"  {slot}{entry.phase:5}  {tqdm.format_interval(now - entry.since)}  {what}"
