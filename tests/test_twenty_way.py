"""Every baseline learns at 20-way (issue 14): each one, trained briefly on 20-way 1-shot
glyphs episodes through `bench run`, reaches at least 3x chance (15%) on validation episodes.

Slow (a few minutes per baseline on a 2-core CPU): ``python -m pytest -m slow tests/test_twenty_way.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.registry import BASELINES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # 14 baselines trained in turn
WAY, CHANCE = 20, 1 / 20

SUITE = """
name: twenty
datasets: [{{name: glyphs, way: {way}, shot: 1, query: 2}}]
train: {{steps: {steps}, meta_batch: 1}}
eval: {{episodes: 30, split: val}}
baselines: [{baselines}]
threats: [clean]
"""


def test_every_baseline_reaches_three_times_chance_at_twenty_way(tmp_path: Path, glyphs,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.tracking import Tracker
    from bench.tracking.records import LABEL

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    names = [*BASELINES.names(), "{name: maml, params: {first_order: true}}"]
    (tmp_path / "twenty.yaml").write_text(SUITE.format(way=WAY, steps=300, baselines=", ".join(names)))
    assert main(["run", "twenty.yaml", "--device", "cpu", "--no-progress"]) == 0
    accuracy = {r.tags[LABEL]: r.metrics["accuracy"] for r in Tracker("sqlite:///mlflow.db", "twenty").records()}
    assert len(accuracy) == len(names)
    low = {label: round(100 * a, 1) for label, a in accuracy.items() if a < 3 * CHANCE}
    assert not low, f"below 3x chance ({300 * CHANCE:.0f}%) at {WAY}-way: {low}; all: {accuracy}"
