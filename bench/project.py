"""The project: the one folder suites, baselines and reports come from.

Resolved once per command: ``--project DIR``, else the nearest folder upwards from the working
directory that holds ``suites/`` or ``baselines/`` (a checkout of this repository is one, and so
is a researcher's own folder), else the installed package's checkout. Suites are looked up in
the project's ``suites/`` and then among the shipped ones; the project's ``baselines/`` are
loaded beside the shipped baselines; `bench new-baseline` writes there; `bench report` writes
to the project's ``reports/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.errors import BenchError

REPO_ROOT = Path(__file__).resolve().parent.parent  # the installed checkout (shipped suites, baselines)
MARKERS = ("suites", "baselines")
ENV = "BENCH_PROJECT"  # --project for the worker processes a command starts (they inherit it)
_chosen: Path | None = None


def find_project(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards holding ``suites/`` or ``baselines/``."""
    for folder in (start, *start.parents):
        if any((folder / marker).is_dir() for marker in MARKERS):
            return folder
    return None


def set_project(explicit: str | None) -> Path | None:
    """Fix the project for this process: ``explicit`` (``--project``) or the one found upwards."""
    global _chosen
    if explicit is not None:
        folder = Path(explicit).expanduser().resolve()
        if not any((folder / marker).is_dir() for marker in MARKERS):
            raise BenchError(f"--project {explicit}: {folder} holds neither suites/ nor baselines/. Give the folder "
                             f"of your project (make it with `mkdir -p {explicit}/suites`).")
        _chosen = folder
        os.environ[ENV] = str(folder)
    else:
        _chosen = find_project(Path(os.environ[ENV]) if ENV in os.environ else Path.cwd())
    return _chosen


def reset_project() -> None:
    """Forget the chosen project (the next command resolves its own)."""
    global _chosen
    _chosen = None
    os.environ.pop(ENV, None)


def project_root() -> Path | None:
    """The project folder, or None when there is none (then the working directory and the
    installed checkout serve)."""
    if _chosen is not None:
        return _chosen
    return find_project(Path(os.environ[ENV]) if ENV in os.environ else Path.cwd())


def project_folder(name: str) -> Path | None:
    """``suites``, ``baselines`` or ``reports`` of the project, if there is a project."""
    root = project_root()
    return None if root is None else root / name
