"""The scheduler: resume after SIGKILL, Ctrl-C, failure isolation and retries, workers,
concurrent writers into SQLite and into a real `mlflow server`, and the Ray backend."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench.baseline import Baseline, TaskModel
from bench.cli import main
from bench.registry import BASELINES
from bench.tracking import Tracker
from bench.tracking.records import ERROR, JOB_KEY, KIND, LABEL, SEED, TAG, THREAT_LABEL
from tests import processes
from tests.helpers import LineReader, kill_group
from tests.processes import bench_process, wait_for_runs, wait_for_state

pytestmark = pytest.mark.integration

SUITE = """
name: sched
seeds: [0]
datasets: [{name: glyphs, way: 3, shot: 1, query: 2}]
train: {steps: 3, meta_batch: 1}
eval: {episodes: 4}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: 4/255}}, {name: gaussian_noise, params: {severity: 2}}]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyphs) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def write(folder: Path, text: str = SUITE) -> Path:
    path = folder / "sched.yaml"
    path.write_text(text)
    return path


def per_episode(uri: str, name: str = "sched") -> dict[tuple[str, str, str], list[float]]:
    return processes.per_episode(uri, name)


def statuses(uri: str, name: str = "sched") -> Counter:
    return processes.statuses(uri, name)


def finished_keys(uri: str, name: str = "sched") -> Counter:
    return Counter(r.data.tags[TAG + JOB_KEY] for r in Tracker(uri, name, create=False).runs()
                   if r.info.status == "FINISHED")


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(workdir: Path, children: list) -> None:
    suite = write(workdir)
    assert main(["run", str(suite), "--no-progress", "--tracking-uri", "sqlite:///reference.db"]) == 0
    reference = per_episode("sqlite:///reference.db")
    uri = "sqlite:///mlflow.db"
    Tracker(uri, "sched")  # schema first: two processes must not migrate a new file at once
    for kill_after in (1, 4):  # after the first train run; in the middle of the evaluations
        with (workdir / f"killed-{kill_after}.err").open("w") as err:
            process = bench_process("run", str(suite), "--no-progress", "--workers", "1", stderr=err)
        children.append(process)
        wait_for_runs(uri, kill_after, process)  # an observable state: finished runs in the store
        kill_group(process)
        assert process.returncode == -signal.SIGKILL
    assert main(["run", str(suite), "--no-progress"]) == 0
    assert per_episode(uri) == reference
    keys = finished_keys(uri)
    assert len(keys) == 2 + 2 * 3 and set(keys.values()) == {1}  # no job repeated, none lost
    assert statuses(uri).get("RUNNING", 0) == 0


@pytest.mark.parametrize("signum, code, inherited", [
    (signal.SIGINT, 130, signal.SIG_IGN), (signal.SIGTERM, 143, signal.SIG_IGN), (signal.SIGINT, 130, signal.SIG_DFL)],
    ids=["SIGINT-inherited-ignored", "SIGTERM-inherited-ignored", "SIGINT-inherited-default"])
def test_a_signal_stops_the_run_cleanly_whatever_the_child_inherited(workdir: Path, children: list, signum: int,
                                                                   code: int, inherited: signal.Handlers) -> None:
    """As from a background shell (the child starts with SIGINT and SIGTERM ignored) or from an
    interactive one (default dispositions): `bench run` must stop on the signal, record nothing
    half-done and exit 128 + signal."""
    suite = write(workdir, SUITE.replace("steps: 3", "steps: 400"))
    with (workdir / "run.err").open("w") as err:
        process = bench_process("run", str(suite), "--no-progress", "--workers", "1", inherited=inherited,
                                stdout=subprocess.PIPE, stderr=err)
    children.append(process)
    # The driver prints this inside its signal handling, once training has been submitted.
    LineReader(process).wait_for("running", timeout=240)
    process.send_signal(signum)
    try:
        process.wait(timeout=240)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise AssertionError(f"bench run did not stop within 240 s of {signal.Signals(signum).name}") from None
    err_text = (workdir / "run.err").read_text()
    assert process.returncode == code, err_text
    assert "interrupted" in err_text and "Traceback" not in err_text
    assert statuses("sqlite:///mlflow.db").get("RUNNING", 0) == 0
    assert list((workdir / "bench-resume").glob("*.pt")), "the training in progress left no resumable state"


