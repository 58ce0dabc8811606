"""`python -m benchmarks.device_check` stays green without a GPU: it says what it skipped and
writes its JSON of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the check runs for minutes; run it directly")
def test_the_device_check_skips_what_needs_cuda_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.device_check", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["environment"]["cuda"] is False
    assert [s["stage"] for s in figures["stages"]] == ["gpu tests", "maml vmap vs loop",
                                                       "corruptions batched vs per image",
                                                       "reference suite step times"]
    assert all(s["skipped"] == "no CUDA device" for s in figures["stages"])
    assert done.stdout.count("skipped") == 4
