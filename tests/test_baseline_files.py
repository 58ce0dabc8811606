"""A baseline file that fails to import is named with its line, and only what needs it fails:
other suites keep validating and running, `bench list baselines` lists it as broken."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import VALID_SUITE, bench_in_fresh_process

BROKEN = {
    "syntax.py": ("from bench.baseline import Baseline\n\n\nclass Typo(Baseline):\n    def adapt(self:\n",
                  "syntax.py, line 5: SyntaxError"),
    "missing.py": ("import math\nimport package_that_does_not_exist\n", "missing.py, line 2: ModuleNotFoundError"),
}


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``bench`` in a fresh process (the registry loads baseline files once per process)."""
    return bench_in_fresh_process(tmp_path, *args, env={**os.environ, "BENCH_BASELINES_PATH": str(tmp_path / "user")})


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    (tmp_path / "user").mkdir()
    for name, (text, _) in BROKEN.items():
        (tmp_path / "user" / name).write_text(text)
    (tmp_path / "uses_protonet.yaml").write_text(VALID_SUITE)
    (tmp_path / "uses_typo.yaml").write_text(VALID_SUITE.replace("[protonet]", "[typo]"))
    return tmp_path


def test_a_suite_of_healthy_baselines_still_validates(broken: Path) -> None:
    done = _bench(broken, "validate", "uses_protonet.yaml")
    assert done.returncode == 0, done.stderr


def test_a_suite_needing_a_broken_file_names_it_with_its_line(broken: Path) -> None:
    done = _bench(broken, "validate", "uses_typo.yaml")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for _, expected in BROKEN.values():
        assert expected in done.stderr, done.stderr
    assert "unknown baseline 'typo'" in done.stderr and "Fix them" in done.stderr


def test_list_baselines_shows_files_and_the_broken_ones(broken: Path) -> None:
    done = _bench(broken, "list", "baselines")
    assert done.returncode == 0, done.stderr
    assert "(broken)" in done.stdout and "syntax.py: line 5: SyntaxError" in done.stdout
    assert "file: " in done.stdout and "protonet.py" in done.stdout
