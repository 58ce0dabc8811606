"""Issue 27, item 2: claims. Any number of drivers on one store run each job once: a job is
claimed before it starts, the claim is renewed while it runs, a dead holder's claim is taken
over (at once on this machine, after the stale timeout elsewhere), and a driver that finds a
job claimed moves on and says so."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.cli import main
from bench.tracking import Tracker
from bench.tracking.claims import HOLDER, ClaimBoard, this_process
from bench.tracking.records import JOB_KEY, TAG
from tests import processes
from tests.helpers import kill_group
from tests.processes import bench_process

pytestmark = pytest.mark.integration

SUITE = """
name: conc
seeds: [0, 1]
datasets: [{name: glyphs, way: 3, shot: 1, query: 2}]
train: {steps: 40, meta_batch: 1}
eval: {episodes: 4}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: 4/255}}]
"""


@pytest.fixture
def store(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker(uri, "conc")  # the schema first: several processes must not migrate one new file
    return uri


def test_a_claimed_key_is_refused_to_others_until_released(store: str) -> None:
    first, second = ClaimBoard(store), ClaimBoard(store)
    assert first.acquire("k1", "job one") is None
    held = second.acquire("k1", "job one")
    assert held is not None and held.holder == first.holder
    assert second.acquire("k2", "job two") is None  # other keys are free
    assert first.acquire("k1", "job one") is None  # its own claim stays its own
    first.release("k1")
    assert second.acquire("k1", "job one") is None


def test_the_claim_of_a_dead_process_on_this_machine_is_taken_over_at_once(store: str) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid belongs to no process now
    holder = this_process().rsplit(":", 2)[0] + f":{dead.pid}:0000"
    ghost = ClaimBoard(store)
    ghost.holder = holder
    assert ghost.acquire("k", "job") is None
    taker = ClaimBoard(store, stale_seconds=3600)
    assert taker.acquire("k", "job") is None  # no waiting: the holder is known to be gone
    statuses = {r.data.tags[HOLDER]: r.info.status for r in taker.client.search_runs([taker.experiment_id])}
    assert statuses[holder] == "KILLED"


def test_a_claim_whose_beat_stops_is_taken_over_after_the_timeout(store: str) -> None:
    """A holder on another machine (here: another host name) cannot be looked up; its claim is
    dead once its beat has not changed for ``stale_seconds`` of the taker's own clock."""
    remote = ClaimBoard(store)
    remote.holder = "node7:4026531836:4242:abcd0123"
    assert remote.acquire("k", "job") is None
    taker = ClaimBoard(store, stale_seconds=1.0)
    assert taker.acquire("k", "job") is not None  # first sight: alive
    remote.renew()
    seen = time.monotonic()
    assert taker.acquire("k", "job") is not None  # the beat moved: alive again
    while taker.acquire("k", "job") is not None:
        assert time.monotonic() - seen < 30, "a claim without beats was never taken over"
        time.sleep(0.1)
    assert time.monotonic() - seen >= 1.0


def _contend(args: tuple[str, str, int]) -> list[tuple[float, float]]:
    """One contender: hold the key ``rounds`` times; the (enter, leave) times of each hold."""
    uri, log, rounds = args
    board, held = ClaimBoard(uri), []
    while len(held) < rounds:
        if board.acquire("hot", "contended") is None:
            entered = time.time()
            Path(log).open("a").write(f"{os.getpid()} in\n")
            time.sleep(0.05)
            Path(log).open("a").write(f"{os.getpid()} out\n")
            held.append((entered, time.time()))
            board.release("hot")
        time.sleep(0.01 * (1 + os.getpid() % 7))
    return held


def test_contending_processes_never_hold_one_key_at_once(store: str, tmp_path: Path) -> None:
    log = tmp_path / "holds.log"
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        holds = pool.map(_contend, [(store, str(log), 3)] * 6)
    assert sum(len(h) for h in holds) == 18
    lines = log.read_text().split()
    states = lines[1::2]
    assert states == ["in", "out"] * 18, "two processes held the key at once"


