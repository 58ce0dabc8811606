"""Evaluating models trained elsewhere (issue 26): `bench eval-model`, `bench.api.benchmark`,
pretrained backbones from weights files, the identity of user code and weights, bad input."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from bench.api import benchmark, load_checkpoint, load_trained
from bench.cli import main
from bench.errors import BenchError
from bench.plan import fingerprint
from bench.tracking import Tracker
from bench.tracking.records import LABEL, THREAT_LABEL

SUITE = """\
name: outside
description: outside models beside a trained ProtoNet
seeds: [0]
datasets:
  - {name: glyphs, image_size: 28, way: 5, shot: 1, query: 5}
train: {steps: 15, meta_batch: 1}
eval: {episodes: 8}
baselines:
  - name: protonet
    backbone: {name: conv4, params: {hidden: 16}}
threats:
  - clean
  - name: pgd
    params: {eps: 8/255, alpha: 2/255, steps: 2}
  - name: gaussian_noise
    params: {severity: 3}
"""

MODELS = """\
from torch import nn

from bench.backbones import Conv4, Conv4Config


def conv4():
    return Conv4(Conv4Config(hidden=16), 1, 28)


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("needs a GPU")


class Images(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(nn.init.ones_(nn.Parameter(__import__('torch').empty(1))))

    def forward(self, x):
        return x[:, 0] * self.scale


class Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.conv(x).detach().flatten(1)


def number():
    return 3


class BatchStatistics(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.norm = nn.BatchNorm2d(4, track_running_stats=False)

    def forward(self, x):
        return self.norm(self.conv(x)).flatten(1)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, glyphs: object) -> Path:
    """A researcher's folder: a suite, a models module, a store with ProtoNet trained (once)."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "suites").mkdir()
    (folder / "suites" / "outside.yaml").write_text(SUITE)
    (folder / "models_here.py").write_text(MODELS)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert main(["run", "outside", "--workers", "1", "--no-progress"]) == 0
    return folder


@pytest.fixture
def project(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained folder to work in (its artifacts stay in the original's mlruns/)."""
    folder = tmp_path / "project"
    shutil.copytree(trained, folder)
    monkeypatch.chdir(folder)
    monkeypatch.delitem(sys.modules, "models_here", raising=False)  # imported from another copy
    fingerprint.clear_cache()
    return folder


def per_episode(label: str) -> dict[str, list[float]]:
    records = Tracker(None, "outside", create=False).records()
    return {r.tags[THREAT_LABEL]: r.per_episode for r in records if r.tags.get(LABEL) == label}


def export_backbone(path: Path) -> Path:
    trained = load_trained("outside", "protonet")
    torch.save(trained.baseline.backbone.state_dict(), path)
    return path


def test_outside_model_equals_the_trained_baseline_on_every_threat(project: Path) -> None:
    weights = export_backbone(project / "protonet-backbone.pt")
    assert main(["eval-model", "outside", "--model", "models_here:conv4", "--weights", str(weights),
                 "--label", "exported", "--head", "prototype", "--workers", "1", "--no-progress"]) == 0
    benchmark("models_here:conv4", "outside", label="via-api", weights=str(weights), workers=1)  # head auto
    reference = per_episode("protonet")
    assert len(reference) == 3
    assert per_episode("exported") == reference
    assert per_episode("via-api") == reference


def test_pretrained_backbone_as_a_suite_entry_and_report_rows(project: Path) -> None:
    export_backbone(project / "w.pt")
    suite = project / "suites" / "outside.yaml"
    suite.write_text(SUITE.replace("threats:", textwrap.dedent("""\
          - name: pretrained
            label: frozen-linear
            params: {head: linear}
            backbone: {name: conv4, params: {hidden: 16}, weights: w.pt}
        threats:""")))
    assert main(["run", "outside", "--workers", "1", "--no-progress"]) == 0
    assert len(per_episode("frozen-linear")) == 3
    assert main(["eval-model", "outside", "--model", "models_here:conv4", "--weights", "w.pt", "--label", "mine",
                 "--workers", "1", "--no-progress"]) == 0
    assert main(["report", "outside", "--format", "md"]) == 0
    text = (project / "reports" / "outside" / "leaderboard.md").read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert {"ProtoNet", "frozen-linear", "mine"} <= set(rows)
    assert "added with `bench eval-model`" in text and "not trained (weights as given)" in text


def test_changed_weights_or_model_code_make_runs_stale(project: Path, capsys: pytest.CaptureFixture) -> None:
    weights = export_backbone(project / "w.pt")
    args = ["eval-model", "outside", "--model", "models_here:conv4", "--weights", "w.pt", "--label", "mine"]
    assert main([*args, "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    assert "stale" not in capsys.readouterr().out
    state = torch.load(weights)
    state["blocks.0.0.bias"] += 1.0
    torch.save(state, weights)
    assert main([*args, "--dry-run"]) == 0
    assert re.search(r"stale: code changed since it ran \(file \S*/w\.pt\)", capsys.readouterr().out)
    models = project / "models_here.py"
    models.write_text(models.read_text() + "\nCHANGED = True\n")
    assert main([*args, "--dry-run"]) == 0
    assert re.search(r"\(file \S*/w\.pt, models_here\.py\)", capsys.readouterr().out)


BAD = [
    (["--model", "absent_module:make"], "cannot import 'absent_module'"),
    (["--model", "models_here:nothing"], "has no attribute 'nothing'"),
    (["--model", "models_here:Boom"], "raised RuntimeError: needs a GPU"),
    (["--model", "models_here:number"], "returned a int, not a torch.nn.Module"),
    (["--model", "models_here:Images"], "an embedding must return features (N, D)"),
    (["--model", "models_here:Detached"], "not differentiable in its input images, so pgd"),
    (["--model", "models_here:conv4", "--weights", "absent.pt"], "absent.pt does not exist"),
    (["--model", "models_here:conv4", "--weights", "not-a-state.pt"], "not a state dict of tensors"),
    (["--model", "models_here:conv4", "--weights", "other.pt"], "does not fit the backbone"),
    (["--model", "models_here:conv4", "--label", "protonet"], "is the label of one of the suite's baselines"),
    (["--model", "not a reference"], "is not a code reference"),
    (["--model", "models_here:BatchStatistics"], "Declare it: --transductive"),
]


@pytest.mark.parametrize(("flags", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_models_are_refused_before_anything_is_recorded(project: Path, capsys: pytest.CaptureFixture,
                                                            flags: list[str], message: str) -> None:
    torch.save([1, 2], project / "not-a-state.pt")
    torch.save({"weight": torch.zeros(2)}, project / "other.pt")
    before = len(Tracker(None, "outside", create=False).runs())
    args = ["eval-model", "outside", *flags] + ([] if "--label" in flags else ["--label", "bad"])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    tracker = Tracker(None, "outside", create=False)
    assert len(tracker.runs()) == before and not tracker.additions()


def test_gradient_free_threats_run_when_asked(project: Path) -> None:
    assert main(["eval-model", "outside", "--model", "models_here:Detached", "--label", "nograd",
                 "--skip-gradient-threats", "--workers", "1", "--no-progress"]) == 0
    assert set(per_episode("nograd")) == {"clean", "gaussian_noise[severity=3]"}


def test_benchmark_refuses_what_workers_cannot_rebuild(project: Path) -> None:
    class Local(torch.nn.Module):
        pass

    with pytest.raises(BenchError, match="top level of an importable module"):
        benchmark(Local, "outside", label="local")
    with pytest.raises(BenchError, match="not a built Linear"):
        benchmark(torch.nn.Linear(1, 1), "outside", label="built")


def test_the_documented_example_runs(tmp_path: Path, glyphs: object) -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL)
               if "benchmark(" in c]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "accuracies" in done.stdout


def _same_state(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_export_and_import_round_trip_bit_for_bit(project: Path, capsys: pytest.CaptureFixture) -> None:
    out = project / "exported" / "protonet.pt"
    assert main(["export", "outside", "protonet", "--out", str(out)]) == 0
    content = torch.load(out, weights_only=True)
    assert set(content["metrics"]) == set(per_episode("protonet")) and content["fingerprint"]
    assert content["entry"]["name"] == "protonet" and content["training_setting"]["way"] == 5
    restored, trained = load_checkpoint(str(out)), load_trained("outside", "protonet")
    assert restored.job.key == trained.job.key
    assert _same_state(restored.baseline.state_dict(), trained.baseline.state_dict())
    episode = trained.test_episodes(1)[0]
    assert torch.equal(restored.classify(episode.support_x, episode.support_y, episode.query_x),
                       trained.classify(episode.support_x, episode.support_y, episode.query_x))
    # the exported file is a weights file for `bench eval-model` too
    assert main(["eval-model", "outside", "--model", "models_here:conv4", "--weights", str(out), "--label",
                 "from-export", "--head", "prototype", "--workers", "1", "--no-progress"]) == 0
    assert per_episode("from-export") == per_episode("protonet")
    torch.save({"blocks.0.0.weight": torch.zeros(1)}, project / "plain.pt")
    with pytest.raises(BenchError, match="not a `bench export` checkpoint"):
        load_checkpoint(str(project / "plain.pt"))
    assert main(["export", "outside", "nobody", "--out", str(project / "x.pt")]) == 2
    assert "no train job for baseline 'nobody'" in capsys.readouterr().err and not (project / "x.pt").exists()


def test_declared_transductive_models_run_and_suite_entries_are_checked_before_a_run(
        project: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval-model", "outside", "--model", "models_here:BatchStatistics", "--transductive", "--label",
                 "batchwise", "--workers", "1", "--no-progress"]) == 0
    assert len(per_episode("batchwise")) == 3
    suite = project / "suites" / "outside.yaml"
    suite.write_text(SUITE.replace("threats:", textwrap.dedent("""\
          - name: pretrained
            label: broken
            backbone: {name: module, params: {factory: "models_here:Images"}}
        threats:""")))
    before = len(Tracker(None, "outside", create=False).runs())
    assert main(["run", "outside", "--workers", "1", "--no-progress"]) == 2
    assert "an embedding must return features (N, D)" in capsys.readouterr().err
    assert len(Tracker(None, "outside", create=False).runs()) == before


def test_another_checkout_does_not_load_its_baselines_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.project import reset_project, set_project
    from bench.registry import BASELINES, BASELINES_DIR

    clone = tmp_path / "clone"
    shutil.copytree(BASELINES_DIR, clone / "baselines", ignore=shutil.ignore_patterns("__pycache__"))
    (clone / "bench").mkdir()
    shutil.copy(BASELINES_DIR.parent / "bench" / "baseline.py", clone / "bench" / "baseline.py")
    (clone / "suites").mkdir()
    (clone / "baselines" / "mine.py").write_text((BASELINES_DIR / "protonet.py").read_text().replace(
        'name = "protonet"', 'name = "mine"'))
    monkeypatch.chdir(clone)
    try:
        set_project(None)
        with BASELINES.temporarily(), pytest.warns(UserWarning, match="another checkout of fewshot-bench"):
            assert "adml" in BASELINES.names() and not BASELINES.broken
            assert BASELINES.get("adml").__module__ == "baselines.adml"
            assert BASELINES.get("mine").__module__.endswith(".mine")  # the checkout's own new file
    finally:
        reset_project()
