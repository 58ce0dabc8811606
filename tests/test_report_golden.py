"""Golden files of every report format, rendered from fixture records in a real MLflow store.

The fixture records are written through `bench.tracking.Tracker` with the tags, params,
metrics and artifacts `bench.runner` writes (train run, nested eval runs, per-episode JSON,
FAILED runs with an ``error`` tag), for the planned jobs of a small suite: the 1-shot setting
fully run with two seeds, three baseline variants and eight threats (one eval run fails); the
5-shot setting only partly run (seed 0, three threats, one training run fails); and one stale
record that belongs to no planned job.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest
tests/test_report_golden.py`` and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import main

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SUITE = """\
# golden: the fixture suite of the report's golden-file tests (records are synthetic).
name: golden
description: Fixture suite of the report golden tests (synthetic records).
seeds: [0, 1]
datasets:
  - {name: glyphs, way: 5, shot: [1, 5], query: 4}
train: {steps: 3, meta_batch: 2}
eval: {episodes: 12}
baselines:
  - protonet
  - maml
  - {name: protonet, label: protonet-aq, params: {lr: 0.002}}
threats:
  - clean
  - {name: fgsm, params: {eps: [2/255, 8/255]}}
  - {name: pgd, params: {steps: [2, 5]}}
  - {name: gaussian_noise, params: {severity: [1, 3]}}
  - {name: contrast, params: {severity: 3}}
published:
  protonet:
    glyphs 5-way 1-shot: 49.42 +- 0.78
  maml:
    glyphs 5-way 5-shot: {accuracy: "63.1", source: Finn et al. 2017 (illustrative)}
"""
BASE = {"protonet": 0.62, "maml": 0.55, "protonet-aq": 0.58}
DROP = {"clean": 0.0, "fgsm": 0.12, "pgd": 0.2, "gaussian_noise": 0.05, "contrast": 0.08}
EVAL_FAILS = ("maml", "pgd[steps=5]", 1, 1)  # label, threat, shot, seed
TRAIN_FAILS = ("protonet-aq", 5, 0)  # label, shot, seed
PARTLY_RUN = (5, 0, ("clean", "fgsm[eps=8/255]", "gaussian_noise[severity=3]"))  # shot, seed, threats run
ERROR = 'Traceback (most recent call last):\n  File "bench/runner.py", line 1\nRuntimeError: {what} (fixture)\n'


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (no RNG whose stream could change)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:12], 16) / 16**12


def per_episode(label: str, threat: str, name: str, params: dict, shot: int, seed: int, episodes: int) -> list[float]:
    """Accuracies in twentieths (5-way x 4 queries) with a shared per-episode difficulty."""
    drop = DROP.get(name, 0.1) * (1 + float(params.get("threat.config.severity", 1)) / 4)
    base = BASE.get(label, 0.5) + 0.08 * (shot == 5) - drop
    base -= 4 * float(params.get("threat.config.eps", 0)) if name == "fgsm" else 0
    out = []
    for i in range(episodes):
        p = base + 0.25 * (unit("episode", shot, seed, i) - 0.5) + 0.1 * (unit(label, threat, shot, seed, i) - 0.5)
        out.append(round(min(max(p, 0.0), 1.0) * 20) / 20)
    return out


ENV = {"code_version": "0.1.0+gfixture", "packages": "python==3.11", "device": "cpu:x86_64", "data_hash": "d" * 16}


def _train_tags(train) -> dict[str, str]:
    """The recorder's tag schema (`bench.tags`) with a fixed environment instead of this machine's."""
    from bench.tags import identity_tags

    fingerprint = hashlib.sha256(train.variant.baseline.name.encode()).hexdigest()[:16]
    return {**ENV, **identity_tags("golden", train), "fingerprint": fingerprint}


def _eval_tags(job) -> dict[str, str]:
    from bench.tags import identity_tags

    episodes = hashlib.sha256(f"{job.train.data}-{job.train.seed}".encode()).hexdigest()
    return {**_train_tags(job.train), **identity_tags("golden", job), "episodes_hash": episodes}


def _write_eval(tracker, job, parent: str, n: int, episodes: int) -> None:
    from bench.tags import flatten
    from bench.tracking import PER_EPISODE

    d, label = job.train.data, job.train.variant.baseline.label
    run = tracker.start(job.name, _eval_tags(job), parent=parent)
    params = flatten("", job.identity)
    tracker.log(run, params=params)
    if (label, job.threat.label, d.shot, job.train.seed) == EVAL_FAILS:
        tracker.end(run, "FAILED", ERROR.format(what="CUDA out of memory"))
        return
    values = per_episode(label, job.threat.label, job.threat.name, params, d.shot, job.train.seed, episodes)
    tracker.log(run, metrics={"accuracy": sum(values) / len(values), "ci95": 0.0, "episodes": len(values),
                              "device_seconds": 1.25 + n % 3})
    tracker.log_file(run, PER_EPISODE, json.dumps({"accuracy": values}).encode())
    tracker.end(run)


def write_store(uri: str, suite_path: Path) -> None:
    """Write the fixture runs of the golden suite's plan into the store at ``uri``."""
    from bench.config import load_suite
    from bench.plan import make_plan
    from bench.tags import flatten
    from bench.tracking import Tracker

    suite = load_suite(str(suite_path))
    plan, tracker = make_plan(suite), Tracker(uri, suite.name)
    for n, train in enumerate(plan.train_jobs):
        label, shot, seed = train.variant.baseline.label, train.data.shot, train.seed
        if shot == PARTLY_RUN[0] and seed != PARTLY_RUN[1]:
            continue
        parent = tracker.start(train.name, _train_tags(train))
        tracker.log(parent, params=flatten("", train.identity))
        if (label, shot, seed) == TRAIN_FAILS:
            tracker.end(parent, "FAILED", ERROR.format(what="loss diverged"))
            continue
        tracker.end(parent)
        for job in plan.eval_jobs[train.key]:
            if shot != PARTLY_RUN[0] or job.threat.label in PARTLY_RUN[2]:
                _write_eval(tracker, job, parent, n, suite.eval.episodes)
    stale = tracker.start("stale", {**ENV, "kind": "eval", "job_key": "0" * 16, "label": "protonet"})
    tracker.end(stale, "FAILED", ERROR.format(what="an older configuration"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory with ``golden.yaml`` and the fixture store ``mlflow.db`` (built once)."""
    # SQLite syncs every MLflow write to disk; on tmpfs (when there is one) the store builds faster
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="golden-store-", dir=shm if shm.is_dir() else None)) \
        if shm.is_dir() else tmp_path_factory.mktemp("golden-store")
    (folder / "golden.yaml").write_text(SUITE)
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
    from bench.config import load_suite, shipped_suites
    from bench.plan import make_plan
    from bench.tracking import Tracker

    smoke = load_suite("smoke")  # one finished cell of a shipped suite; the rest must show as missing
    job = make_plan(smoke).all_eval_jobs()[0]
    tracker = Tracker("sqlite:///all.db", smoke.name)
    parent = tracker.start(job.train.name, _train_tags(job.train))
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
