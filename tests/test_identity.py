"""Result identity end to end through the CLI with a real MLflow store (issue 12).

Edited code makes finished runs stale (re-run by default, kept on request); ``--rerun`` and
``--force`` re-run on request; a suite that repeats another suite's jobs reuses their runs
(copied into its own experiment, so both reports are complete).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.registry import PATH_VARIABLE
from bench.tracking.records import KEPT_STALE, LABEL, TAG, THREAT_LABEL, TRAIN_KEY

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
SUITE = """
name: {name}
datasets: [{{name: glyphs, way: 5, shot: 1, query: 3}}]
train: {{steps: 2, meta_batch: 1}}
eval: {{episodes: 4}}
baselines: {baselines}
threats: [clean, {{name: gaussian_noise, params: {{severity: 2}}}}]
"""


def _suite(folder: Path, name: str, baselines: str) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(SUITE.format(name=name, baselines=baselines))
    return str(path)


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["run", *args, "--device", "cpu", "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _trained(out: str) -> int:
    found = re.search(r"\((\d+) trained now\)", out)
    assert found, out
    return int(found.group(1))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyphs) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def mynet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user baseline file outside the repository (a renamed copy of ProtoNet)."""
    from bench.registry import BASELINES

    folder = tmp_path / "user_baselines"
    folder.mkdir()
    source = (REPO / "baselines" / "protonet.py").read_text()
    source = source.replace('name = "protonet"', 'name = "mynet"').replace("class ProtoNet(", "class MyNet(")
    path = folder / "mynet.py"
    path.write_text(source)
    monkeypatch.setenv(PATH_VARIABLE, str(folder))
    with BASELINES.temporarily():  # finds mynet.py, forgets it afterwards
        yield path


