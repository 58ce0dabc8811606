"""One project root: a researcher's folder with suites/ and baselines/ works from any of its
subfolders and with --project from anywhere; new baselines and reports land in it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import bench_in_fresh_process

pytestmark = pytest.mark.integration

SUITE = """name: mine
datasets: [{name: glyphs, way: 5, shot: 1, query: 2}]
train: {steps: 2, meta_batch: 1}
eval: {episodes: 2}
baselines: [mynet]
threats: [clean]
"""


def _bench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``bench`` in a fresh process (the registry loads baseline files once per process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "BENCH_BASELINES_PATH")}
    return bench_in_fresh_process(cwd, *args, env=env)


@pytest.fixture()
def project(tmp_path: Path, glyphs) -> Path:
    root = tmp_path / "research"
    (root / "suites").mkdir(parents=True)
    (root / "notes" / "deep").mkdir(parents=True)
    (root / "suites" / "mine.yaml").write_text(SUITE)
    done = _bench(root / "notes", "new-baseline", "mynet")
    assert done.returncode == 0 and (root / "baselines" / "mynet.py").is_file(), done.stderr
    return root


def test_a_project_works_from_its_subfolders_and_with_project_from_anywhere(project: Path, tmp_path: Path) -> None:
    inside = _bench(project / "notes" / "deep", "validate", "mine")
    assert inside.returncode == 0 and "suites/mine.yaml" in inside.stdout, inside.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    lost = _bench(outside, "validate", "mine")
    assert lost.returncode == 2 and "no suite named 'mine'" in lost.stderr
    found = _bench(outside, "--project", str(project), "validate", "mine")
    assert found.returncode == 0, found.stderr
    listing = _bench(outside, "--project", str(project), "list", "baselines")
    assert "baselines/mynet.py" in listing.stdout
    bad = _bench(outside, "--project", str(outside), "validate", "mine")
    assert bad.returncode == 2 and "holds neither suites/ nor baselines/" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_store_and_the_reports_follow_the_project_root(project: Path, tmp_path: Path) -> None:
    """Issue 27 item 5: with no --tracking-uri, every subfolder and --project from anywhere use
    ``<root>/mlflow.db``; messages name it by absolute path, the report by its project-relative form."""
    sub = project / "notes" / "deep"
    ran = _bench(sub, "run", "mine", "--device", "cpu", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    assert (project / "mlflow.db").is_file() and not (sub / "mlflow.db").exists()
    assert f"--backend-store-uri sqlite:///{project.resolve() / 'mlflow.db'}" in ran.stdout
    again = _bench(project / "suites", "run", "mine", "--dry-run")
    assert again.returncode == 0, again.stderr
    assert f"0 jobs to run, 2 finished, 0 reused from other suites (store sqlite:///{project.resolve()}/mlflow.db)" \
        in again.stdout
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    done = _bench(outside, "--project", str(project), "report", "mine")
    assert done.returncode == 0, done.stderr
    leaderboard = (project / "reports" / "mine" / "leaderboard.md").read_text()
    assert "from the MLflow store `sqlite:///mlflow.db`" in leaderboard
    assert not (outside / "mlflow.db").exists() and not (sub / "reports").exists()
    missing = _bench(outside, "--project", str(project), "report", "mine", "--tracking-uri", "sqlite:///none.db")
    assert missing.returncode == 2 and f"sqlite:///{outside.resolve() / 'none.db'}" in missing.stderr
