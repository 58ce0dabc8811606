"""`bench new-baseline`: the generated file passes the conformance battery unchanged."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.cli.scaffold import new_baseline
from bench.errors import BenchError
from bench.registry import PATH_VARIABLE

REPO = Path(__file__).resolve().parent.parent


def test_generated_baseline_passes_the_conformance_battery(tmp_path: Path) -> None:
    path = new_baseline("my_method", tmp_path)
    assert path.read_text().count("class MyMethod(Baseline)") == 1
    env = {**os.environ, PATH_VARIABLE: str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "tests" / "test_contract.py"), "-q",
                             "-k", "my_method", "-p", "no:cacheprovider"], env=env, capture_output=True,
                            text=True, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 10, result.stdout[-2000:]  # the whole battery ran
    listing = subprocess.run([sys.executable, "-m", "bench", "list", "baselines"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert "my_method" in listing.stdout


def test_name_clash_names_the_existing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"already exists in .*protonet\.py"):
        new_baseline("protonet", tmp_path)


def test_bad_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["new-baseline", "My-Method"]) == 2
    assert "not a valid baseline name" in capsys.readouterr().err


def test_two_files_with_one_name_are_an_error_naming_both(tmp_path: Path) -> None:
    clone = (REPO / "baselines" / "protonet.py").read_text()
    (tmp_path / "another.py").write_text(clone)
    env = {**os.environ, PATH_VARIABLE: str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bench", "list", "baselines"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "protonet.py" in result.stderr and "another.py" in result.stderr
