"""Issue 27, item 1: stops the way schedulers send them. SIGTERM or SIGINT to the whole process
group (Slurm's time limit, ``scancel``, a container stop, ``kill -- -PGID``) reaches the driver
and every worker at once; at any moment from start-up on the run must end 143/130 with no
traceback, no FAILED or RUNNING run, its training state saved, and the rerun must resume from
the saved step and finish with nothing repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.run.resume_state import ResumeFile
from tests.helpers import kill_group
from tests.processes import bench_process, statuses, wait_for_state

pytestmark = pytest.mark.integration

SUITE = """
name: grp
seeds: [0]
datasets: [{name: glyphs, way: 3, shot: 1, query: 2}]
train: {steps: 400, meta_batch: 1, checkpoint_every: 5}
eval: {episodes: 4}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: 4/255}}]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyphs) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "grp.yaml").write_text(SUITE)
    return tmp_path


def loaded(pid: int, name: str) -> bool:
    """Whether process ``pid`` has mapped a shared library whose path contains ``name``."""
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def wait_for_library(process: subprocess.Popen, name: str, timeout: float = 120, in_worker: bool = False) -> None:
    """Until the child (or, ``in_worker``, a process it started) is loading ``name``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        pids = [process.pid]
        if in_worker:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            pids = [int(pid) for pid in children.read_text().split()] if children.exists() else []
        if any(loaded(pid, name) for pid in pids):
            return
        time.sleep(0.01)
    raise AssertionError(f"no process loaded {name}")


def stop_group(process: subprocess.Popen, signum: int, workdir: Path) -> str:
    """Send ``signum`` to the child's whole process group; its stderr once it has exited."""
    os.killpg(process.pid, signum)
    try:
        process.wait(timeout=240)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise AssertionError(f"bench run did not stop within 240 s of {signal.Signals(signum).name}") from None
    return (workdir / "run.err").read_text()


def assert_clean_stop(process: subprocess.Popen, err: str, code: int) -> None:
    assert process.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err and "Exception ignored" not in err, err
    if Path("mlflow.db").exists():
        assert set(statuses("sqlite:///mlflow.db", "grp")) <= {"FINISHED"}, "a stopped job was recorded"


@pytest.mark.parametrize("signum, code, inherited", [
    (signal.SIGTERM, 143, signal.SIG_DFL), (signal.SIGINT, 130, signal.SIG_IGN)],
    ids=["SIGTERM", "SIGINT-from-a-background-shell"])
def test_a_group_signal_during_start_up_stops_cleanly(workdir: Path, children: list, signum: int, code: int,
                                                      inherited: signal.Handlers) -> None:
    """The signal lands while the command imports torch (seconds), before the driver has planned
    or started any worker. (Before the interpreter runs the command's first line, tens of
    milliseconds, nothing can handle it: the default action ends the process, which shells also
    report as 143/130, with nothing written.)"""
    with (workdir / "run.err").open("w") as err:
        process = bench_process("run", "grp.yaml", "--no-progress", "--workers", "2", inherited=inherited,
                                stderr=err)
    children.append(process)
    wait_for_library(process, "libtorch")
    assert_clean_stop(process, stop_group(process, signum, workdir), code)


def test_a_group_signal_while_spawned_workers_start_stops_cleanly(workdir: Path, children: list) -> None:
    """Workers with two threads each are spawned (`bench.scheduler.local.start_method`): a fresh
    interpreter that imports torch for seconds before its handlers exist. It starts with the
    signals blocked, so the group signal waits for them instead of killing it."""
    with (workdir / "run.err").open("w") as err:
        process = bench_process("run", "grp.yaml", "--no-progress", "--workers", "2", "--threads-per-job", "2",
                                stderr=err)
    children.append(process)
    wait_for_library(process, "libtorch", in_worker=True)
    assert_clean_stop(process, stop_group(process, signal.SIGTERM, workdir), 143)


@pytest.mark.parametrize("threads", ["1", pytest.param("2", marks=pytest.mark.slow)],
                         ids=["forked-workers", "spawned-workers"])
def test_a_group_signal_mid_training_saves_the_state_and_the_rerun_resumes(workdir: Path, children: list,
                                                                          capsys: pytest.CaptureFixture,
                                                                          threads: str) -> None:
    """Two workers training, each with its own copy of the signal: both save their state at the
    next meta-update, the driver records nothing of them, and the rerun resumes both."""
    states = workdir / "bench-resume"
    with (workdir / "run.err").open("w") as err:
        process = bench_process("run", "grp.yaml", "--no-progress", "--workers", "2", "--threads-per-job", threads,
                                stderr=err)
    children.append(process)
    wait_for_state(states, process)  # training has begun: at least one worker saved a step
    assert_clean_stop(process, stop_group(process, signal.SIGTERM, workdir), 143)
    steps = {path.name: ResumeFile(path).saved_step() for path in states.glob("*.pt")}
    assert steps and all(step and 0 < step < 400 for step in steps.values()), steps
    capsys.readouterr()
    assert main(["run", "grp.yaml", "--no-progress", "--workers", "2", "--threads-per-job", threads]) == 0
    out = capsys.readouterr().out
    assert out.count("resume  ") == len(steps), out
    counts = statuses("sqlite:///mlflow.db", "grp")
    assert counts == {"FINISHED": 2 + 2 * 2}, counts  # each job once, none failed, none left running
    assert not list(states.glob("*.pt"))
