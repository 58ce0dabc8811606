"""The Python API's documented example runs as written (docs/python-api.md), and its errors are
clear: an untrained label, a way the baseline cannot take, `bench eval` before training."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
pytestmark = pytest.mark.integration


def test_the_documented_example_runs(tmp_path: Path, glyphs) -> None:
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)[0]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "predictions" in done.stdout and "PGD-10 at 8/255" in done.stdout


def _suite(folder: Path, monkeypatch: pytest.MonkeyPatch, baselines: str) -> None:
    """``t.yaml`` in ``folder``, the working directory, with a store of its own (./mlflow.db)."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (folder / "t.yaml").write_text("name: t\ndatasets: [{name: glyphs, way: 5, shot: 1, query: 2}]\n"
                                   "train: {steps: 2, meta_batch: 1}\neval: {episodes: 2}\n"
                                   f"baselines: [{baselines}]\nthreats: [clean]\n")


def test_an_untrained_label_and_bench_eval_before_training_are_clear_errors(tmp_path: Path, glyphs,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture) -> None:
    from bench.api import load_trained

    _suite(tmp_path, monkeypatch, "protonet, maml")
    with pytest.raises(BenchError, match="no finished train run"):
        load_trained("t.yaml", "protonet")
    with pytest.raises(BenchError, match="no train job for baseline 'protonett'"):
        load_trained("t.yaml", "protonett")
    assert main(["eval", "t.yaml", "--threat", "pgd", "--device", "cpu", "--no-progress"]) == 2
    assert "evaluates finished checkpoints only" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()  # nothing written


def test_bench_eval_records_new_threats_without_training(tmp_path: Path, glyphs, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    import torch

    from bench.api import load_trained
    from bench.tracking import Tracker
    from bench.tracking.records import THREAT_LABEL

    _suite(tmp_path, monkeypatch, "maml")
    assert main(["run", "t.yaml", "--device", "cpu", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", "t.yaml", "--threat", "{name: fgsm, params: {eps: 4/255}}", "--device", "cpu",
                 "--no-progress"]) == 0
    assert "0 trained now" in capsys.readouterr().out
    records = Tracker("sqlite:///mlflow.db", "t", create=False).records()
    assert sorted(r.tags[THREAT_LABEL] for r in records) == ["clean", "fgsm[eps=4/255]"]  # one new evaluation
    assert main(["eval", "t.yaml", "--threat", "clean", "--device", "cpu", "--no-progress"]) == 0
    assert "is (or overlaps) a threat of the suite" in capsys.readouterr().out  # stored once, as the suite's
    assert main(["report", "t.yaml", "--format", "md"]) == 0  # `bench eval` threats are columns of the report
    text = capsys.readouterr().out
    assert "FGSM, ε = 4/255" in text.splitlines()[[i for i, line in enumerate(text.splitlines())
                                                    if line.startswith("| baseline")][0]]
    assert "columns added with `bench eval`: fgsm[eps=4/255]" in text and "were ignored" not in text
    model = load_trained("t.yaml", "maml")
    with pytest.raises(BenchError, match="5-way head"):
        model.adapt(torch.rand(8, 1, 28, 28), torch.arange(8))


def test_support_outliers_on_user_episodes_uses_their_own_outliers_or_warns(
        tmp_path: Path, glyphs, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    import warnings

    from bench.api import load_trained

    _suite(tmp_path, monkeypatch, "protonet")
    assert main(["run", "t.yaml", "--device", "cpu", "--no-progress"]) == 0
    model = load_trained("t.yaml", "protonet")
    episodes = model.test_episodes(2)
    entry = {"name": "support_outliers", "params": {"fraction": 1.0}}
    with pytest.warns(UserWarning, match="scrambled"):
        assert len(model.evaluate(entry, episodes)) == 2
    own = [dataclasses.replace(e, outliers=episodes[1 - i].support_x) for i, e in enumerate(episodes)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(model.evaluate(entry, own)) == 2


def test_an_any_way_baseline_predicts_only_the_classes_of_a_narrower_support_set(
        tmp_path: Path, glyphs, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.api import load_trained
    from bench.registry import BASELINES

    any_way = [name for name in BASELINES.names() if BASELINES.get(name).any_way]
    assert "protonet" in any_way
    _suite(tmp_path, monkeypatch, ", ".join(any_way))
    assert main(["run", "t.yaml", "--device", "cpu", "--no-progress"]) == 0
    for name in any_way:
        model = load_trained("t.yaml", name)
        e = model.test_episodes(1)[0]
        two = e.support_y < 2
        predicted = model.classify(e.support_x[two], e.support_y[two], e.query_x)
        assert set(predicted.tolist()) <= {0, 1}, name
        assert model.baseline.n_way == 5  # the trained baseline itself is left as it was
