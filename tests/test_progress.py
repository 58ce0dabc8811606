"""The progress display's parts, without a terminal: line fitting, the job board's bar, ETA
and running lines (on an injected clock), the live block's drawing and the skip line."""

from __future__ import annotations

import io
import re

import pytest

from bench.plan.jobs import make_plan
from bench.scheduler.board import JobBoard
from bench.scheduler.outcomes import JobOutcome, summary
from bench.scheduler.progress import Live, Progress, clip, fit
from bench.suite.load import load_suite

SUITE = """
name: tiny
datasets: [{name: glyphs, way: 5, shot: 1, query: 4}]
train: {steps: 2, meta_batch: 1}
eval: {episodes: 2}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: 8/255}}]
"""

DONE = ("done    protonet · glyphs 5-way 1-shot · seed 0  [trained 0.2s on cpu:x86_64 [cpu0]]  "
        "clean 55.0±4.1  fgsm[eps=8/255] 40.0±3.7  pgd[steps=2] 47.5±2.9  gaussian_noise[severity=5] 42.5±3.8")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SUITE)
    return make_plan(load_suite(str(path)))


def words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("width", [40, 60, 80, 100, 130])
def test_fit_wraps_between_cells_or_words_never_inside_one(width: int) -> None:
    fitted = fit(DONE, width)
    assert all(len(line) <= width for line in fitted.splitlines())
    assert words(fitted) == words(DONE)  # every word whole, none lost, order kept
    assert all(line.startswith(" " * 8) for line in fitted.splitlines()[1:])


def test_fit_breaks_at_cells_first_and_leaves_short_lines_alone() -> None:
    assert fit(DONE, 100).splitlines() == [  # a cell keeps its label and value together
        "done    protonet · glyphs 5-way 1-shot · seed 0  [trained 0.2s on cpu:x86_64 [cpu0]]  clean 55.0±4.1",
        "        fgsm[eps=8/255] 40.0±3.7  pgd[steps=2] 47.5±2.9  gaussian_noise[severity=5] 42.5±3.8"]
    assert fit("done    short", 100) == "done    short"


def test_clip_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    assert clip("a short line", 40) == "a short line"
    clipped = clip("threat gaussian_noise[severity=5] · protonet · glyphs 5-way", 40)
    assert clipped == "threat gaussian_noise[severity=5] ·…" and len(clipped) <= 40


def test_the_bar_counts_train_and_eval_jobs_and_estimates_per_kind(plan) -> None:
    clock = Clock()
    board = JobBoard("tiny: jobs", {"train": 2, "eval": 4}, capacity=1, clock=clock)
    train, other = plan.train_jobs
    assert board.total == 6 and board.eta() is None  # nothing measured yet
    board.start(train)
    clock.now += 10
    board.end(train, success=True)
    assert board.eta() is None  # evaluations still unmeasured: no guess from train times
    ev = plan.eval_jobs[train.key][0]
    board.start(ev)
    clock.now += 1
    board.end(ev, success=True)
    # one train job (10 s) and three evals (1 s each) left on one slot
    assert board.eta() == pytest.approx(13.0)
    board.start(other)
    clock.now += 4
    assert board.eta() == pytest.approx(6 + 3)  # the running train job has about 6 s left
    bar = board.lines(100, 20)[0]
    assert "2/6" in bar and "33%" in bar and "ETA 00:09" in bar and "train 1/2, eval 1/4" in bar


def test_retries_are_not_counted_twice_and_dropped_jobs_count_as_done(plan) -> None:
    clock = Clock()
    board = JobBoard("tiny: jobs", {"train": 2, "eval": 4}, capacity=2, clock=clock)
    train, other = plan.train_jobs
    board.start(train)
    board.end(train, success=False, final=False)  # failed, to be retried
    board.start(train)
    board.end(train, success=False)  # failed for good: its two evaluations will not run
    board.drop("eval", 2)
    assert board.done == {"train": 1, "eval": 2} and board.durations["train"] == []
    assert "3/6" in board.lines(100, 20)[0]


