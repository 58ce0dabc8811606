"""The training protocol (issue 14): validation-based selection and resumable training.

Every baseline, stopped at a meta-update (as SIGTERM/SIGINT stop it) and started again from its
resumable state, ends with the checkpoint of an uninterrupted run, bit for bit; the validation
curve is kept and the best-validation step selected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.plan.jobs import make_plan
from bench.registry import BASELINES
from bench.run.resume_state import ResumeFile
from bench.run.runner import execute_train
from bench.suite.load import load_suite

SUITE = """
name: protocol
datasets: [{{name: glyphs, way: 3, shot: 1, query: 2}}]
train: {{steps: 6, meta_batch: 1, validate_every: 2, val_episodes: 3, checkpoint_every: 2}}
eval: {{episodes: 2}}
baselines: [{baselines}]
backbone: {{name: conv4, params: {{hidden: 8}}}}
threats: [clean]
"""


def jobs(tmp_path: Path, baselines: str) -> list:
    (tmp_path / "protocol.yaml").write_text(SUITE.format(baselines=baselines))
    return make_plan(load_suite(str(tmp_path / "protocol.yaml"))).train_jobs


class StopAt:
    """``should_stop`` that interrupts training before meta-update ``step`` (as `Stopped` does)."""

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == self.step + 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", sorted(n for n in BASELINES.names() if BASELINES.get(n).trains))
def test_a_stopped_job_resumes_to_the_uninterrupted_checkpoint_bit_for_bit(name: str, tmp_path: Path,
                                                                           glyphs) -> None:
    (job,) = jobs(tmp_path, name)
    reference = execute_train(job, "cpu")
    state = ResumeFile(tmp_path / "state.pt")
    for stop in (1, 3):  # stopped twice in a row, between states and right after one
        with pytest.raises(KeyboardInterrupt):
            execute_train(job, "cpu", resume=state, should_stop=StopAt(stop))
        assert state.path.is_file()
    resumed = execute_train(job, "cpu", resume=state)
    assert resumed.checkpoint == reference.checkpoint
    assert resumed.curve == reference.curve and resumed.validation == reference.validation


def test_the_best_validation_step_is_selected_and_the_curve_kept(tmp_path: Path, glyphs) -> None:
    (job,) = jobs(tmp_path, "protonet")
    result = execute_train(job, "cpu")
    steps = [step for step, _ in result.validation]
    assert steps == [2, 4, 6]
    best = max(result.validation, key=lambda point: point[1])  # the first of equals wins
    assert result.selection == "best_val" and result.selected_step == best[0]


def test_mlflow_keeps_the_validation_curve_and_the_report_names_the_checkpoint(
        tmp_path: Path, glyphs, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    from bench.cli import main
    from bench.tracking.records import KIND, SELECTED_STEP, SELECTION, TAG

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    jobs(tmp_path, "protonet")
    assert main(["run", "protocol.yaml", "--device", "cpu", "--no-progress"]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("protocol").experiment_id])
    train = next(r for r in runs if r.data.tags[TAG + KIND] == "train")
    curve = client.get_metric_history(train.info.run_id, "val_accuracy_pct")
    assert [m.step for m in curve] == [2, 4, 6]
    best = max(curve, key=lambda m: (m.value, -m.step)).step
    assert train.data.tags[TAG + SELECTION] == "best_val" and train.data.tags[TAG + SELECTED_STEP] == str(best)
    assert main(["report", "protocol.yaml", "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "protocol" / "leaderboard.md").read_text()
    assert f"protonet (seed 0) best_val@{best}" in text
    assert not list((tmp_path / "bench-resume").glob("*.pt"))  # recorded: the state is gone
    (figure,) = (tmp_path / "out" / "protocol" / "plots").glob("*-validation.svg")
    assert f"plots/{figure.name}" in (tmp_path / "out" / "protocol" / "leaderboard.html").read_text()
    drawn = report_curves(tmp_path)["protonet"][0]
    assert drawn.points == tuple((m.step, m.value) for m in curve) and drawn.selected == best


def report_curves(tmp_path: Path) -> dict:
    """The validation curves the report draws, read back from the store as `bench report` does."""
    from bench.report.cells import collect
    from bench.report.command import gather
    from bench.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "protocol", create=False)
    (setting,) = collect(load_suite(str(tmp_path / "protocol.yaml")), gather(tracker)).settings
    return setting.validation


def test_the_validation_figure_draws_each_seed_and_stars_the_kept_checkpoint() -> None:
    from bench.report.plots.draw import plot_style
    from bench.report.plots.validation import validation_figure
    from bench.report.validation import ValidationCurve, decode, encode

    points = ((50, 40.0), (100, 62.5), (150, 61.0))
    assert decode(encode(points)) == points
    rows = {"ProtoNet": {0: ValidationCurve(points, 100), 1: ValidationCurve(points[:2], None)}}
    with plot_style():
        axes = validation_figure(rows, 20.0).axes[0]
    lines = [(list(line.get_xdata()), list(line.get_ydata()), line.get_marker()) for line in axes.get_lines()]
    assert ([50, 100, 150], [40.0, 62.5, 61.0], "None") in lines and ([50, 100], [40.0, 62.5], "None") in lines
    assert [(x, y) for x, y, marker in lines if marker == "*"] == [([100], [62.5])]  # seed 1 kept its last weights


def test_the_report_says_whether_validation_plateaued() -> None:
    from bench.report.command import checkpoint_text
    from bench.tracking.records import SELECTED_STEP, SELECTION, STOPPED_EARLY

    def tags(selection: str, step: str, stopped: str = "") -> dict[str, str]:
        return {SELECTION: selection, SELECTED_STEP: step, STOPPED_EARLY: stopped}

    steps, patience = {"train.steps": "3000", "train.patience": "4"}, {"train.patience": "0"}
    assert checkpoint_text(tags("best_val", "1200", "1700"), steps) \
        == "best_val@1200 (stopped early at 1700)"
    assert checkpoint_text(tags("best_val", "2900"), steps) \
        == "best_val@2900 (no plateau within 3000)"  # early stopping on, cap reached first
    no_stopping = {**steps, **patience}
    assert checkpoint_text(tags("best_val", "3000"), no_stopping) \
        == "best_val@3000 (no plateau within 3000)"  # still improving at the cap
    assert checkpoint_text(tags("best_val", "2000"), no_stopping) \
        == "best_val@2000"
    assert checkpoint_text(tags("last", "1000"), {"train.steps": "1000"}) == "last@1000"
