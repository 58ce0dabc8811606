"""Sanity checks against gradient masking reach the report (issue 13, item 1).

Unit tests build tables by hand; the end-to-end test trains a throwaway baseline whose task
model quantises its input (zero gradients everywhere) beside a natural ProtoNet, evaluates
both under PGD and the gradient-free Square attack at one threat model in a real run, and
requires the report to flag the first and not the second, in every format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.registry import PATH_VARIABLE
from bench.report.model import ColumnRole
from bench.report.sanity import FLAG, sanity_flags
from tests.helpers import CLEAN
from tests.helpers import attack_table as table


def test_a_clean_record_set_raises_no_flag() -> None:
    data = table([("clean", "clean", {}, CLEAN), ("pgd0", "pgd", {"eps": 0.0}, CLEAN),
                  ("pgd4", "pgd", {"eps": 4 / 255, "steps": 10}, [0.5, 0.4, 0.5, 0.6]),
                  ("pgd8", "pgd", {"eps": 8 / 255, "steps": 10}, [0.2, 0.1, 0.3, 0.2]),
                  ("pgd8-20", "pgd", {"eps": 8 / 255, "steps": 20}, [0.1, 0.1, 0.2, 0.2]),
                  ("square8", "square", {"eps": 8 / 255}, [0.25, 0.2, 0.3, 0.2])])
    assert sanity_flags(data) == []
    assert [c.label for c in data.columns if c.role is ColumnRole.WORST_CASE] == ["worst L∞ 8/255"]


def test_each_violation_is_flagged_on_the_suspect_cell() -> None:
    data = table([("clean", "clean", {}, CLEAN), ("pgd0", "pgd", {"eps": 0.0}, [1.0, 0.9, 0.7, 1.0]),
                  ("pgd4", "pgd", {"eps": 4 / 255, "steps": 10}, [0.2, 0.3, 0.2, 0.3]),
                  ("pgd8", "pgd", {"eps": 8 / 255, "steps": 10}, [0.6, 0.7, 0.6, 0.7]),
                  ("pgd8-20", "pgd", {"eps": 8 / 255, "steps": 20}, [0.8, 0.9, 0.8, 0.9]),
                  ("square8", "square", {"eps": 8 / 255}, [0.0, 0.1, 0.0, 0.1])])
    found = {(f.check, f.column) for f in sanity_flags(data)}
    assert found == {("eps=0", "pgd0"), ("rises with eps", "pgd8"), ("rises with steps", "pgd8-20"),
                     ("gradient-free stronger", "pgd8")}


def test_noise_is_not_a_violation_and_radii_are_not_mixed() -> None:
    low, high = [0.2, 0.6, 0.2, 0.6], [0.6, 0.2, 0.6, 0.3]  # higher mean, interval spans 0
    data = table([("fgsm1", "fgsm", {"eps": 0.01}, low), ("fgsm2", "fgsm", {"eps": 0.02}, high),
                  ("square2", "square", {"eps": 0.01, "norm": "L2"}, [0.0] * 4)])
    assert sanity_flags(data) == []  # the L2 Square shares no threat model with the L-inf FGSM
    assert not [c for c in data.columns if c.role is ColumnRole.WORST_CASE]  # one attack per radius


QUANTISED = '''
"""Test double: ProtoNet whose task model rounds its input to 4 grey levels (zero gradients)."""
import torch
from torch import nn

from baselines.protonet import ProtoNet


class Rounding(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 3) / 3)


class Quantised(ProtoNet):
    name = "quantised"
    paper = "test double (gradient masking by input quantisation)"

    def adapt(self, support_x, support_y):
        return Rounding(super().adapt(support_x, support_y))
'''
SUITE = """
name: masking
datasets: [{name: glyphs, way: 5, shot: 1, query: 3}]
train: {steps: 20, meta_batch: 2}
eval: {episodes: 12}
baselines: [protonet, quantised]
threats:
  - clean
  - {name: pgd, params: {eps: 64/255, alpha: 16/255, steps: 10}}
  - {name: square, params: {eps: 64/255, n_queries: 300}}
"""


@pytest.mark.integration
def test_a_quantising_model_is_flagged_and_protonet_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          glyphs, capsys: pytest.CaptureFixture) -> None:
    from bench.cli import main
    from bench.registry import BASELINES

    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "quantised.py").write_text(QUANTISED)
    monkeypatch.setenv(PATH_VARIABLE, str(folder))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "masking.yaml").write_text(SUITE)
    with BASELINES.temporarily():  # finds quantised.py, forgets it afterwards
        assert main(["run", "masking.yaml", "--device", "cpu", "--no-progress"]) == 0
        assert main(["report", "masking.yaml"]) == 0
    capsys.readouterr()
    data = json.loads((tmp_path / "reports" / "masking" / "leaderboard.json").read_text())
    sanity = {(c["baseline"], c["column"]): c["sanity"] for c in data["cells"]}
    pgd = "pgd[alpha=16/255,eps=64/255,steps=10]"
    assert sanity[("quantised", pgd)] == "gradient-free stronger"
    assert not any(v for (row, _), v in sanity.items() if row == "protonet")
    markdown = (tmp_path / "reports" / "masking" / "leaderboard.md").read_text()
    assert "### Sanity" in markdown and f"{FLAG} quantised, seed 0, {pgd}: gradient-free stronger" in markdown
    flagged = [line for line in markdown.split("### Sanity")[1].split("###")[0].splitlines() if FLAG in line]
    assert not any("protonet, seed 0" in line for line in flagged)
    assert r"$^\ddagger$" in (tmp_path / "reports" / "masking" / "leaderboard.tex").read_text()
    assert "gradient-free stronger" in (tmp_path / "reports" / "masking" / "leaderboard.csv").read_text()
