"""`benchmarks/step_time.py`: measured meta-update times and the suite-header block they make."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.plan.jobs import make_plan
from bench.suite.load import load_suite
from benchmarks.step_time import BEGIN, END, block, distinct_jobs, measure, stand_in, write_block

SUITE = """# a suite
#
name: timed
seeds: [0, 1]
datasets: [{name: omniglot, way: 5, shot: 1, query: 2}]
train: {steps: 40, meta_batch: 1}
baselines:
  - {name: protonet, train: {way: 20}}
  - {name: maml, train: {patience: 3}}
backbone: {name: conv4, params: {hidden: 8}}
threats: [clean]
"""


def test_every_variant_is_timed_once_on_stand_in_pixels_of_the_data_sets_shape() -> None:
    jobs = distinct_jobs("omniglot")  # the reference suite: no Omniglot download needed
    # ProtoNet: one 60-way model per shot serves both test ways; MAML: one per test setting
    assert len(jobs) == len({(j.variant.baseline.label, j.data) for j in jobs}) == 6
    images = stand_in(jobs[0]).images
    assert images.shape[1:] == (1, 28, 28) and images.dtype == torch.uint8


def test_the_block_replaces_itself_and_leaves_the_suite_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "timed.yaml"
    path.write_text(SUITE)
    before = [job.key for job in make_plan(load_suite(str(path))).train_jobs]
    rows = [measure(job, torch.device("cpu"), steps=1, warmup=0) for job in distinct_jobs(str(path))]
    assert all(row.seconds > 0 for row in rows)
    lines = block(str(path), rows, torch.device("cpu"), 1)
    assert "trained 20-way" in lines[3] and "x 40 = " in lines[3]
    assert "per 10,000 (stops early on validation; cap 40)" in lines[4]
    assert "(2 seed(s))" in lines[5]
    write_block(path, lines)
    write_block(path, lines)
    text = path.read_text()
    assert text.count(BEGIN) == text.count(END) == 1 and text.startswith("# a suite\n#\n" + BEGIN)
    assert [job.key for job in make_plan(load_suite(str(path))).train_jobs] == before
