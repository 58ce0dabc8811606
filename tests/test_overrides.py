"""``--set`` overrides and the ``--baselines/--seeds/--threats/--datasets`` filters (issue 15,
item 1), through the CLI with a real store: same parsing and validation as the YAML, part of
the job identity, printed in the report footer; bad input is exit 2 and writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.cli import main

SUITE = """
name: knobs
seeds: [0, 1]
datasets: [{name: glyphs, way: 5, shot: [1, 5], query: 3}]
train: {steps: 2, meta_batch: 1}
eval: {episodes: 4}
baselines: [protonet, maml]
threats: [clean, {name: pgd, params: {eps: 8/255, steps: 2}}, {name: gaussian_noise, params: {severity: 2}}]
"""


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "knobs.yaml").write_text(SUITE)
    return str(tmp_path / "knobs.yaml")


def _plan(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["run", *args, "--dry-run"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _keys(plan: str) -> set[str]:
    return set(re.findall(r"train ([0-9a-f]{16})", plan))


def test_filters_select_jobs_without_changing_their_keys(suite: str, capsys: pytest.CaptureFixture) -> None:
    code, whole = _plan(capsys, suite)
    assert code == 0 and len(_keys(whole)) == 8
    code, part = _plan(capsys, suite, "--baselines", "proto*", "--seeds", "1", "--threats", "clean,pgd*",
                       "--datasets", "glyphs 5-way 1-shot")
    assert code == 0 and len(_keys(part)) == 1 and _keys(part) <= _keys(whole)
    assert part.count(" eval ") == 2 and "gaussian_noise" not in part
    assert main(["validate", suite, "--threats", "pgd*"]) == 0
    assert "8 train jobs, 8 evaluations" in capsys.readouterr().out


def test_overrides_are_validated_like_the_yaml_and_change_identity(suite: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    _, whole = _plan(capsys, suite)
    code, changed = _plan(capsys, suite, "--set", "train.steps=3", "--set", "baselines[1].train.steps=5",
                          "--set", "threats[1].params.eps=[2/255, 8/255]")
    assert code == 0 and not _keys(changed) & _keys(whole)  # other jobs
    assert "pgd[eps=2/255,steps=2]" in changed and "pgd[eps=8/255,steps=2]" in changed  # a list is an axis
    assert main(["validate", suite, "--set", "eval.episodes=6"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("args, message", [
    (["--set", "train.stepz=3"], "train.stepz: unknown parameter"),
    (["--set", "train.steps=0"], "train.steps: 0 is out of range"),
    (["--set", "train.steps"], "no '='"),
    (["--set", "baselines[7].train.steps=3"], "index 7 is out of range"),
    (["--set", "eval.episodes=[1, 2"], "not valid YAML"),
    (["--set", "seeds[0].x=1"], "goes into a mapping"),
    (["--baselines", "resnet*"], "--baselines 'resnet*' matches nothing"),
    (["--seeds", "7"], "--seeds '7' matches nothing"),
    (["--threats", "fgsm"], "--threats 'fgsm' matches nothing"),
])
def test_bad_overrides_and_filters_are_refused(suite: str, capsys: pytest.CaptureFixture, args: list[str],
                                               message: str) -> None:
    code, out = _plan(capsys, suite, *args)
    assert code == 2 and message in out and "Traceback" not in out
    assert not Path("mlflow.db").exists()


@pytest.mark.integration
def test_an_overridden_run_is_reported_with_its_overrides(suite: str, glyphs, capsys: pytest.CaptureFixture) -> None:
    run = ["--set", "train.steps=3", "--baselines", "protonet", "--seeds", "0", "--threats", "clean"]
    assert main(["run", suite, *run, "--device", "cpu", "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", suite, "--set", "train.steps=3", "--seeds", "0", "--threats", "clean", "--format",
                 "md"]) == 0
    table = capsys.readouterr().out
    assert "`bench report knobs.yaml --set train.steps=3 --seeds 0 --threats clean --format md`" in table.replace(
        str(Path.cwd()) + "/", "")
    assert "with the overrides --set train.steps=3" in table
    assert "| ProtoNet" in table and table.count("missing: not run") >= 1  # maml was not selected for the run
    assert main(["report", suite, "--format", "md"]) == 0  # the plain suite's jobs are other jobs
    plain = capsys.readouterr().out
    assert "with the overrides" not in plain and "record(s) of other configurations" in plain


def test_version_and_python_dash_m() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bench", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("fewshot-bench 0.")