def test_running_jobs_show_phase_threat_slot_and_elapsed_time(plan) -> None:
    clock = Clock()
    board = JobBoard("tiny: jobs", {"train": 2, "eval": 4}, capacity=4, clock=clock)
    train, other = plan.train_jobs
    ev = plan.eval_jobs[train.key][1]
    board.start(other, "cpu1")
    clock.now += 65
    board.start(ev, "cpu0")
    clock.now += 3
    _, first, second = board.lines(100, 20)
    assert first == f"   cpu1  train  01:08  {other.name}"
    assert second == f"   cpu0  eval   00:03  threat fgsm[eps=8/255] · {train.name}"
    assert board.lines(100, 2)[1:] == ["  … and 2 more running"]  # a short terminal


def test_a_training_job_shows_its_reported_step_and_its_own_pace_sets_the_eta(plan) -> None:
    clock, reported = Clock(), {}
    board = JobBoard("tiny: jobs", {"train": 2, "eval": 0}, capacity=1, clock=clock, steps=reported.get)
    first, second = plan.train_jobs
    board.start(first, "cpu0")
    clock.now += 10
    board.end(first, success=True)  # measured: 10 s per train job
    board.start(second, "cpu0")
    clock.now += 20
    assert board.eta() == 0.0  # no report yet: the mean (10 s) is already spent
    assert board.lines(100, 20)[1] == f"   cpu0  train  00:20  {second.name}"
    reported[second.key] = (50, 200)  # a quarter done in 20 s: 60 s to go at its own pace
    assert board.eta() == pytest.approx(60.0)
    assert board.lines(100, 20)[1] == f"   cpu0  train  00:20  step 50/200 · {second.name}"


def test_the_step_reporter_writes_at_most_once_a_second_and_always_the_last_step(tmp_path) -> None:
    from bench.run.step_progress import StepFiles, StepReporter

    clock, files = Clock(), StepFiles()
    files.open()
    reporter = StepReporter(files.directory, "job", clock=clock)
    reporter(1, 3)
    clock.now += 0.5
    reporter(2, 3)
    assert files.read("job") == (1, 3)  # throttled
    reporter(3, 3)
    assert files.read("job") == (3, 3)  # the last step is always written
    assert files.read("other") is None
    files.close()
    StepReporter(files.directory or str(tmp_path / "gone"), "job")(1, 1)  # no directory: silently nothing
    assert files.directory is None and not (tmp_path / "gone").exists()


def test_a_train_job_reports_its_steps_through_the_worker_entry_point(plan) -> None:
    from bench.run.step_progress import StepFiles
    from bench.run.worker import run_train

    files = StepFiles()
    files.open()
    try:
        job = plan.train_jobs[0]
        result = run_train(job, files.directory, None, "cpu")
        assert len(result.curve) == 2 and files.read(job.key) == (2, 2)
    finally:
        files.close()


def test_an_empty_board_draws_nothing() -> None:
    assert JobBoard("tiny: jobs", {"train": 0, "eval": 0}, 1).lines(80, 24) == []


def test_live_redraws_in_place_and_writes_lines_above_the_block() -> None:
    err, out = io.StringIO(), io.StringIO()
    live = Live(lambda columns, rows: ["bar 1/2", "  running"], err)
    live.refresh()
    live.write("done    job", out)
    assert out.getvalue() == "done    job\n"
    assert err.getvalue().count("\x1b[J") == 3  # drawn, cleared for the line, drawn again
    assert err.getvalue().endswith("bar 1/2\n  running\x1b[1A\r")  # the cursor back on the block's first line


def test_summary_lines_stay_whole_when_stdout_is_not_a_terminal(capsys: pytest.CaptureFixture) -> None:
    Progress().line(DONE)
    assert capsys.readouterr().out == DONE + "\n"


def test_a_skip_line_shows_the_recorded_headline_accuracy(plan) -> None:
    outcome = JobOutcome(plan.train_jobs[0], headline=("clean", 0.5512))
    assert re.fullmatch(r"skip +protonet · .* \(already finished\)  clean 55\.1", summary(outcome))
    assert summary(JobOutcome(plan.train_jobs[0])).endswith("(already finished)")
