"""Shared fixtures: one private data root per test session, glyphs built into it once, and a
real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import kill_group


@pytest.fixture(scope="session")
def bench_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private ``$BENCH_DATA`` for the whole session (tests never touch ~/.cache)."""
    root = tmp_path_factory.mktemp("bench-data")
    os.environ["BENCH_DATA"] = str(root)
    return root


@pytest.fixture(scope="session")
def glyphs(bench_data: Path):
    """The embedded glyphs data set at 28 px, built once per session."""
    from bench.registry import DATASETS

    return DATASETS.get("glyphs")().ensure(bench_data, 28)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A real `mlflow server` on 127.0.0.1 (remote tracking, artifacts served over HTTP); ready
    once its ``/health`` answers."""
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
               "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "2"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(server.pid, signal.SIGTERM)
        pytest.fail("mlflow server did not start")
    yield uri
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen]]:
    """Child processes of a test; whatever is still running at its end is killed with its group."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            kill_group(process)
