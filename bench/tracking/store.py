"""Which MLflow store, and opening it safely: URIs, retries, atomic creation of a SQLite file.

MLflow creates a SQLite store by running about 4 s of schema migrations on the final path;
a process killed in the middle leaves a half-migrated file on which every later run fails
(``table ... already exists``). Here a new store is migrated in a temporary file beside the
final one and renamed into place, under a lock on the folder, so a kill at any moment leaves
either no store or a complete one. Commands that only look never create a store.
"""

from __future__ import annotations

import fcntl
import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from bench.project import project_root

DEFAULT_URI = "sqlite:///mlflow.db"  # of the project folder (`default_uri`)
SQLITE = "sqlite:///"
RETRIES = 8
TRANSIENT = ("locked", "busy", "connection", "timed out", "temporarily", "503", "502")
CREATING = ".creating"


def resolve_uri(uri: str | None) -> str:
    """The tracking URI, absolute: the argument, else ``$MLFLOW_TRACKING_URI``, else the
    project's store (`default_uri`). A relative SQLite path given by the user is taken from the
    working directory, as MLflow does."""
    given = uri or os.environ.get("MLFLOW_TRACKING_URI")
    return absolute_uri(given) if given else default_uri()


def default_uri() -> str:
    """``<project>/mlflow.db`` (`bench.project`), else ``./mlflow.db``, as an absolute URI: the
    same store whichever subfolder of the project a command runs from."""
    root = project_root()
    return SQLITE + str((root if root is not None else Path.cwd()).resolve() / "mlflow.db")


def shown_uri(uri: str) -> str:
    """``uri`` as reports print it: a SQLite file inside the project folder (else the working
    directory) relative to it (``sqlite:///mlflow.db``), so a committed report names no
    machine's paths; others as they are."""
    path, root = sqlite_path(uri), project_root()
    base = (root if root is not None else Path.cwd()).resolve()
    if path is None or not path.is_relative_to(base):
        return uri
    return SQLITE + str(path.relative_to(base))


def absolute_uri(uri: str) -> str:
    """A relative SQLite path made absolute: MLflow caches stores by URI string, so a relative
    path would keep pointing at the first working directory's file within one process."""
    if uri.startswith(SQLITE) and not uri.startswith(SQLITE + "/"):
        return SQLITE + str(Path(uri[len(SQLITE):]).resolve())
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite URI, else None."""
    resolved = absolute_uri(uri)
    return Path(resolved[len(SQLITE):]) if resolved.startswith(SQLITE) else None


def store_exists(uri: str) -> bool:
    """False only for a SQLite file that does not exist (opening it would create a store)."""
    path = sqlite_path(uri)
    return path is None or path.exists()


def retried(method: Callable[..., Any]) -> Callable[..., Any]:
    """Retry a store call on transient errors (a SQLite file locked by another process, a
    server briefly unreachable), with exponential backoff; the last error propagates."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(RETRIES):
            try:
                return method(*args, **kwargs)
            except (mlflow.exceptions.MlflowException, OSError) as exc:
                transient = any(word in str(exc).lower() for word in TRANSIENT)
                if not transient or attempt == RETRIES - 1:
                    raise
                time.sleep(min(0.05 * 2**attempt, 2.0))
        raise AssertionError("unreachable")

    return wrapper


def open_client(uri: str, create: bool) -> MlflowClient | None:
    """A client on ``uri``; None for a SQLite file that is absent and not to be created."""
    path = sqlite_path(uri)
    if path is not None and not path.exists():
        if not create:
            return None
        create_sqlite_store(path)
    return MlflowClient(tracking_uri=absolute_uri(uri))


def create_sqlite_store(path: Path) -> None:
    """Create a complete MLflow SQLite store at ``path`` atomically (no-op if one appeared)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(path.parent):
        if path.exists():
            return
        for leftover in path.parent.glob(f".{path.name}.*{CREATING}*"):  # with its -journal
            leftover.unlink(missing_ok=True)  # a creation killed earlier
        temporary = path.with_name(f".{path.name}.{os.getpid()}{CREATING}")
        client = MlflowClient(tracking_uri=SQLITE + str(temporary))
        client.search_experiments(max_results=1)  # runs the migrations, creates the default experiment
        _dispose(SQLITE + str(temporary))
        os.replace(temporary, path)  # atomic on POSIX: the final name appears complete or not at all


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on a folder: concurrent first runs create the store once."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _dispose(uri: str) -> None:
    """Close MLflow's cached engine on the temporary file, so nothing writes to it after the rename."""
    from mlflow.tracking._tracking_service import utils

    store = utils._get_store(uri)
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()
