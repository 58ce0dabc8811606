"""Golden files of every report format, rendered from fixture records in a real MLflow store.

The fixture records are written through `bench.tracking.Tracker` with the tags, params,
metrics and artifacts `bench.run.runner` writes (train run, nested eval runs, per-episode JSON,
FAILED runs with an ``error`` tag), for the planned jobs of a small suite: the 1-shot setting
fully run with two seeds, three baseline variants and eight threats (one eval run fails); the
5-shot setting only partly run (seed 0, three threats, one training run fails); and one stale
record that belongs to no planned job. The suite and the per-episode numbers are defined in
`tests/helpers.py` (the browser test renders the same records).

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest
tests/test_report_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import main
from tests.helpers import (
    ERROR,
    EVAL_FAILS,
    GOLDEN_SUITE,
    PARTLY_RUN,
    TRAIN_FAILS,
    fixture_env,
    golden_eval_tags,
    golden_per_episode,
    golden_train_tags,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _write_eval(tracker, job, parent: str, n: int, episodes: int) -> None:
    from bench.tracking import PER_EPISODE
    from bench.tracking.tags import flatten

    d, label = job.setting, job.train.variant.baseline.label
    run = tracker.start(job.name, golden_eval_tags(job), parent=parent)
    params = flatten("", job.identity)
    tracker.log(run, params=params)
    if (label, job.threat.label, d.shot, job.train.seed) == EVAL_FAILS:
        tracker.end(run, "FAILED", ERROR.format(what="CUDA out of memory"))
        return
    values = golden_per_episode(label, job.threat.label, job.threat.name, params, d.shot, job.train.seed, episodes)
    tracker.log(run, metrics={"accuracy": sum(values) / len(values), "ci95": 0.0, "episodes": len(values),
                              "device_seconds": 1.25 + n % 3})
    tracker.log_file(run, PER_EPISODE, json.dumps({"accuracy": values}).encode())
    tracker.end(run)


def write_store(uri: str, suite_path: Path) -> None:
    """Write the fixture runs of the golden suite's plan into the store at ``uri``."""
    from bench.plan.jobs import make_plan
    from bench.suite.load import load_suite
    from bench.tracking import Tracker
    from bench.tracking.records import JOB_KEY, KIND, LABEL
    from bench.tracking.tags import flatten

    suite = load_suite(str(suite_path))
    plan, tracker = make_plan(suite), Tracker(uri, suite.name)
    for n, train in enumerate(plan.train_jobs):
        label, shot, seed = train.variant.baseline.label, train.data.shot, train.seed
        if shot == PARTLY_RUN[0] and seed != PARTLY_RUN[1]:
            continue
        parent = tracker.start(train.name, golden_train_tags(train))
        tracker.log(parent, params=flatten("", train.identity))
        if (label, shot, seed) == TRAIN_FAILS:
            tracker.end(parent, "FAILED", ERROR.format(what="loss diverged"))
            continue
        tracker.end(parent)
        for job in plan.eval_jobs[train.key]:
            if shot != PARTLY_RUN[0] or job.threat.label in PARTLY_RUN[2]:
                _write_eval(tracker, job, parent, n, suite.eval.episodes)
    stale = tracker.start("stale", {**fixture_env(), KIND: "eval", JOB_KEY: "0" * 16, LABEL: "protonet"})
    tracker.end(stale, "FAILED", ERROR.format(what="an older configuration"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory with ``golden.yaml`` and the fixture store ``mlflow.db`` (built once)."""
    # SQLite syncs every MLflow write to disk; on tmpfs (when there is one) the store builds faster
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="golden-store-", dir=shm if shm.is_dir() else None)) \
        if shm.is_dir() else tmp_path_factory.mktemp("golden-store")
    (folder / "golden.yaml").write_text(GOLDEN_SUITE)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        write_store("sqlite:///mlflow.db", folder / "golden.yaml")
    finally:
        os.chdir(cwd)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def workdir(store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(store)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return store


def normalise_html(text: str) -> str:
    """PNG bytes depend on the FreeType build; the golden HTML keeps their place, not their bytes."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,<PNG>", text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from {path} (UPDATE_GOLDEN=1 to accept)"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_format_matches_its_golden_file_and_is_byte_stable(workdir: Path) -> None:
    assert main(["report", "golden.yaml", "--out", "out"]) == 0
    folder = workdir / "out" / "golden"
    for name in ("leaderboard.md", "leaderboard.tex", "leaderboard.csv", "leaderboard.json"):
        check_golden(name, (folder / name).read_text(encoding="utf-8"))
    check_golden("leaderboard.html", normalise_html((folder / "leaderboard.html").read_text(encoding="utf-8")))
    check_golden("plots.txt", "".join(f"{p.name}\n" for p in sorted((folder / "plots").iterdir())))

    first = _snapshot(folder)
    (folder / "plots" / "stale.svg").write_text("a figure the records no longer produce")
    assert main(["report", "golden.yaml", "--out", "out"]) == 0  # same records, read again from MLflow
    second = _snapshot(folder)
    assert first.keys() == second.keys() and len(first) == 5 + 12  # five formats, six figures x 2
    assert [name for name in first if first[name] != second[name]] == []
    assert all(b"Date" not in data and b"Matplotlib v" not in data for data in first.values())


def test_filters_and_options_match_their_golden_file(workdir: Path) -> None:
    assert main(["report", "golden.yaml", "--out", "filtered", "--where", "threat=pgd,fgsm,clean",
                 "--where", "threat.config.eps=8/255", "--where", "shot=1", "--baselines", "protonet,maml",
                 "--ci", "bootstrap", "--paired-test", "wilcoxon", "--format", "latex"]) == 0
    folder = workdir / "filtered" / "golden"
    assert sorted(p.name for p in folder.iterdir()) == ["leaderboard.tex"]
    check_golden("filtered.tex", (folder / "leaderboard.tex").read_text(encoding="utf-8"))


def test_bad_filters_are_clear_errors(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", "golden.yaml", "--out", "bad", "--where", "treat=pgd"]) == 2
    assert "Did you mean 'threat'" in capsys.readouterr().err
    assert main(["report", "golden.yaml", "--out", "bad", "--where", "threat=autoattack"]) == 2
    assert "match no job" in capsys.readouterr().err
    assert not (workdir / "bad").exists()


def test_all_rebuilds_shipped_suites_and_the_index(workdir: Path) -> None:
    from bench.plan.jobs import make_plan
    from bench.suite.load import load_suite, shipped_suites
    from bench.tracking import Tracker

    smoke = load_suite("smoke")  # one finished cell of a shipped suite; the rest must show as missing
    job = make_plan(smoke).all_eval_jobs()[0]
    tracker = Tracker("sqlite:///all.db", smoke.name)
    parent = tracker.start(job.train.name, golden_train_tags(job.train))
    tracker.end(parent)
    _write_eval(tracker, job, parent, 0, 12)

    def rebuild() -> dict[str, bytes]:
        assert main(["report", "--all", "--out", "every", "--tracking-uri", "sqlite:///all.db"]) == 0
        return _snapshot(workdir / "every")

    first = rebuild()
    index = first["README.md"].decode()
    assert "`bench report --all --out every --tracking-uri sqlite:///all.db`" in index and "`sqlite:///all.db`" in index
    assert f"## {smoke.name}" in index and f"[{smoke.name}/leaderboard.md]" in index
    for name in (n for n in shipped_suites() if n != "smoke"):
        assert re.search(rf"^\| {re.escape(name)} +\| not run", index, re.M), name
    assert "missing: not run" in first[f"{smoke.name}/leaderboard.md"].decode()
    assert rebuild() == first  # byte-stable, index included

    assert main(["report", "--all", "--out", "none", "--tracking-uri", "sqlite:///absent.db"]) == 0
    assert "| smoke " in (workdir / "none" / "README.md").read_text() and not (workdir / "absent.db").exists()
