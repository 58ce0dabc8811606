"""A tiny suite end to end: CLI -> training -> evaluation -> real MLflow store -> report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main

pytestmark = pytest.mark.integration

TINY = """
# tiny: an end-to-end test suite
name: tiny
datasets: [{name: glyphs, way: 5, shot: 1, query: 4}]
train: {steps: 3, meta_batch: 2}
eval: {episodes: 6}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: [0, 8/255]}}, {name: pgd, params: {steps: 2}},
          {name: gaussian_noise, params: {severity: 5}}]
"""


def _suite(folder: Path, text: str = TINY) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


def _records(uri: str) -> list:
    from bench.tracking import Tracker

    return Tracker(uri, "tiny", create=False).records()


def _per_episode(uri: str) -> dict[tuple[str, str], list[float]]:
    from bench.tracking.records import LABEL, THREAT_LABEL

    return {(r.tags[LABEL], r.tags[THREAT_LABEL]): r.per_episode for r in _records(uri)}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyphs) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_run_report_resume(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.tracking.records import EPISODES_HASH

    suite = _suite(workdir)
    assert main(["run", str(suite), "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 trained now" in out and out.count("done ") == 2
    uri = "sqlite:///mlflow.db"
    records = _records(uri)
    assert len(records) == 2 * 5 and all(r.status == "FINISHED" for r in records)
    assert all(len(r.per_episode) == 6 for r in records)
    # which queries each evaluation got right: 5 ways x 4 queries per episode
    assert all(r.per_query is not None and [q.size for q in r.per_query] == [20] * 6 for r in records)
    assert all([q.mean() for q in r.per_query] == r.per_episode for r in records)
    assert len({r.tags[EPISODES_HASH] for r in records}) == 1  # paired across baselines and threats
    accuracy = _per_episode(uri)
    for label in ("protonet", "maml"):
        assert accuracy[(label, "fgsm[eps=0]")] == accuracy[(label, "clean")]

    assert main(["run", str(suite), "--device", "cpu", "--no-progress"]) == 0
    assert "0 trained now" in capsys.readouterr().out
    assert len(_records(uri)) == 10  # nothing repeated

    assert main(["report", str(suite)]) == 0
    table = (workdir / "reports" / "tiny" / "leaderboard.md").read_text()
    assert "| ProtoNet" in table and "| MAML" in table and "PGD-2, ε = 8/255" in table
    assert "PGD-2, ε = 8/255: `pgd[steps=2]`" in table  # the raw label, in the column key
    assert "Student-t 95% CI" in table and "bench report" in table
    assert "Worst L∞ 8/255: per query across the attacks at that threat model" in table
    first = table
    assert main(["report", str(suite)]) == 0
    assert (workdir / "reports" / "tiny" / "leaderboard.md").read_text() == first  # byte-stable


def test_same_suite_gives_identical_per_episode_accuracies(workdir: Path) -> None:
    suite = _suite(workdir, TINY.replace("[protonet, maml]", "[maml]"))
    for store in ("a", "b"):
        assert main(["run", str(suite), "--device", "cpu", "--no-progress",
                     "--tracking-uri", f"sqlite:///{store}.db"]) == 0
    first, second = _per_episode("sqlite:///a.db"), _per_episode("sqlite:///b.db")
    assert first == second and len(first) == 5


def test_invalid_suite_writes_nothing(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    suite = _suite(workdir, TINY.replace("[protonet, maml]", "[protonet, mamll]"))
    assert main(["run", str(suite), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'maml'" in err and "Traceback" not in err
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlruns").exists()


def test_missing_data_set_stops_before_mlflow(workdir: Path, capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.registry import DATASETS

    missing = [n for n in DATASETS.names() if n != "glyphs" and not DATASETS.get(n)().is_prepared()]
    if not missing:
        pytest.skip("every data set is prepared here")
    name = missing[0]
    source = DATASETS.get(name)
    text = TINY.replace("name: glyphs", f"name: {name}")
    suite = _suite(workdir, text)
    assert main(["run", str(suite), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "bench data prepare" in err or str(source().cache_dir()) in err
    assert not (workdir / "mlflow.db").exists()


def test_report_without_runs_is_a_clear_error(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    suite = _suite(workdir)
    assert main(["report", str(suite)]) == 2
    assert "bench run" in capsys.readouterr().err


def test_list_and_dry_run(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "baselines"]) == 0
    listing = capsys.readouterr().out
    assert "protonet" in listing and "Snell" in listing and "maml" in listing
    assert main(["list", "threats"]) == 0
    threats = capsys.readouterr().out
    assert "gaussian_noise" in threats and "eps=8/255" in threats and "0.0313" not in threats  # as suites write it
    assert main(["list", "suites"]) == 0
    suites = capsys.readouterr().out
    assert "smoke" in suites and "Smoke test: ProtoNet and MAML" in suites and "smoke.yaml" in suites
    assert main(["run", str(_suite(workdir)), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert plan.count("train ") == 2 and plan.count("[to run]") == 12
    assert not json.dumps(plan).count("finished]")