def test_edited_baseline_code_makes_its_runs_stale(workdir: Path, mynet: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    suite = _suite(workdir, "mine", "[mynet, protonet]")
    code, out = _run(capsys, suite)
    assert code == 0 and _trained(out) == 2
    assert main(["run", suite, "--dry-run"]) == 0
    assert capsys.readouterr().out.count("[finished]") == 6

    mynet.write_text(mynet.read_text() + "\n# a comment and a docstring change no result\n")
    assert main(["run", suite, "--dry-run"]) == 0
    assert capsys.readouterr().out.count("[finished]") == 6
    mynet.write_text(mynet.read_text() + "\nLOSS_SCALE = 2.0\n")  # an edit of the code
    assert main(["run", suite, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert plan.count("stale: code changed since it ran") == 1 and str(mynet) in plan  # mynet's train job
    assert plan.count("to run: retrained") == 2 and plan.count("[finished]") == 3  # protonet untouched

    code, out = _run(capsys, suite, "--reuse-stale")
    assert code == 0 and _trained(out) == 0
    from bench.tracking import Tracker

    kept = [r for r in Tracker(None, "mine", create=False).runs() if TAG + KEPT_STALE in r.data.tags]
    assert len(kept) == 3 and {r.data.tags[TAG + LABEL] for r in kept} == {"mynet"}  # recorded as such

    code, out = _run(capsys, suite)
    assert code == 0 and _trained(out) == 1 and "rerun   mynet" in out and "stale" in out
    code, out = _run(capsys, suite)
    assert code == 0 and _trained(out) == 0


def test_rerun_and_force_repeat_finished_jobs(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    suite = _suite(workdir, "again", "[protonet, maml]")
    assert _trained(_run(capsys, suite)[1]) == 2
    code, out = _run(capsys, suite, "--rerun", "maml")
    assert code == 0 and _trained(out) == 1 and "--rerun maml" in out
    code, out = _run(capsys, suite, "--rerun", "gaussian*")
    assert code == 0 and _trained(out) == 0 and out.count("rerun   gaussian_noise") == 2
    code, out = _run(capsys, suite, "--force")
    assert code == 0 and _trained(out) == 2
    code, out = _run(capsys, suite, "--rerun", "resnet")
    assert code == 2 and "--rerun 'resnet' matches no job" in out and "Traceback" not in out


def test_the_dry_run_summary_counts_jobs_per_baseline_and_kind(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    suite = _suite(workdir, "counted", "[protonet, maml]")
    assert _run(capsys, suite, "--baselines", "protonet")[0] == 0
    assert main(["run", suite, "--dry-run", "--summary"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["protonet  train 0/1 · clean 0/1 · corruption 0/1",
                         "maml      train 1/1 · clean 1/1 · corruption 1/1",
                         "total     train 1/2 · clean 1/2 · corruption 1/2"]
    assert not any(" eval " in line for line in lines)  # no line per job
    code, out = _run(capsys, suite, "--summary")
    assert code == 2 and "add --dry-run" in out and "Traceback" not in out


def test_a_copied_suite_reuses_the_runs_of_the_first(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    first = _suite(workdir, "first", "[protonet]")
    assert _trained(_run(capsys, first)[1]) == 1
    second = _suite(workdir, "second", "[protonet, maml]")
    assert main(["run", second, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert plan.count("[reused from suite 'first']") == 3 and "1 train" not in plan
    code, out = _run(capsys, second)
    assert code == 0 and _trained(out) == 1  # only maml is new
    from bench.tracking import Tracker

    def per_episode(name: str) -> dict[tuple[str, str], list[float]]:
        return {(r.tags[LABEL], r.tags[THREAT_LABEL]): r.per_episode
                for r in Tracker(None, name, create=False).records()}

    copied, original = per_episode("second"), per_episode("first")
    assert len(copied) == 4 and all(copied[key] == original[key] for key in original)
    for name in (first, second):
        assert main(["report", name, "--format", "md"]) == 0
        assert "missing" not in capsys.readouterr().out
    assert _trained(_run(capsys, second)[1]) == 0


def test_variants_that_differ_in_training_are_separate_rows(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """Before, ``[protonet, {name: protonet, train: {steps: 3}}]`` ran 2 train jobs and the report
    showed one ``protonet`` row built from one of them."""
    suite = _suite(workdir, "ablation", "[protonet, {name: protonet, train: {steps: 3}}]")
    code, out = _run(capsys, suite)
    assert code == 0 and _trained(out) == 2
    assert main(["report", suite, "--format", "json"]) == 0
    capsys.readouterr()
    import json

    data = json.loads((workdir / "reports" / "ablation" / "leaderboard.json").read_text())
    assert data["tables"][0]["rows"] == ["protonet", "protonet[train.steps=3]"]
    cells = {(c["baseline"], c["column"]): c for c in data["cells"]}
    assert all(cells[(row, "clean")]["status"] == "ok" for row in data["tables"][0]["rows"])
    from bench.tracking import Tracker

    records = Tracker(None, "ablation", create=False).records()
    by_label: dict[str, set[str]] = {}
    for record in records:
        by_label.setdefault(record.tags[LABEL], set()).add(record.tags[TRAIN_KEY])
    assert len(by_label) == 2 and all(len(keys) == 1 for keys in by_label.values())
    assert by_label["protonet"] != by_label["protonet[train.steps=3]"]  # one identity per row


def test_equal_labels_are_refused_naming_both_entries(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    suite = _suite(workdir, "clash", "[protonet, {name: protonet, train: {steps: 3}, label: protonet}]")
    assert main(["run", suite, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "baselines[0]" in err and "baselines[1]" in err and "Traceback" not in err
    assert not (workdir / "mlflow.db").exists()


def test_lists_are_axes_and_labels_print_pixels_only_as_fractions(workdir: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """Before, ``train: {steps: [5, 50]}`` kept 5 only, and 0.4 printed as ``102/255``."""
    path = workdir / "axes.yaml"
    path.write_text(SUITE.format(name="axes", baselines="[{name: protonet, train: {steps: [5, 50]}}]")
                    .replace("threats: [clean,", "threats: [{name: label_noise, params: {fraction: 0.4}}, "
                             "{name: fgsm, params: {eps: 8/255}},"))
    assert main(["run", str(path), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "protonet[train.steps=5]" in plan and "protonet[train.steps=50]" in plan and plan.count(". train ") == 2
    assert "label_noise[fraction=0.4]" in plan and "fgsm[eps=8/255]" in plan and "102/255" not in plan


def test_commands_that_only_look_write_nothing_and_survive_a_closed_pipe(workdir: Path) -> None:
    import subprocess
    import sys

    suite = _suite(workdir, "look", "[protonet, maml]")
    for args in (["run", suite, "--dry-run"], ["validate", suite], ["list", "threats"]):
        done = subprocess.run([sys.executable, "-m", "bench", *args], cwd=workdir, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["look.yaml"]  # no store, no file
    # 600 seeds: about 150 KB of plan, more than a pipe holds, so the writer meets the closed pipe
    wide = Path(suite).read_text().replace("name: look", "name: look\nseeds: " + str(list(range(600))))
    Path(suite).write_text(wide)
    reader = subprocess.Popen(f"{sys.executable} -m bench run {suite} --dry-run | head -1", shell=True,
                              cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = reader.communicate(timeout=300)
    assert out.count("\n") == 1 and "Traceback" not in err and "BrokenPipe" not in err, err[-2000:]