def test_the_dry_run_and_the_run_name_the_step_a_job_resumes_from(workdir: Path, children: list,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """Issue 27, item 8: after an interruption, which job resumes from which step is visible."""
    from bench.run.resume_state import ResumeFile

    suite = write(workdir, SUITE.replace("steps: 3, meta_batch: 1", "steps: 60, meta_batch: 1, checkpoint_every: 5")
                  .replace("baselines: [protonet, maml]", "baselines: [protonet]"))
    states = workdir / "bench-resume"
    Tracker("sqlite:///mlflow.db", "sched")
    process = bench_process("run", str(suite), "--no-progress", "--workers", "1")
    children.append(process)
    wait_for_state(states, process)
    kill_group(process)
    (state,) = states.glob("*.pt")
    step = ResumeFile(state).saved_step()
    assert step is not None and step % 5 == 0 and 0 < step < 60
    earlier = ResumeFile(state).load()["progress"]["seconds"]  # the killed process's training time
    assert earlier > 0
    capsys.readouterr()
    assert main(["run", str(suite), "--dry-run"]) == 0
    assert f"[to run, resumes from step {step} of 60]" in capsys.readouterr().out
    assert main(["run", str(suite), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"resume  protonet · glyphs 3-way 1-shot · seed 0: from step {step} of 60 ({state.resolve()})" in out
    (train,) = [r for r in Tracker("sqlite:///mlflow.db", "sched", create=False).runs()
                if r.data.tags.get(TAG + KIND) == "train"]
    assert train.data.metrics["device_seconds"] > earlier  # all of the job's time, not its last part


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("backend", [("--workers", "1"), ("--workers", "2"), ("--backend", "ray", "--workers", "2")],
                         ids=["local-1", "local-2", "ray"])
def test_training_killed_at_three_moments_resumes_to_the_uninterrupted_result(workdir: Path, children: list,
                                                                              backend: tuple[str, ...]) -> None:
    if "ray" in backend:
        pytest.importorskip("ray")
    long = SUITE.replace("steps: 3, meta_batch: 1", "steps: 60, meta_batch: 1, checkpoint_every: 5")
    suite = write(workdir, long)
    assert main(["run", str(suite), "--no-progress", "--tracking-uri", "sqlite:///reference.db"]) == 0
    reference = per_episode("sqlite:///reference.db")
    uri, states = "sqlite:///mlflow.db", workdir / "bench-resume"
    Tracker(uri, "sched")
    moments = [lambda p: wait_for_state(states, p),  # mid-training, at its first state
               lambda p: wait_for_state(states, p, newer_than=max(f.stat().st_mtime for f in states.glob("*.pt"))),
               lambda p: wait_for_runs(uri, 1, p)]  # again at once, then after the first train run
    for moment in moments:
        process = bench_process("run", str(suite), "--no-progress", *backend)
        children.append(process)
        moment(process)
        kill_group(process)
    final = bench_process("run", str(suite), "--no-progress", *backend)  # resumes with the same backend
    children.append(final)
    assert final.wait(timeout=600) == 0
    assert per_episode(uri) == reference  # bitwise: the same floats, episode by episode
    assert statuses(uri).get("RUNNING", 0) == 0 and not list(states.glob("*.pt"))


class Failing(Baseline):
    """A baseline whose training raises (after a given number of attempts) or produces NaN.

    Use it through the `failing_registered` fixture, which registers a fresh subclass with its
    own attempt counter for each test: no count carries over from one test to the next.
    """

    name = "failing"
    paper = "test double"

    @dataclass(frozen=True)
    class Config:
        mode: str = "raise"
        succeed_on_attempt: int = 0

    attempts: Counter  # set per test by `failing_registered`

    def __init__(self, config, backbone, n_way, device) -> None:
        super().__init__(config, backbone, n_way, device)
        self.backbone = backbone
        self.attempts[config] += 1

    def train_step(self, episodes):
        if self.config.succeed_on_attempt and self.attempts[self.config] >= self.config.succeed_on_attempt:
            return {"loss": 1.0}
        if self.config.mode == "nan":
            return {"loss": float("nan")}
        if self.config.mode == "kill":  # the worker process dies as if the OOM killer struck
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("deliberate failure")

    def adapt(self, support_x, support_y) -> TaskModel:
        raise AssertionError("never evaluated")


@pytest.fixture
def failing_registered() -> Iterator[type[Failing]]:
    """`Failing` registered for one test, with a counter of attempts that starts at zero."""
    per_test = type("Failing", (Failing,), {"attempts": Counter()})
    with BASELINES.temporarily():
        BASELINES.add_class(per_test)
        yield per_test


def test_a_failing_job_is_isolated_recorded_and_retried(workdir: Path, failing_registered,
                                                        capsys: pytest.CaptureFixture) -> None:
    suite = write(workdir, SUITE.replace("[protonet, maml]", "[protonet, {name: failing, params: {mode: nan}}, "
                                         "{name: failing, params: {succeed_on_attempt: 2}, label: flaky}]")
                  .replace("threats: [clean, {name: fgsm, params: {eps: 4/255}}, ", "threats: [clean, ")
                  .replace("meta_batch: 1}", "meta_batch: 1, validate_every: 0}"))  # its adapt raises
    status = main(["run", str(suite), "--no-progress", "--workers", "1", "--retries", "1"])
    out, err = capsys.readouterr()
    assert status == 1
    assert "failing" in err and "TrainingDiverged" in err
    (line,) = [line for line in out.splitlines() if line.startswith("FAILED") and "failing[mode=nan]" in line]
    assert "[not trained]" in line and line.count("failing[mode=nan]") == 1, line  # no wrong tag, the name once
    assert re.search(r"training: TrainingDiverged: .* \(bench/run/training\.py:\d+; traceback in run [0-9a-f]+, "
                     r"traceback\.txt\)", line), line
    records = Tracker("sqlite:///mlflow.db", "sched", create=False).records()
    by_label = {(r.tags[LABEL], r.tags[THREAT_LABEL]): r for r in records}
    assert by_label[("protonet", "clean")].status == "FINISHED"  # the others still ran
    failed = by_label[("failing[mode=nan]", "clean")]
    assert failed.status == "FAILED" and "TrainingDiverged" in failed.tags[ERROR]
    # The flaky job failed once, was retried, and then trained: its failure is superseded.
    assert by_label[("flaky", "clean")].status == "FAILED"  # evaluating it raises by design
    runs = Tracker("sqlite:///mlflow.db", "sched", create=False).runs()
    train_runs = [r for r in runs if r.data.tags.get(TAG + LABEL) == "flaky" and r.data.tags[TAG + KIND] == "train"]
    assert sorted(r.info.status for r in train_runs) == ["FAILED", "FINISHED"]
    failed_train = [r for r in runs if r.data.tags.get(TAG + LABEL) == "failing[mode=nan]"
                    and r.data.tags[TAG + KIND] == "train"]
    assert len(failed_train) == 2  # first attempt and one retry, both recorded
    tracker = Tracker("sqlite:///mlflow.db", "sched", create=False)
    assert b"Traceback" in tracker.read_file(failed_train[0].info.run_id, "traceback.txt")
    assert b"training failed: TrainingDiverged" in tracker.read_file(failed.run_id, "traceback.txt")


def test_a_killed_worker_fails_only_its_job_and_is_replaced(workdir: Path, failing_registered,
                                                            capsys: pytest.CaptureFixture) -> None:
    # Forked CPU workers inherit the test's registration of the failing baseline.
    suite = write(workdir, SUITE.replace("[protonet, maml]", "[{name: failing, params: {mode: kill}}, protonet]")
                  .replace("seeds: [0]", "seeds: [0, 1]").replace(
                      "threats: [clean, {name: fgsm, params: {eps: 4/255}}, ", "threats: [clean, "))
    status = main(["run", str(suite), "--no-progress", "--device", "cpu", "--workers", "2", "--retries", "1"])
    _, err = capsys.readouterr()
    assert status == 1 and "worker died" in err
    records = Tracker("sqlite:///mlflow.db", "sched", create=False).records()
    by_cell = {(r.tags[LABEL], r.tags[SEED], r.tags[THREAT_LABEL]): r.status for r in records}
    for seed in ("0", "1"):  # every protonet job ran on the replacement workers
        assert by_cell[("protonet", seed, "clean")] == "FINISHED"
        assert by_cell[("protonet", seed, "gaussian_noise[severity=2]")] == "FINISHED"
        assert by_cell[("failing", seed, "clean")] == "FAILED"
    assert statuses("sqlite:///mlflow.db").get("RUNNING", 0) == 0


EIGHT = SUITE.replace("seeds: [0]", "seeds: [0, 1, 2, 3]").replace("threats: [clean, {name: fgsm, params: "
                                                                   "{eps: 4/255}}, ", "threats: [clean, ")


@pytest.mark.slow
def test_eight_workers_into_a_real_mlflow_server_lose_nothing_and_match_one_worker(
        workdir: Path, mlflow_server: str) -> None:
    suite = write(workdir, EIGHT)  # 8 train jobs, 16 evaluations
    assert main(["run", str(suite), "--no-progress", "--workers", "8", "--tracking-uri", mlflow_server]) == 0
    remote = per_episode(mlflow_server)
    assert len(remote) == 16 and all(len(v) == 4 for v in remote.values())
    assert len(finished_keys(mlflow_server)) == 24
    assert main(["run", str(suite), "--no-progress", "--workers", "1", "--tracking-uri", "sqlite:///one.db"]) == 0
    assert per_episode("sqlite:///one.db") == remote


def _write_runs(args: tuple[str, int]) -> None:
    uri, worker = args
    tracker = Tracker(uri, "concurrent")
    for i in range(5):
        run_id = tracker.start(f"w{worker}-{i}", {JOB_KEY: f"{worker}-{i}", KIND: "eval"})
        tracker.log(run_id, params={"worker": worker}, metrics={"accuracy": i / 10})
        tracker.log_file(run_id, "per_episode.json", b'{"accuracy": [0.5]}')
        tracker.end(run_id)


@pytest.mark.slow
def test_eight_concurrent_writers_into_sqlite_lose_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/concurrent.db"
    Tracker(uri, "concurrent")  # create the schema once
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        pool.map(_write_runs, [(uri, w) for w in range(8)])
    keys = finished_keys(uri, "concurrent")
    assert len(keys) == 40 and set(keys.values()) == {1}


@pytest.mark.slow
def test_ray_backend_gives_the_local_numbers(workdir: Path) -> None:
    ray = pytest.importorskip("ray")
    suite = write(workdir, SUITE.replace("[protonet, maml]", "[protonet]"))
    assert main(["run", str(suite), "--no-progress", "--tracking-uri", "sqlite:///local.db"]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        assert main(["run", str(suite), "--no-progress", "--backend", "ray",
                     "--tracking-uri", "sqlite:///ray.db"]) == 0
    finally:
        ray.shutdown()
    assert per_episode("sqlite:///ray.db") == per_episode("sqlite:///local.db")
    assert len(per_episode("sqlite:///ray.db")) == 3


def test_gpu_slots_respect_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.scheduler.slots import make_slots

    cpu = make_slots("cpu", workers=3)
    assert [s.device for s in cpu] == ["cpu"] * 3 and all(s.env["CUDA_VISIBLE_DEVICES"] == "" for s in cpu)
    if not torch.cuda.is_available():
        pytest.skip("no GPU here: the GPU slot layout is checked on a GPU machine")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    slots = make_slots("auto", None, jobs_per_gpu=2)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "0"]
