"""The dry run's cost estimate (issue 27, item 7): from finished runs of the same job shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.plan.jobs import make_plan
from bench.scheduler.estimate import device_kind, duration, job_seconds, measured_rates
from bench.suite.load import load_suite
from bench.tracking import Tracker
from bench.tracking.records import DEVICE

SUITE = """\
name: costs
datasets: [{name: glyphs, image_size: 28, way: 5, shot: 1, query: 5}]
train: {steps: 6, meta_batch: 1}
eval: {episodes: 4}
baselines: [protonet]
threats: [clean, {name: pgd, params: {eps: 8/255, alpha: 2/255, steps: 2}}]
"""


def test_the_dry_run_estimates_new_seeds_from_the_finished_ones(tmp_path: Path, glyphs: object,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "costs.yaml").write_text(SUITE)
    assert main(["run", "costs.yaml", "--dry-run"]) == 0
    assert "estimate: none: no finished run of these job shapes" in capsys.readouterr().out
    assert main(["run", "costs.yaml", "--workers", "1", "--no-progress"]) == 0
    runs = Tracker(None, "costs", create=False).runs()
    kind = device_kind(runs[0].data.tags[f"bench.{DEVICE}"])
    rates = measured_rates(runs, kind)
    train_run = next(r for r in runs if r.data.tags["bench.kind"] == "train")
    per_step = train_run.data.metrics["device_seconds"] / 6
    planned = make_plan(load_suite("costs.yaml", ("seeds=[1]", "train.steps=12")))
    (train,) = planned.train_jobs
    assert job_seconds(train, rates) == pytest.approx(per_step * 12)  # another seed and cap: the same shape
    evaluations = [job_seconds(e, rates) for e in planned.eval_jobs[train.key]]
    assert all(seconds is not None and seconds > 0 for seconds in evaluations)
    other = make_plan(load_suite("costs.yaml", ("seeds=[1]", "datasets[0].shot=5"))).train_jobs[0]
    assert job_seconds(other, rates) is None  # a shape never run here is not guessed
    capsys.readouterr()
    assert main(["run", "costs.yaml", "--dry-run", "--set", "seeds=[1]", "--workers", "2"]) == 0
    assert "of device time (protonet " in capsys.readouterr().out


def test_durations_read_as_people_write_them() -> None:
    assert [duration(s) for s in (40, 600, 7500)] == ["40 s", "10 min", "2 h 05 min"]
