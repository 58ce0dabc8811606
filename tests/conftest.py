"""Shared fixtures: one private data root per test session, glyphs built into it once, and a
real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


def _serve_mlflow(backend_uri: str, artifacts: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 over ``backend_uri``, artifacts served over HTTP;
    yields its URI once ``/health`` answers, stops it afterwards."""
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts), "--workers", "2"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(lambda: urllib.request.urlopen(f"{uri}/health", timeout=1), server, "mlflow server")
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _wait_until_up(probe, process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        try:
            probe()
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{what} did not start")


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 backed by SQLite."""
    yield from _serve_mlflow(f"sqlite:///{tmp_path}/server.db", tmp_path / "server-artifacts")


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    return str(found) if found else None


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 (Debian's `postgresql`; `.ci/run` installs it), with
    a database ``mlflow``; yields its SQLAlchemy URI. Run as the ``postgres`` user when the tests
    run as root (PostgreSQL refuses root)."""
    initdb, server = _postgres_binary("initdb"), _postgres_binary("postgres")
    if not initdb or not server:
        pytest.skip("PostgreSQL is not installed; install it with `apt-get install -y postgresql`.")
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver: pip install -e '.[test]'")
    # Not under tmp_path: the postgres user may not enter the test's private temporary folders.
    data = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth", "trust"], check=True,
                   capture_output=True)
    port = _free_port()
    process = subprocess.Popen([*as_user, server, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                                "-k", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    import psycopg2

    def create_database() -> None:
        try:
            connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        except psycopg2.OperationalError as exc:
            raise OSError(str(exc)) from exc
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE mlflow")
        connection.close()

    try:
        _wait_until_up(create_database, process, "PostgreSQL")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def team_server(postgres: str, tmp_path: Path) -> Iterator[str]:
    """A team store as labs run one: `mlflow server` on PostgreSQL."""
    yield from _serve_mlflow(postgres, tmp_path / "team-artifacts")


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen]]:
    """Child processes of a test; whatever is still running at its end is killed with its group."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            kill_group(process)
