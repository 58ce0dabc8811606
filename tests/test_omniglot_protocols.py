"""The real Omniglot through both reference protocols, end to end, on a short budget (slow).

Prepares the Vinyals split and Lake's split from ``../shared/data/omniglot`` into the test data
root, then runs one suite: a ProtoNet trained 20-way with 5 queries (Snell et al.'s recipe,
shortened to 300 meta-updates), tested at 5-way and 20-way 1-shot on the Vinyals test characters
and 20-way 1-shot within one alphabet on Lake's evaluation alphabets. It checks what a short run
must already show: one train job per split serves its test settings, and accuracy far above
chance on every setting (a broken loader, split, rotation or within-group sampler would not).
Slow: about ten minutes on a 2-core CPU (``python -m pytest -m slow tests/test_omniglot_protocols.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main

RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600),
              pytest.mark.skipif(not (RAW / "images_evaluation").is_dir(), reason=f"no real Omniglot in {RAW}")]

SUITE = """
name: omniglot-short
datasets:
  - {name: omniglot, way: [5, 20], shot: 1, query: 5}
  - {name: omniglot-lake, way: 20, shot: 1, query: 1, within: alphabet}
train: {steps: 300, meta_batch: 1, way: 20, query: 5, validate_every: 0, select: last}
eval: {episodes: 100}
baselines: [protonet]
threats: [clean]
"""

# Far above chance (20% and 5%) after 300 meta-updates; a measured run is well above these.
FLOORS = {("omniglot", 5): 0.85, ("omniglot", 20): 0.6, ("omniglot-lake", 20): 0.5}


def test_protonet_learns_on_both_omniglot_protocols(tmp_path: Path, bench_data: Path, monkeypatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    from bench.data.omniglot import OmniglotLake, OmniglotVinyals
    from bench.tracking import Tracker
    from bench.tracking.records import DATASET, KIND, WAY

    OmniglotVinyals().prepare(bench_data, raw=RAW)
    OmniglotLake().prepare(bench_data, raw=RAW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "short.yaml").write_text(SUITE)
    assert main(["run", "short.yaml", "--device", "cpu", "--no-progress"]) == 0
    assert "2 train jobs (2 trained now)" in capsys.readouterr().out
    records = [r for r in Tracker("sqlite:///mlflow.db", "omniglot-short", create=False).records()
               if r.tags[KIND] == "eval"]
    found = {(r.tags[DATASET], int(r.tags[WAY])): sum(r.per_episode) / len(r.per_episode) for r in records}
    assert found.keys() == FLOORS.keys()
    for where, floor in FLOORS.items():
        assert found[where] > floor, f"{where}: {found[where]:.3f} <= {floor}"