def per_episode(uri: str) -> dict[tuple[str, str, str], list[float]]:
    return processes.per_episode(uri, "conc")


def runs_per_key(uri: str) -> Counter:
    return Counter((r.data.tags[TAG + JOB_KEY], r.info.status) for r in Tracker(uri, "conc", create=False).runs())


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyphs) -> Path:
    path = processes.suite_in_workdir(tmp_path, monkeypatch, "conc.yaml", SUITE)
    assert main(["run", str(path), "--no-progress", "--tracking-uri", "sqlite:///reference.db"]) == 0
    return path


def test_two_runs_of_one_suite_on_one_store_run_each_job_once(suite: Path, store: str, children: list,
                                                             tmp_path: Path) -> None:
    outputs = [tmp_path / f"run{i}.out" for i in range(2)]
    for out in outputs:
        with out.open("w") as handle:
            children.append(bench_process("run", str(suite), "--no-progress", "--workers", "1", "--tracking-uri",
                                          store, stdout=handle, stderr=subprocess.STDOUT))
    assert [process.wait(timeout=600) for process in children] == [0, 0]
    counts = runs_per_key(store)
    assert len(counts) == 12 and set(counts.values()) == {1} and {s for _, s in counts} == {"FINISHED"}, counts
    text = "".join(out.read_text() for out in outputs)
    assert "waiting " in text or "reuse   " in text, text  # one of them saw the other at work
    assert per_episode(store) == per_episode("sqlite:///reference.db")


def test_a_run_killed_mid_job_is_taken_over_by_the_other(suite: Path, store: str, children: list,
                                                         tmp_path: Path) -> None:
    """kill -9 of one driver: the survivor takes its claims over (same machine: at once) and
    ends with every job once, nothing RUNNING, the numbers of a single uninterrupted run."""
    victim = bench_process("run", str(suite), "--no-progress", "--workers", "1", "--tracking-uri", store)
    children.append(victim)
    board = ClaimBoard(store)
    while not board.holders():  # the victim is running a job under its claim
        assert victim.poll() is None, "the first run ended before it claimed a job"
        time.sleep(0.05)
    survivor = bench_process("run", str(suite), "--no-progress", "--workers", "1", "--tracking-uri", store)
    children.append(survivor)
    kill_group(victim)
    assert victim.returncode == -signal.SIGKILL
    assert survivor.wait(timeout=600) == 0
    counts = runs_per_key(store)
    assert set(counts.values()) == {1} and {s for _, s in counts} == {"FINISHED"}, counts
    assert per_episode(store) == per_episode("sqlite:///reference.db")


def test_a_team_server_on_postgresql_shared_by_two_runs_one_killed(suite: Path, team_server: str, children: list,
                                                                  tmp_path: Path) -> None:
    """Issue 27, item 3: PostgreSQL behind a real `mlflow server`, two `bench run` of one suite
    at once, one killed (SIGKILL, as a lost node) while it holds a claim: every job key ends with
    exactly one FINISHED run, nothing RUNNING, and the numbers of a single uninterrupted run."""
    runs = [bench_process("run", str(suite), "--no-progress", "--workers", "1", "--tracking-uri", team_server)
            for _ in range(2)]
    children.extend(runs)
    victim, survivor = runs
    board = ClaimBoard(team_server)
    while not any(f":{victim.pid}:" in claim.holder for claim in board.holders().values()):
        assert victim.poll() is None, "the first run ended before it claimed a job"
        time.sleep(0.05)
    kill_group(victim)
    assert survivor.wait(timeout=600) == 0
    counts = runs_per_key(team_server)
    assert len(counts) == 12 and set(counts.values()) == {1}, counts
    assert {status for _, status in counts} == {"FINISHED"}, counts
    assert per_episode(team_server) == per_episode("sqlite:///reference.db")
