"""`bench run` in a pseudo-terminal, as a person sees it: one bar over every train and eval
job with its true total, a percentage and an ETA, the running jobs, and summary lines that
fit the terminal's width without a word cut in two."""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.plan.jobs import make_plan
from bench.suite.load import load_suite

termios = pytest.importorskip("termios")
fcntl = pytest.importorskip("fcntl")

pytestmark = pytest.mark.integration

TINY = """
name: tiny
datasets: [{name: glyphs, way: 5, shot: 1, query: 4}]
train: {steps: 2, meta_batch: 1}
eval: {episodes: 2}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: 8/255}}, {name: pgd, params: {steps: 2}},
          {name: gaussian_noise, params: {severity: 5}}]
"""
THREATS = ("clean", "fgsm[eps=8/255]", "pgd[steps=2]", "gaussian_noise[severity=5]")
COLUMNS = 100
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyphs) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def run_in_terminal(args: list[str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    """Run ``python -m bench ARGS`` with stdout and stderr on a pty of `COLUMNS` columns; read
    everything it writes until every writer closed the terminal; return (exit code, text)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, COLUMNS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "COLUMNS", "LINES")}
    process = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)  # from now on only the child (and its workers) hold the terminal open
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([master], [], [], left)[0]:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
    code = process.wait(timeout=60)
    assert time.monotonic() < deadline, "bench run did not finish in time"
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", errors="replace"))


@pytest.mark.parametrize("workers", ["1", "2"])  # jobs inline (a display thread) | in worker processes
def test_a_tiny_run_in_a_terminal_shows_one_true_bar_and_fitted_lines(workdir: Path, workers: str) -> None:
    suite = workdir / "tiny.yaml"
    suite.write_text(TINY)
    plan = make_plan(load_suite(str(suite)))
    planned = len(plan.train_jobs) + len(plan.all_eval_jobs())
    assert planned == 10  # 2 baselines x (1 train + 4 evals)

    code, text = run_in_terminal(["run", str(suite), "--device", "cpu", "--workers", workers], workdir)
    assert code == 0, text
    bars = re.findall(r"tiny: jobs +(\d+)%\|.*?\| (\d+)/(\d+) \[.*ETA", text)
    assert bars, text
    assert {int(total) for _, _, total in bars} == {planned}  # one total, all train and eval jobs
    assert (str(100), str(planned), str(planned)) in bars  # it reaches 100%, never beyond
    assert f"running {planned} jobs (2 train, 8 eval)" in text
    assert re.search(r"train +\d\d:\d\d  (step \d+/2 · )?protonet · glyphs 5-way 1-shot · seed 0", text)
    assert re.search(r"eval +\d\d:\d\d  threat clean · maml · glyphs 5-way 1-shot · seed 0", text)

    segments = re.split(r"\r\n|\r|\n", text)
    assert all(len(segment) <= COLUMNS for segment in segments), max(segments, key=len)
    done_words = " ".join(s for s in segments if s.startswith("done ") or s.startswith(" " * 8)).split()
    assert done_words.count("done") == 2
    for threat in THREATS:  # every cell whole on some line: nothing was cut inside a word
        assert done_words.count(threat) == 2, text

    code, text = run_in_terminal(["run", str(suite), "--device", "cpu", "--workers", workers], workdir)
    assert code == 0 and "nothing to run" in text and "jobs  " not in text
    assert re.search(r"skip +protonet · glyphs 5-way 1-shot · seed 0 \(already finished\)\s+clean \d+\.\d", text)
