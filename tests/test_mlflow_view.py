"""What a user sees in MLflow: real run durations and metric times, results on the train run
(so the runs table shows accuracy without expanding nested runs), percent metrics, pixel params
as n/255 text and the suite's description on the experiment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bench.cli import main
from bench.tracking.records import KIND, TAG, THREAT

pytestmark = pytest.mark.integration

SUITE = """
name: view
description: ProtoNet under FGSM, for the MLflow view test.
datasets: [{name: glyphs, way: 5, shot: 1, query: 4}]
train: {steps: 30, meta_batch: 2}
eval: {episodes: 4}
baselines: [protonet]
threats: [clean, {name: fgsm, params: {eps: 8/255}}]
"""


def test_runs_carry_real_times_and_readable_results(tmp_path: Path, glyphs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "view.yaml").write_text(SUITE)
    before = int(time.time() * 1000)
    assert main(["run", "view.yaml", "--device", "cpu", "--no-progress"]) == 0
    after = int(time.time() * 1000)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("view")
    assert experiment.tags["mlflow.note.content"] == "ProtoNet under FGSM, for the MLflow view test."
    runs = client.search_runs([experiment.experiment_id])
    train = next(r for r in runs if r.data.tags[TAG + KIND] == "train")
    evals = [r for r in runs if r.data.tags[TAG + KIND] == "eval"]
    for run in runs:  # the job's own span, not the milliseconds of writing the record
        assert before <= run.info.start_time < run.info.end_time <= after
    seconds = float(train.data.metrics["device_seconds"])
    assert (train.info.end_time - train.info.start_time) / 1000 >= seconds
    history = client.get_metric_history(train.info.run_id, "loss")
    assert len(history) == 30 and all(m.timestamp >= before for m in history)  # not 1970
    assert {"accuracy_pct/Clean", "accuracy_pct/FGSM eps 8/255"} <= set(train.data.metrics)
    fgsm = next(r for r in evals if r.data.tags[TAG + THREAT] == "fgsm")
    assert fgsm.data.metrics["accuracy_pct"] == pytest.approx(100 * fgsm.data.metrics["accuracy"])
    assert train.data.metrics["accuracy_pct/FGSM eps 8/255"] == pytest.approx(fgsm.data.metrics["accuracy_pct"])
    assert fgsm.data.params["text.threat.config.eps"] == "8/255"
    assert float(fgsm.data.params["threat.config.eps"]) == pytest.approx(8 / 255)


def test_the_printed_mlflow_link_opens_a_runs_table_with_accuracy_columns(
        tmp_path: Path, glyphs, mlflow_server: str, capsys: pytest.CaptureFixture) -> None:
    """In a real browser against a real `mlflow server`: the link `bench run` prints opens the
    runs table with each train run's accuracy in its own column, nothing expanded or picked."""
    import re

    from tests.helpers import chromium

    (tmp_path / "view.yaml").write_text(SUITE)
    assert main(["run", str(tmp_path / "view.yaml"), "--device", "cpu", "--no-progress",
                 "--tracking-uri", mlflow_server]) == 0
    url = re.search(r"MLflow runs table with the accuracy columns: (\S+)", capsys.readouterr().out).group(1)
    assert url.startswith(mlflow_server + "/#/experiments/") and "viewStateShareKey=" in url
    train = next(r for r in MlflowClient(tracking_uri=mlflow_server).search_runs(
        [MlflowClient(tracking_uri=mlflow_server).get_experiment_by_name("view").experiment_id])
        if r.data.tags[TAG + KIND] == "train")
    done = chromium(tmp_path, "--window-size=1600,1000", "--virtual-time-budget=30000", "--dump-dom", url)
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style).*?</\1>", "", done.stdout, flags=re.S)).split())
    assert "accuracy_pct/Clean" in text and "accuracy_pct/FGSM eps 8/255" in text, text[:2000]
    clean = train.data.metrics["accuracy_pct/Clean"]
    assert f"{clean:g}" in text  # the value itself, in the train run's row
    assert train.data.tags["mlflow.runName"] in text
