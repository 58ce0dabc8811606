"""Train once, evaluate at every test setting (issue 24): training shape vs test settings,
per-entry data settings, episodes within one group of classes, and their bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.data.dataset import ImageDataset
from bench.data.episodes import fixed_episodes
from bench.errors import BenchError
from bench.plan.jobs import episode_seed, make_plan, setting_identity
from bench.plan.selection import Selection, select
from bench.suite.load import load_suite
from bench.suite.values import training_setting

SNELL = """
name: snell
seeds: [0]
datasets: [{name: glyphs, way: [5, 20], shot: [1, 5], query: 5}]
train: {steps: 2, meta_batch: 1, validate_every: 0}
eval: {episodes: 3}
baselines:
  - {name: protonet, train: {way: 30, query: 4}}
  - maml
threats: [clean, {name: fgsm, params: {eps: 1/255}}]
"""


def _suite(tmp_path: Path, text: str, name: str = "snell"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_suite(str(path))


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(BenchError) as caught:
        _suite(tmp_path, text)
    return str(caught.value)


def test_one_wide_model_serves_every_test_way(tmp_path: Path) -> None:
    """Snell et al. Table 1: one 30-way ProtoNet per shot, tested at 5-way and 20-way; MAML, whose
    head is sized by the way, trains once per test setting."""
    plan = make_plan(_suite(tmp_path, SNELL))
    protonet = [j for j in plan.train_jobs if j.variant.baseline.name == "protonet"]
    maml = [j for j in plan.train_jobs if j.variant.baseline.name == "maml"]
    assert [(j.data.way, j.data.shot, j.data.query) for j in protonet] == [(30, 1, 4), (30, 5, 4)]
    assert len(maml) == 4
    for job in protonet:
        tested = [(e.setting.way, e.setting.shot, e.threat.name) for e in plan.eval_jobs[job.key]]
        assert tested == [(5, job.data.shot, "clean"), (5, job.data.shot, "fgsm"),
                          (20, job.data.shot, "clean"), (20, job.data.shot, "fgsm")]
    assert len({e.key for e in plan.all_eval_jobs()}) == len(plan.all_eval_jobs()) == 6 * 2 + 4 * 2 - 4


def test_training_keys_ignore_test_settings_and_unset_equals_explicit(tmp_path: Path) -> None:
    narrow = make_plan(_suite(tmp_path, SNELL.replace("way: [5, 20]", "way: 5")))
    wide = make_plan(_suite(tmp_path, SNELL))
    assert {j.key for j in narrow.train_jobs if j.variant.baseline.name == "protonet"} == \
        {j.key for j in wide.train_jobs if j.variant.baseline.name == "protonet"}
    implicit = make_plan(_suite(tmp_path, SNELL.replace("- maml", "- {name: maml, train: {query: 5}}")))
    assert {j.key for j in implicit.train_jobs} == {j.key for j in wide.train_jobs}
    changed = make_plan(_suite(tmp_path, SNELL.replace("query: 4", "query: 3")))
    assert not {j.key for j in changed.train_jobs if j.variant.baseline.name == "protonet"} & \
        {j.key for j in wide.train_jobs}


def test_test_episodes_do_not_depend_on_the_training_shape(tmp_path: Path) -> None:
    """Evaluations of models trained on other shapes are other jobs, on the same episodes."""
    wide = make_plan(_suite(tmp_path, SNELL))
    other = make_plan(_suite(tmp_path, SNELL.replace("way: 30, query: 4", "way: 10")))

    def protonet_evals(plan):
        return {(e.setting, e.threat.label): e for e in plan.all_eval_jobs()
                if e.train.variant.baseline.name == "protonet"}

    first, second = protonet_evals(wide), protonet_evals(other)
    assert first.keys() == second.keys() and len(first) == 8
    for where, job in first.items():
        assert job.key != second[where].key
        assert episode_seed(wide.suite, job.setting, 0) == episode_seed(other.suite, second[where].setting, 0)
    training = training_setting(wide.suite.baselines[0], wide.suite.datasets[0])
    assert (training.way, training.query, training.within) == (30, 4, None)


def test_the_datasets_filter_selects_test_settings(tmp_path: Path) -> None:
    plan = select(make_plan(_suite(tmp_path, SNELL)), Selection.from_text(datasets="glyphs 20-way *"))
    assert {e.setting.way for e in plan.all_eval_jobs()} == {20}
    assert len([j for j in plan.train_jobs if j.variant.baseline.name == "protonet"]) == 2


PER_SETTING = SNELL.replace("  - maml\n", """\
  - {name: maml, label: maml, datasets: "glyphs 5-way *", params: {inner_lr: 0.4}}
  - {name: maml, label: maml, datasets: ["glyphs 20-way 1-shot", "glyphs 20-way 5-shot"], params: {inner_lr: 0.1}}
