"""The driver loop: run a plan's train -> eval DAG on a backend, recording every result.

What runs is decided by `bench.scheduler.resume`: a job with a FINISHED run of today's code
(in this suite or, copied over, another suite of the store) is not run again; a stale one is.
A finished train job's checkpoint is read back from MLflow for the evaluations still to run.
An eval job is queued the moment its checkpoint exists and goes ahead of waiting train jobs.
A failing job is recorded as FAILED (error and traceback), retried up to ``retries`` times,
and never stops the others; when a train job fails for good, its evaluations are recorded as failed with that reason.
Several drivers may share one store: a job runs, or a run is copied, only under its claim
(`bench.scheduler.claiming`); a job another driver finished meanwhile is taken as finished.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from bench.plan.fingerprint import train_fingerprint
from bench.plan.jobs import EvalJob, Plan, TrainJob
from bench.run import stopping, worker
from bench.run.resume_state import ResumeFile, state_folder
from bench.run.runner import TrainResult
from bench.run.step_progress import StepFiles
from bench.scheduler.backend import Backend
from bench.scheduler.board import JobBoard
from bench.scheduler.claiming import Gate
from bench.scheduler.outcomes import JobOutcome, eval_label, failure_text, recorded_headline, summary
from bench.scheduler.progress import Live, Progress, Quiet
from bench.scheduler.resume import Decision, ResumeOptions, decide, decide_again, may_be_done_elsewhere, resumes_from
from bench.tracking import CHECKPOINT, Tracker
from bench.tracking.claims import ClaimBoard
from bench.tracking.recording import eval_tags, record_eval, record_failure, record_train, train_tags
from bench.tracking.records import CODE_FILES, CODE_VERSION, FINGERPRINT, KEPT_STALE, PACKAGES
from bench.tracking.tracker import now_ms


@dataclass
class Task:
    job: TrainJob | EvalJob
    attempt: int = 1
    checkpoint: bytes = b""
    parent: str = ""


class Driver:
    """Runs one plan to completion on ``backend``; the only writer to ``tracker``."""

    def __init__(self, plan: Plan, tracker: Tracker, backend: Backend, retries: int, progress: Progress,
                 resume: ResumeOptions | None = None) -> None:
        self.plan, self.tracker, self.backend = plan, tracker, backend
        self.retries, self.progress, self.resume = retries, progress, resume or ResumeOptions()
        self.decisions: dict[str, Decision] = {}
        self.outcomes = {job.key: JobOutcome(job, order=[eval_label(e) for e in plan.eval_jobs[job.key]])
                         for job in plan.train_jobs}
        self.todo: dict[str, list[EvalJob]] = {}
        self.queue: deque[Task] = deque()
        self.running: dict[Future, tuple[Task, str]] = {}
        self.steps = StepFiles()  # training steps reported by the running train jobs
        self.board = JobBoard(f"{plan.suite.name}: jobs", {}, 1)  # replaced in `run`, once the plan is decided
        self.live: Live | Quiet = Quiet()
        self.gate: Gate[Task]  # this driver's claims, from `run` on
        # A backend that runs jobs in this thread leaves the display to a thread of its own.
        self.inline = backend.inline
        self.started: dict[str, int] = {}  # job key -> submission time (ms), for its run's start time
        self.times = (0, 0)  # (start, end) ms of the job whose result is being recorded

    def run(self) -> list[JobOutcome]:
        self.gate = Gate(ClaimBoard(self.tracker.uri), self.progress.line)
        try:
            self.tracker.delete_partial(self.gate.claimed_elsewhere())
            self.steps.open()
            self._run()
        finally:
            self.steps.close()
            self.gate.close()  # a stopped driver's jobs are free for others at once
        return [self.outcomes[job.key] for job in self.plan.train_jobs]

    def _run(self) -> None:
        self.decisions = decide(self.plan, self.tracker.finished_runs(), self.tracker.experiment_id, self.resume)
        for job in self.plan.train_jobs:
            stopping.check()
            self._enqueue_job(job)
        self._announce()
        with self.progress.live(self.board.lines, background=self.inline) as live:
            self.live = live
            try:
                self._loop()
            except BaseException:
                self.backend.shutdown(kill=True)
                raise
        self.backend.shutdown()

    def _announce(self) -> None:
        """Size the progress bar: the train and eval jobs that will run (not the finished ones)."""
        totals = {"train": sum(self.decisions[job.key].action == "run" for job in self.plan.train_jobs),
                  "eval": sum(len(evals) for evals in self.todo.values())}
        name, slots = self.plan.suite.name, self.backend.capacity
        self.board = JobBoard(f"{name}: jobs", totals, slots, steps=self.steps.read)
        if self.board.total:
            self.progress.line(f"{name}: running {self.board.total} jobs ({totals['train']} train, "
                               f"{totals['eval']} eval) on {slots} slots")
        else:
            self.progress.line(f"{name}: nothing to run, every job is finished")

    def _enqueue_job(self, job: TrainJob) -> None:
        outcome, decision = self.outcomes[job.key], self.decisions[job.key]
        evals = [e for e in self.plan.eval_jobs[job.key] if self.decisions[e.key].action == "run"]
        self.todo[job.key] = evals
        outcome.pending = len(evals)
        items: list[TrainJob | EvalJob] = [job, *self.plan.eval_jobs[job.key]]
        for item in items:
            if self.decisions[item.key].reason.startswith(("stale", "--")):
                self.progress.line(f"rerun   {item.name}: {self.decisions[item.key].reason}")
        if decision.action == "run":
            step = resumes_from(self.tracker.uri, job, decision)
            if step:
                self.progress.line(f"resume  {job.name}: from step {step} of {job.variant.train.steps} "
                                   f"({self._resume_file(job).path})")
            self.queue.append(Task(job))
            return
        parent = self._adopt(job, decision, None)
        for ev in self.plan.eval_jobs[job.key]:
            if self.decisions[ev.key].action != "run":
                self._adopt(ev, self.decisions[ev.key], parent)
        outcome.headline = recorded_headline(self.plan.eval_jobs[job.key], self.decisions)
        if evals:
            checkpoint = self.tracker.read_file(parent, CHECKPOINT)
            self.queue.extend(Task(e, checkpoint=checkpoint, parent=parent) for e in evals)
        else:
            self.progress.line(summary(outcome))

    def _adopt(self, job: TrainJob | EvalJob, decision: Decision, parent: str | None) -> str:
        """The run id in this suite's experiment of a job that is not run: its own finished run,
        or a copy of another suite's; a stale run kept on request is tagged as such."""
        assert decision.found is not None
        kept = {KEPT_STALE: decision.fingerprint.digest} if decision.stale else {}
        if decision.action == "skip":
            if kept:
                self.tracker.set_tags(decision.found.run_id, kept)
            return decision.found.run_id
        tags = train_tags(self.plan.suite, job) if isinstance(job, TrainJob) else eval_tags(self.plan.suite, job)
        tags = {k: v for k, v in tags.items() if k not in (CODE_VERSION, PACKAGES, FINGERPRINT, CODE_FILES)}
        here = self.tracker.experiment_id
        with self.gate.held(f"{job.key}@{here}", job.name):
            self.tracker.delete_partial(key=job.key)
            copied = [r for r in self.tracker.finished_runs(key=job.key) if r.experiment_id == here]
            if copied:  # by another driver of this suite, meanwhile
                return copied[-1].run_id
            return self.tracker.copy_run(decision.found.run_id, job.name, {**tags, **kept}, parent)

    def _loop(self) -> None:
        while self.queue or self.running or self.gate.parked:
            self.queue.extend(self.gate.due())
            while self.queue and len(self.running) < self.backend.capacity:
                task = self.queue.popleft()
                if self._admit(task):
                    self._submit(task)
            self.live.refresh()
            done = self._wait()
            # A group signal reaches the workers too: their jobs end stopped, not failed.
            stopping.check()
            for future in sorted(done, key=lambda f: self.running[f][0].job.key):
                task, where = self.running.pop(future)
                self._finish(task, where, _result(future, task))
            self.live.refresh()

    def _wait(self) -> set[Future]:
        """Finished jobs; none when a parked job is due for another look."""
        while not self.gate.any_due():
            stopping.check()
            self.live.refresh(force=False)
            if not self.running:
                if not self.gate.parked:
                    break  # the jobs just looked at were all finished elsewhere
                time.sleep(stopping.POLL_SECONDS)
                continue
            done, _ = wait(list(self.running), timeout=stopping.POLL_SECONDS, return_when=FIRST_COMPLETED)
            if done:
                return done
        return set()

    def _admit(self, task: Task) -> bool:
        """Whether ``task`` starts now: this driver holds its claim and nobody finished it meanwhile
        (then it is taken as finished); parked while another driver holds it."""
        if not self.gate.admit(task.job.key, task.job.name):
            self.gate.park(task)
            return False
        if task.attempt == 1 and may_be_done_elsewhere(self.decisions[task.job.key]):
            found = decide_again(task.job, self.tracker.finished_runs(key=task.job.key), self.tracker.experiment_id,
                                 self.resume)
            if found.action != "run":
                self.gate.release(task.job.key)
                self._take_finished(task, found)
                return False
        self.tracker.delete_partial(key=task.job.key)  # a RUNNING record of it is a dead driver's
        return True

    def _take_finished(self, task: Task, decision: Decision) -> None:
        """Adopt the run another driver made of ``task``'s job while this one waited; a train job's
        evaluations are decided again (as for a train job not run here) and the rest queued."""
        self.progress.line(f"reuse   {task.job.name}: finished by another bench run meanwhile")
        self.decisions[task.job.key] = decision
        if isinstance(task.job, EvalJob):
            self._adopt(task.job, decision, task.parent)
            outcome = self.outcomes[task.job.train.key]
            outcome.pending -= 1
            self.board.drop("eval", 1)
            self._maybe_summarise(outcome)
            return
        planned = len(self.todo[task.job.key])
        for ev in self.plan.eval_jobs[task.job.key]:
            self.decisions[ev.key] = decide_again(ev, self.tracker.finished_runs(key=ev.key),
                                                  self.tracker.experiment_id, self.resume)
        self._enqueue_job(task.job)
        self.board.drop("train", 1)
        self.board.drop("eval", planned - len(self.todo[task.job.key]))

    def _submit(self, task: Task) -> None:
        args = (task.job, self.steps.directory, str(self._resume_file(task.job).path)) \
            if isinstance(task.job, TrainJob) else (task.job, self.plan.suite, task.checkpoint)
        fn = worker.run_train if isinstance(task.job, TrainJob) else worker.run_eval
        self.board.start(task.job, self.backend.next_slot())
        self.started[task.job.key] = now_ms()  # the run's real start time in MLflow
        if self.inline:
            self.live.refresh()  # now: an inline backend's submit returns when the job is done
        future, where = self.backend.submit(fn, *args)
        self.running[future] = (task, where)

    def _finish(self, task: Task, where: str, result: Any) -> None:
        self.times = (self.started.pop(task.job.key, now_ms()), now_ms())
        failed = isinstance(result, worker.Failure)
        self.board.end(task.job, success=not failed, final=not failed or task.attempt > self.retries)
        if failed:
            self._failed(task, result)
        elif isinstance(task.job, TrainJob):
            self._trained(task.job, result, where)
        else:
            self._evaluated(task, result)

    def _resume_file(self, job: TrainJob) -> ResumeFile:
        """Where ``job`` keeps its resumable state (`bench.run.resume_state`)."""
        return ResumeFile.for_job(state_folder(self.tracker.uri), job.key, train_fingerprint(job).digest)

    def _trained(self, job: TrainJob, result: TrainResult, where: str) -> None:
        run_id = record_train(self.tracker, self.plan.suite, job, result, self.times)
        self.gate.release(job.key)
        self._resume_file(job).delete()  # recorded: the state is not needed any more
        outcome = self.outcomes[job.key]
        outcome.trained, outcome.seconds, outcome.device = True, result.seconds, f"{result.device} [{where}]"
        tasks = [Task(e, checkpoint=result.checkpoint, parent=run_id) for e in self.todo[job.key]]
        # Evaluations go ahead of waiting train jobs: results appear as early as possible.
        self.queue.extendleft(reversed(tasks))
        self._maybe_summarise(outcome)

    def _evaluated(self, task: Task, result: Any) -> None:
        assert isinstance(task.job, EvalJob)
        outcome = self.outcomes[task.job.train.key]
        outcome.accuracies[eval_label(task.job)] = record_eval(self.tracker, self.plan.suite, task.job,
                                                                 task.parent, result, self.times)
        self.gate.release(task.job.key)
        outcome.pending -= 1
        self._maybe_summarise(outcome)

    def _failed(self, task: Task, failure: worker.Failure) -> None:
        run_id = record_failure(self.tracker, self.plan.suite, task.job, failure.traceback, task.parent or None,
                                task.attempt, self.times)
        if task.attempt <= self.retries:
            self.queue.append(Task(task.job, task.attempt + 1, task.checkpoint, task.parent))
            return
        self.gate.release(task.job.key)
        train_key = task.job.key if isinstance(task.job, TrainJob) else task.job.train.key
        outcome = self.outcomes[train_key]
        what = "training" if isinstance(task.job, TrainJob) else eval_label(task.job)
        outcome.failed.append(failure_text(what, failure, run_id))
        if isinstance(task.job, TrainJob):
            outcome.train_failed = True
            for ev in self.todo[train_key]:
                record_failure(self.tracker, self.plan.suite, ev, f"training failed: {failure.error}")
            self.board.drop("eval", outcome.pending)
            outcome.pending = 0
        else:
            outcome.pending -= 1
        self._maybe_summarise(outcome)

    def _maybe_summarise(self, outcome: JobOutcome) -> None:
        if outcome.pending == 0 and (outcome.trained or outcome.accuracies or outcome.failed):
            self.progress.line(summary(outcome))


def _result(future: Future, task: Task) -> Any:
    """The job's result, or a `Failure` when its worker process itself died."""
    error = future.exception()
    if error is None:
        return future.result()
    return worker.Failure(task.job.key, f"worker died ({type(error).__name__}: {error}; killed or out of "
                          f"memory?)", repr(error))
