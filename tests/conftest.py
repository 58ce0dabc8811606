"""Shared fixtures: one private data root per test session, glyphs built into it once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