""")


def test_an_entry_runs_on_its_datasets_only_and_labels_may_repeat_on_disjoint_settings(tmp_path: Path) -> None:
    plan = make_plan(_suite(tmp_path, PER_SETTING))
    maml = {(j.data.way, j.variant.baseline.config.inner_lr) for j in plan.train_jobs
            if j.variant.baseline.name == "maml"}
    assert maml == {(5, 0.4), (20, 0.1)}


def test_bad_training_shapes_are_refused_with_the_numbers(tmp_path: Path) -> None:
    text = _problems(tmp_path, SNELL.replace("way: 30, query: 4", "way: 30, shot: 15, query: 10"))
    assert "baselines[0].train.query" in text and "need 25 images per class" in text and "20" in text
    text = _problems(tmp_path, SNELL.replace("way: 30, query: 4", "way: 2000"))
    assert "baselines[0].train.way" in text and "1380" in text
    text = _problems(tmp_path, SNELL.replace("- maml", "- {name: maml, train: {way: 20}}"))
    assert "baselines[1].train.way" in text and "head" in text
    text = _problems(tmp_path, SNELL.replace("validate_every: 0", "validate_every: 5").replace(
        "way: 30, query: 4", "way: 400"))
    assert "train.val_way" in text and "323" in text


def test_bad_dataset_patterns_and_clashing_labels_are_refused(tmp_path: Path) -> None:
    text = _problems(tmp_path, PER_SETTING.replace('"glyphs 5-way *"', '"glyphs 7-way *"'))
    assert "baselines[1].datasets" in text and "matches no data setting" in text
    text = _problems(tmp_path, PER_SETTING.replace('"glyphs 20-way 1-shot", ', '"glyphs 5-way 1-shot", '))
    assert "labelled 'maml'" in text


def grouped_dataset() -> ImageDataset:
    """12 classes of 3 images in 3 groups of sizes 5, 4 and 3, all in the test split."""
    labels = torch.arange(12).repeat_interleave(3)
    images = (labels * 20).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()
    groups = tuple("a" * (c < 5) or "b" * (c < 9) or "c" for c in range(12))
    return ImageDataset("grouped", images, labels, tuple(map(str, range(12))), {"test": torch.arange(12)},
                        "h", {"alphabet": groups})


def test_episodes_within_a_group_draw_every_class_from_one_group() -> None:
    dataset = grouped_dataset()
    episodes = fixed_episodes(dataset, "test", 3, 1, 1, 200, seed=7, within="alphabet")
    seen = set()
    for i in range(len(episodes)):
        classes = episodes[i].classes.tolist()
        groups = {dataset.groups["alphabet"][c] for c in classes}
        assert len(groups) == 1 and len(set(classes)) == 3
        seen |= groups
    assert seen == {"a", "b", "c"}
    across = fixed_episodes(dataset, "test", 3, 1, 1, 200, seed=7)
    assert across.hash != episodes.hash and "within" not in across.key
    mixed = [len({dataset.groups["alphabet"][c] for c in across[i].classes.tolist()}) for i in range(200)]
    assert max(mixed) > 1


def test_within_is_checked_against_the_data_sets_groupings(tmp_path: Path) -> None:
    text = _problems(tmp_path, SNELL.replace("query: 5}]", "query: 5, within: alphabet}]"))
    assert "datasets[0].within" in text and "glyphs has no grouping 'alphabet'" in text


RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


@pytest.mark.skipif(not (RAW / "images_evaluation").is_dir(), reason=f"the real Omniglot is not in {RAW}")
def test_a_within_group_too_small_for_the_way_names_the_smallest_groups(tmp_path: Path, bench_data: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    """omniglot-lake's smallest evaluation alphabet, Angelic, has 20 characters."""
    from bench.data.omniglot import OmniglotLake

    OmniglotLake().prepare(bench_data, raw=RAW)
    suite = (Path(__file__).parent.parent / "suites" / "omniglot-lake.yaml").read_text()
    path = tmp_path / "lake.yaml"
    path.write_text(suite.replace("way: 20", "way: 21"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "datasets[0].way" in err and "Angelic (20)" in err and "way <= 20" in err
    path.write_text(suite)
    assert main(["validate", str(path)]) == 0


@pytest.mark.skipif(not (RAW / "images_background").is_dir(), reason=f"the real Omniglot is not in {RAW}")
def test_training_episodes_within_a_group_are_checked_keyed_and_drawn_from_one_group(
        tmp_path: Path, bench_data: Path, capsys: pytest.CaptureFixture) -> None:
    """``train.within: alphabet`` on Lake's background alphabets: the smallest (two of 14
    characters) bound the training way; the key changes only when it is set."""
    from bench.data.omniglot import OmniglotLake
    from bench.run.training import Trainer

    OmniglotLake().prepare(bench_data, raw=RAW)
    suite = (Path(__file__).parent.parent / "suites" / "omniglot-lake.yaml").read_text()
    path = tmp_path / "lake.yaml"
    path.write_text(suite.replace("train: {steps: 5000, meta_batch: 1, way: 60,",
                                  "train: {steps: 5000, meta_batch: 1, way: 60, within: alphabet,"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "baselines[0].train.way" in err and "Blackfoot_(Canadian_Aboriginal_Syllabics) (14)" in err
    assert "Allowed: way <= 14" in err
    path.write_text(suite.replace("way: 60,", "way: 14, within: alphabet,"))
    within = make_plan(load_suite(str(path))).train_jobs[0]
    path.write_text(suite.replace("way: 60,", "way: 14,"))
    across = make_plan(load_suite(str(path))).train_jobs[0]
    assert within.key != across.key and within.data.within == "alphabet" and across.data.within is None
    source = OmniglotLake()
    dataset = source.with_groups(source.ensure(bench_data, 28))
    trainer = Trainer(None, within, dataset, None)  # type: ignore[arg-type]  # only its episode sampler
    for episode in trainer.sampler.sample(torch.Generator().manual_seed(0), 20):
        assert len({dataset.groups["alphabet"][int(c)] for c in episode.classes}) == 1


def test_references_are_parsed_checked_and_listed_under_their_setting(tmp_path: Path) -> None:
    """Lake et al.'s figures are paper-only rows of omniglot-lake's table (methods not run)."""
    import types

    from bench.report.text import REFERENCES_NOTE, reference_lines

    text = SNELL + """references:
  glyphs 20-way 1-shot:
    people: {accuracy: "95.5", source: "Lake et al. 2015 (4.5% error)"}
    deep convnet: "86.5"
"""
    suite = _suite(tmp_path, text)
    setting = next(d for d in suite.datasets if d.label == "glyphs 20-way 1-shot")
    table = types.SimpleNamespace(data=types.SimpleNamespace(setting=setting))
    report = types.SimpleNamespace(suite=suite)
    assert reference_lines(table, report) == [  # type: ignore[arg-type]
        f"{REFERENCES_NOTE} (clean accuracy, %): people 95.5 (Lake et al. 2015 (4.5% error)); deep convnet 86.5"]
    other = types.SimpleNamespace(data=types.SimpleNamespace(setting=suite.datasets[0]))
    assert reference_lines(other, report) == []  # type: ignore[arg-type]
    assert "references['glyphs 3-way 1-shot']: no such data setting" in _problems(
        tmp_path, text.replace("glyphs 20-way 1-shot:", "glyphs 3-way 1-shot:"))
    assert "is not a published accuracy" in _problems(tmp_path, text.replace('"86.5"', "lots"))


WIDE = """
name: wide
datasets: [{name: glyphs, way: [5, 3], shot: 1, query: 3}]
train: {steps: 3, meta_batch: 1, validate_every: 2, val_episodes: 2}
eval: {episodes: 4}
baselines: [{name: protonet, train: {way: 8, query: 2, val_way: 5}}, maml]
threats: [clean, {name: fgsm, params: {eps: 2/255}}]
"""


@pytest.mark.integration
def test_one_trained_model_is_evaluated_and_reported_at_every_test_way(tmp_path: Path, monkeypatch, glyphs,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """End to end: one 8-way ProtoNet train run, evaluated at 5-way and 3-way; the report has
    a ProtoNet row in both tables and the API restores it for either setting."""
    from bench.api import load_trained
    from bench.tracking import Tracker
    from bench.tracking.records import KIND, LABEL, TRAIN_KEY, WAY

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "wide.yaml").write_text(WIDE)
    assert main(["run", "wide.yaml", "--device", "cpu", "--no-progress", "--workers", "1"]) == 0
    assert "3 train jobs (3 trained now)" in capsys.readouterr().out
    tracker = Tracker("sqlite:///mlflow.db", "wide", create=False)
    proto = [j for j in make_plan(load_suite("wide.yaml")).train_jobs if j.variant.baseline.name == "protonet"]
    assert len(proto) == 1 and proto[0].data.way == 8 and proto[0].key in tracker.finished()
    evals = [r for r in tracker.records() if r.tags[KIND] == "eval" and r.tags[TRAIN_KEY] == proto[0].key]
    assert sorted(r.tags[WAY] for r in evals) == ["3", "3", "5", "5"] and {r.tags[LABEL] for r in evals} == {"protonet"}
    # validated at 5-way (train.val_way) in a model built for 5 classes: an 8-way one scored 0.0
    curve = tracker.history(tracker.finished()[proto[0].key], "val_accuracy_pct")
    assert [step for step, _ in curve] == [2, 3] and min(value for _, value in curve) > 0
    assert all(len(r.per_episode) == 4 for r in evals)
    assert main(["report", "wide.yaml", "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "wide" / "leaderboard.md").read_text()
    assert text.count("| ProtoNet ") >= 2 and "3-way 1-shot" in text and "5-way 1-shot" in text
    model = load_trained("wide.yaml", "protonet", setting="glyphs 3-way 1-shot")
    assert model.job.key == proto[0].key and model.setting.way == 3
    assert len(model.test_episodes(2)[0].support_y.unique()) == 3


def test_a_within_setting_has_its_own_title_and_file_names() -> None:
    from bench.report.text import slug, title
    from bench.suite.values import DataSetting

    across, within = DataSetting("omniglot-lake", 28, 20, 1, 1), DataSetting("omniglot-lake", 28, 20, 1, 1, "alphabet")
    assert title(within) == "omniglot-lake, 20-way 1-shot within alphabet" and title(across).endswith("1-shot")
    assert slug(across) == "omniglot-lake-20w1s-28px-q1" and slug(within) == slug(across) + "-within-alphabet"


def test_a_non_native_image_size_is_named_in_the_label_and_not_hashed_twice(tmp_path):
    """Two sizes of one setting are two rows (the label names a size that is not the data
    set's own), and the native size keeps the label and the key it always had."""
    suite = _suite(tmp_path, "name: sizes\nseeds: [0]\ndatasets: [{name: glyphs, image_size: [28, 32], way: 5, "
                   "shot: 1}]\nbaselines: [protonet]\nthreats: [clean]\n", name="sizes")
    labels = [d.label for d in suite.datasets]
    assert labels == ["glyphs 5-way 1-shot", "glyphs 32px 5-way 1-shot"]
    assert "native_size" not in setting_identity(suite.datasets[0])
