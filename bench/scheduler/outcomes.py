"""What a run did to each train job and its evaluations, and the one line that says it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bench.plan.jobs import EvalJob, TrainJob
from bench.run import worker
from bench.scheduler.resume import Decision


@dataclass
class JobOutcome:
    """What happened to one train job and its evaluations (for the summary line)."""

    job: TrainJob
    trained: bool = False
    seconds: float = 0.0
    device: str = ""
    accuracies: dict[str, tuple[float, float]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    pending: int = 0
    order: list[str] = field(default_factory=list)  # `eval_label`s in suite order
    headline: tuple[str, float] | None = None  # a job not run: its recorded (threat label, accuracy)
    train_failed: bool = False



def eval_label(job: EvalJob) -> str:
    """The threat's label, with the test setting where it is not the training one (a 60-way
    model tested at 5-way and 20-way has two ``clean`` evaluations)."""
    tested = job.setting != job.train.data
    return f"{job.threat.label} · {job.setting.label}" if tested else job.threat.label


def recorded_headline(evals: list[EvalJob], decisions: dict[str, Decision]) -> tuple[str, float] | None:
    """The recorded accuracy of a train job that is not run: its clean evaluation's, else its
    first recorded one (suite order); None when none of its evaluations ``evals`` is kept."""
    kept = [(ev.threat, decisions[ev.key].found) for ev in evals if decisions[ev.key].action != "run"]
    recorded = [(threat, run.accuracy) for threat, run in kept if run is not None and run.accuracy is not None]
    chosen = [item for item in recorded if item[0].name == "clean"] or recorded
    return (chosen[0][0].label, chosen[0][1]) if chosen else None


def summary(outcome: JobOutcome) -> str:
    """One line per finished train job: status, time, device, accuracies."""
    if outcome.failed:
        head = "FAILED"
    elif outcome.trained or outcome.accuracies:
        head = "done"
    else:
        shown = f"  {outcome.headline[0]} {100 * outcome.headline[1]:.1f}" if outcome.headline else ""
        return f"skip    {outcome.job.name} (already finished){shown}"
    cells = "  ".join(f"{k} {100 * m:.1f}±{100 * h:.1f}" for k, (m, h) in sorted(
        outcome.accuracies.items(), key=lambda item: outcome.order.index(item[0])))
    trained = f"trained {outcome.seconds:.1f}s on {outcome.device}" if outcome.trained else \
        "not trained" if outcome.train_failed else "checkpoint reused"
    failures = ("  failed: " + "; ".join(outcome.failed)) if outcome.failed else ""
    return f"{head:7} {outcome.job.name}  [{trained}]  {cells}{failures}"


FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def failure_text(what: str, failure: worker.Failure, run_id: str) -> str:
    """``training: RuntimeError: boom (baselines/x.py:41; traceback in run 3f2a..., traceback.txt)``:
    what failed, the exception, the innermost frame of the project's own code (else the last
    frame) and where the whole traceback is stored."""
    frames = FRAME.findall(failure.traceback)
    own = [(path, line) for path, line in frames if "site-packages" not in path] or frames
    where = ""
    if own:
        path, line = own[-1]
        root = str(Path(__file__).resolve().parents[2]) + "/"
        where = f"{path.removeprefix(root)}:{line}; "
    return f"{what}: {failure.error} ({where}traceback in run {run_id}, traceback.txt)"
