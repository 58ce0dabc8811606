"""On a CUDA device: a tiny suite runs with two workers sharing the GPU, and the same suite run
twice gives identical per-episode accuracies (`python -m benchmarks.device_check` runs these)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.cli import main
from tests.processes import suite_in_workdir

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TINY = """
name: tiny-gpu
datasets: [{name: glyphs, way: 5, shot: 1, query: 4}]
train: {steps: 5, meta_batch: 2}
eval: {episodes: 8}
baselines: [protonet, maml]
threats: [clean, {name: pgd, params: {steps: 5}}, {name: gaussian_noise, params: {severity: 3}}]
"""


def _per_episode(uri: str) -> dict[tuple[str, str], list[float]]:
    from bench.tracking import Tracker
    from bench.tracking.records import LABEL, THREAT_LABEL

    return {(r.tags[LABEL], r.tags[THREAT_LABEL]): r.per_episode
            for r in Tracker(uri, "tiny-gpu", create=False).records()}


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyphs) -> Path:
    return suite_in_workdir(tmp_path, monkeypatch, "tiny-gpu.yaml", TINY)


def test_two_workers_share_the_gpu_and_two_runs_are_identical(suite: Path, tmp_path: Path) -> None:
    uris = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b")]
    for uri, workers in zip(uris, (2, 1), strict=True):
        assert main(["run", str(suite), "--device", "cuda", "--workers", str(workers), "--jobs-per-gpu", "2",
                     "--tracking-uri", uri, "--no-progress"]) == 0
    first, second = (_per_episode(uri) for uri in uris)
    assert len(first) == 2 * 3 and first == second  # results do not depend on --workers
