"""Malformed suites, by class of input: each is refused before anything runs, with exit code 2,
a message naming the file, the key path and what is allowed, and never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.suite.load import load_suite
from tests.helpers import VALID_SUITE

VALID = VALID_SUITE


def sub(old: str, new: str) -> str:
    """VALID with one fragment replaced (the fragment must be there: a silent no-op tests nothing)."""
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def baseline(entry: str) -> str:
    return sub("[protonet]", f"[{entry}]")


def threat(entry: str) -> str:
    return sub("[clean]", f"[{entry}]")


def data(entry: str) -> str:
    return sub("{name: glyphs, way: 5, shot: 1, query: 5}", entry)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))

# (id, suite text, fragments the message must contain)
CASES = [
    # --- the file and its YAML --------------------------------------------------------------
    ("not yaml", "datasets: [unclosed", ["not valid YAML"]),
    ("empty", "", ["(top level)", "the suite is empty"]),
    ("a list at top level", "- protonet\n", ["the suite is a list"]),
    ("a scalar at top level", "just words\n", ["the suite is a str"]),
    ("two documents", VALID + "---\n" + VALID, ["not valid YAML", "single document"]),
    ("code tag", VALID + "x: !!python/object/apply:os.system [ls]\n", ["not valid YAML", "constructor"]),
    ("unhashable key", VALID + "? [a, b]\n: 1\n", ["not valid YAML", "unhashable"]),
    ("duplicate top-level key", VALID + "train: {steps: 5}\n", ["train", "duplicate key 'train'", "line 3"]),
    ("duplicate key in an entry", baseline("{name: protonet, params: {lr: 0.1, lr: 0.2}}"),
     ["baselines[0].params.lr", "duplicate key 'lr'"]),
    ("duplicate key in a data setting", data("{name: glyphs, way: 5, way: 10, shot: 1}"),
     ["datasets[0].way", "duplicate key"]),
    ("alias bomb", BOMB, ["alias bomb", "50000"]),
    ("recursive alias", VALID + "x: &x [*x]\n", ["x[0]", "contains it"]),
    ("deep sequence nesting", VALID + "x: " + "[" * 3000 + "]" * 3000 + "\n", ["nested deeper than 16", "x[0]"]),
    ("deep mapping nesting", VALID + "x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", ["nested deeper", "x.a.a"]),
    ("deep nesting through aliases", "a: &a [[[[[[[[1]]]]]]]]\nb: &b [[[[[[[[*a]]]]]]]]\n",
     ["b", "once aliases are expanded"]),
    # --- top level ------------------------------------------------------------------------
    ("unknown top-level key", VALID + "treats: [clean]\n", ["treats", "unknown key", "Did you mean 'threats'"]),
    ("missing section", "datasets: [{name: glyphs}]\nbaselines: [protonet]\n", ["threats: missing"]),
    ("bad suite name", sub("name: ok", "name: 'bad name!'"), ["name", "not a valid suite name"]),
    ("description not a string", VALID + "description: [a, b]\n", ["description", "expected a string"]),
    ("negative seed", VALID + "seeds: [-1]\n", ["seeds", "non-negative integer"]),
    ("boolean seed", VALID + "seeds: true\n", ["seeds", "non-negative integer"]),
    ("fractional seed", VALID + "seeds: [1.5]\n", ["seeds", "non-negative integer"]),
    ("duplicate seeds", VALID + "seeds: [1, 1]\n", ["seeds", "duplicate seeds"]),
    ("datasets not a list", data("").replace("datasets: []", "datasets: {name: glyphs}"),
     ["datasets", "expected a non-empty list"]),
    ("baselines a bare string", sub("[protonet]", "protonet"), ["baselines", "expected a non-empty list"]),
    # --- data settings --------------------------------------------------------------------
    ("unknown data set", data("{name: glyph}"), ["datasets[0].name", "unknown data set 'glyph'", "'glyphs'"]),
    ("misspelt data key", data("{name: glyphs, shots: 1}"), ["datasets[0].shots", "Did you mean 'shot'"]),
    ("negative shot", sub("shot: 1", "shot: -1"), ["datasets[0].shot", "out of range", ">= 1"]),
    ("zero shot", sub("shot: 1", "shot: 0"), ["datasets[0].shot", ">= 1"]),
    ("zero query", sub("query: 5", "query: 0"), ["datasets[0].query", ">= 1"]),
    ("one-way episodes", sub("way: 5", "way: 1"), ["datasets[0].way", ">= 2"]),
    ("boolean way", sub("way: 5", "way: true"), ["datasets[0].way", "expected an integer", "True"]),
    ("fractional shot", sub("shot: 1", "shot: 1.5"), ["datasets[0].shot", "expected an integer"]),
    ("way wider than the split", sub("way: 5", "way: 100000"), ["datasets[0].way", "split of glyphs has"]),
    ("shot + query over the images per class", sub("query: 5", "query: 20"),
     ["datasets[0].query", "shot + query <= 20"]),
    ("zero image size", data("{name: glyphs, image_size: 0}"), ["datasets[0].image_size", ">= 1"]),
    ("huge image size", data("{name: glyphs, image_size: 100000}"), ["datasets[0].image_size", "up to 256"]),
    ("image too small for the backbone", data("{name: glyphs, image_size: 8}"),
     ["datasets[0].image_size", "conv4", "larger images"]),
    ("image size of a fixed-size data set", data("{name: mnist, image_size: 32}"),
     ["datasets[0].image_size", "Allowed: 28"]),
    ("empty axis", sub("shot: 1", "shot: []"), ["datasets[0].shot", "empty list"]),
    ("text for a count", sub("shot: 1", "shot: five"), ["datasets[0].shot", "expected an integer", "'five'"]),
    ("data setting a list", data("[glyphs]"), ["datasets[0]", "expected a mapping"]),
    ("the same data setting twice", sub("shot: 1,", "shot: [1, 1],"), ["datasets[0]", "duplicate entry"]),
    ("data settings differing only in query", data("{name: glyphs, query: [4, 5]}"),
     ["datasets[0] (grid point 1 of 2) and datasets[0] (grid point 2 of 2)", "labelled 'glyphs 5-way 1-shot'"]),
    # --- train / eval ---------------------------------------------------------------------
    ("zero steps", sub("steps: 2", "steps: 0"), ["train.steps", ">= 1"]),
    ("zero meta batch", sub("meta_batch: 1", "meta_batch: 0"), ["train.meta_batch", ">= 1"]),
    ("boolean steps", sub("steps: 2", "steps: true"), ["train.steps", "expected an integer"]),
    ("fractional steps", sub("steps: 2", "steps: 2.5"), ["train.steps", "expected an integer"]),
    ("zero adversarial steps", sub("meta_batch: 1", "meta_batch: 1, adv_steps: 0"), ["train.adv_steps", ">= 1"]),
    ("adversarial radius above 1", sub("meta_batch: 1", "meta_batch: 1, adversarial: pgd, adv_eps: 2.0"),
     ["train.adv_eps", "[0, 1]"]),
    ("unknown training attack", sub("meta_batch: 1", "meta_batch: 1, adversarial: pgdd"),
     ["train.adversarial", "'pgdd' is not allowed", "Did you mean 'pgd'"]),
    ("one-way training", sub("meta_batch: 1", "meta_batch: 1, way: 1"), ["train.way", ">= 2"]),
    ("training way wider than the train split", sub("meta_batch: 1", "meta_batch: 1, way: 5000"),
     ["train.way", "train split of glyphs has 1380"]),
    ("misspelt train key", sub("steps: 2", "stepz: 2"), ["train.stepz", "Did you mean 'steps'"]),
    ("train as a list", sub("train: {steps: 2, meta_batch: 1}", "train: [2]"), ["train", "expected a mapping"]),
    ("zero episodes", sub("episodes: 3", "episodes: 0"), ["eval.episodes", ">= 1"]),
    ("eval settings as an axis", sub("episodes: 3", "episodes: [3, 4]"), ["eval.episodes", "not a grid axis"]),
    ("bad eval split", sub("episodes: 3", "episodes: 3, split: tst"),
     ["eval.split", "'tst' is not allowed", "Did you mean 'test'"]),
    ("misspelt eval key", sub("episodes: 3", "episode: 3"), ["eval.episode", "Did you mean 'episodes'"]),
    # --- baselines ------------------------------------------------------------------------
    ("unknown baseline", baseline("protonett"), ["baselines[0].name", "unknown baseline", "Did you mean 'protonet'"]),
    ("unknown param", baseline("{name: protonet, params: {lr_rate: 0.1}}"),
     ["baselines[0].params.lr_rate", "unknown parameter", "Did you mean 'lr'"]),
    ("misspelt params key", baseline("{name: protonet, parms: {}}"), ["baselines[0].parms", "Did you mean 'params'"]),
    ("misspelt train key in an entry", baseline("{name: protonet, trian: {steps: 3}}"),
     ["baselines[0].trian", "Did you mean 'train'"]),
    ("params not a mapping", baseline("{name: protonet, params: [1, 2]}"),
     ["baselines[0].params", "expected a mapping"]),
    ("wrong boolean", baseline("{name: maml, params: {first_order: maybe}}"),
     ["baselines[0].params.first_order", "expected true or false", "'maybe'"]),
    ("number for a boolean", baseline("{name: maml, params: {first_order: 1}}"),
     ["baselines[0].params.first_order", "expected true or false"]),
    ("nan learning rate", baseline("{name: maml, params: {inner_lr: .nan}}"),
     ["baselines[0].params.inner_lr", "finite number"]),
    ("infinite learning rate", baseline("{name: maml, params: {inner_lr: 1e999}}"),
     ["baselines[0].params.inner_lr", "finite number"]),
    ("zero inner steps", baseline("{name: maml, params: {inner_steps: 0}}"),
     ["baselines[0].params.inner_steps", ">= 1"]),
    ("zero lr schedule period", baseline("{name: protonet, params: {lr_halve_every: 0}}"),
     ["baselines[0].params.lr_halve_every", ">= 1"]),
    ("momentum above 1", baseline("{name: finetune, params: {momentum: 1.5}}"),
     ["baselines[0].params.momentum", "<= 1"]),
    ("attack radius of a baseline above 1", baseline("{name: adml, params: {attack_eps: 3}}"),
     ["baselines[0].params.attack_eps", "[0, 1]"]),
    ("label not a string", baseline("{name: protonet, label: 5}"), ["baselines[0].label", "non-empty string"]),
    ("duplicate baselines", baseline("protonet, protonet"), ["baselines[0] and baselines[1]", "duplicate entry"]),
    ("two entries with one label",
     baseline("{name: protonet, label: x}, maml, {name: maml, params: {first_order: true}, label: x}"),
     ["baselines[0] and baselines[2]", "labelled 'x'"]),
    ("a label equal to another's", baseline("{name: protonet, params: {lr: 0.01}, label: maml}, maml"),
     ["baselines[0] and baselines[1]", "labelled 'maml'"]),
    ("a label on a grid entry", baseline("{name: protonet, params: {lr: [0.1, 0.01]}, label: p}"),
     ["baselines[0] (grid point 1 of 2) and baselines[0] (grid point 2 of 2)", "labelled 'p'"]),
    ("training way differs from a fixed head", baseline("{name: maml, train: {way: 20}}"),
     ["baselines[0].train.way", "sizes its classifier head by the training way", "protonet"]),
    ("suite-wide training way and a fixed head", sub("meta_batch: 1", "meta_batch: 1, way: 10").replace(
        "[protonet]", "[maml]"), ["train.way", "maml sizes its classifier head"]),
    ("a 100,000-character suite name", sub("name: ok", "name: " + "a" * 100000),
     ["name", "100,000 characters long", "at most 100 characters"]),
    ("a case-only mistake in a choice", sub("meta_batch: 1", "meta_batch: 1, adversarial: PGD"),
     ["train.adversarial", "Did you mean 'pgd'"]),
    ("a case-only mistake in a threat name", threat("PGD"), ["threats[0].name", "Did you mean 'pgd'"]),
    ("a train query the data set cannot supply", sub("meta_batch: 1", "meta_batch: 1, shot: 5, query: 16"),
     ["train.query", "need 21 images per class", "train.shot + train.query <= 20"]),
    ("a baseline entry's datasets matching nothing", baseline("{name: protonet, datasets: 'glyphs 9-way *'}"),
     ["baselines[0].datasets", "matches no data setting"]),
    ("within a grouping the data set lacks", data("{name: glyphs, way: 5, shot: 1, query: 5, within: script}"),
     ["datasets[0].within", "no grouping 'script'"]),
    ("unknown backbone", baseline("{name: protonet, backbone: {name: resnet}}"),
     ["baselines[0].backbone.name", "unknown backbone", "Did you mean 'resnet12'"]),
    ("misspelt key inside backbone", baseline("{name: protonet, backbone: {name: conv4, parms: {}}}"),
     ["baselines[0].backbone.parms", "Did you mean 'params'"]),
    ("backbone params a list", baseline("{name: protonet, backbone: {params: [64]}}"),
     ["baselines[0].backbone.params", "expected a mapping"]),
    ("misspelt backbone param", baseline("{name: protonet, backbone: {params: {hiden: 32}}}"),
     ["baselines[0].backbone.params.hiden", "Did you mean 'hidden'"]),
    ("backbone a list", baseline("{name: protonet, backbone: [conv4]}"),
     ["baselines[0].backbone", "expected a mapping"]),
    ("resnet channels not positive", baseline("{name: protonet, backbone: {name: resnet12, params: {channels: [0]}}}"),
     ["baselines[0].backbone.params.channels[0]", ">= 1"]),
    ("zero conv4 filters", baseline("{name: protonet, backbone: {params: {hidden: 0}}}"),
     ["baselines[0].backbone.params.hidden", ">= 1"]),
    ("misspelt key in the suite-wide backbone", VALID + "backbone: {nme: conv4}\n",
     ["backbone.nme", "Did you mean 'name'"]),
    ("suite-wide backbone params a list", VALID + "backbone: {params: [1]}\n",
     ["backbone.params", "expected a mapping"]),
    ("baseline entry a number", baseline("5"), ["baselines[0]", "expected a mapping"]),
    ("baseline entry without a name", baseline("{params: {lr: 0.1}}"),
     ["baselines[0].name", "expected a baseline name"]),
    # --- threats --------------------------------------------------------------------------
    ("unknown threat", threat("pgdd"), ["threats[0].name", "unknown threat 'pgdd'", "'pgd'"]),
    ("text for a radius", threat("{name: pgd, params: {eps: eight}}"), ["threats[0].params.eps", "8/255"]),
    ("nan radius", threat("{name: pgd, params: {eps: .nan}}"), ["threats[0].params.eps", "finite number"]),
    ("nan radius as text", threat("{name: pgd, params: {eps: nan}}"), ["threats[0].params.eps", "finite number"]),
    ("infinite radius", threat("{name: fgsm, params: {eps: 1e999}}"), ["threats[0].params.eps", "finite number"]),
    ("radius above 1", threat("{name: fgsm, params: {eps: 2.0}}"), ["threats[0].params.eps", "[0, 1]"]),
    ("negative radius", threat("{name: fgsm, params: {eps: -0.1}}"), ["threats[0].params.eps", "out of range"]),
    ("step above 1", threat("{name: pgd, params: {alpha: 2}}"), ["threats[0].params.alpha", "[0, 1]"]),
    ("APGD L-inf radius above 1", threat("{name: apgd_ce, params: {eps: 2.0}}"),
     ["threats[0].params.eps", "while norm is Linf"]),
    ("severity out of range", threat("{name: gaussian_noise, params: {severity: 9}}"),
     ["threats[0].params.severity", "9 is not allowed", "Allowed: 1, 2, 3, 4, 5"]),
    ("fractional severity", threat("{name: gaussian_noise, params: {severity: 2.5}}"),
     ["threats[0].params.severity", "2.5 is not allowed", "1, 2, 3, 4, 5"]),
    ("boolean severity", threat("{name: gaussian_noise, params: {severity: true}}"),
     ["threats[0].params.severity", "True is not allowed"]),
    ("zero attack steps", threat("{name: pgd, params: {steps: 0}}"), ["threats[0].params.steps", ">= 1"]),
    ("zero queries", threat("{name: square, params: {n_queries: 0}}"), ["threats[0].params.n_queries", ">= 1"]),
    ("zero initial square", threat("{name: square, params: {p_init: 0}}"), ["threats[0].params.p_init", "> 0"]),
    ("noise fraction above 1", threat("{name: label_noise, params: {fraction: 1.5}}"),
     ["threats[0].params.fraction", "<= 1"]),
    ("number for a boolean flag", threat("{name: pgd, params: {random_start: 1}}"),
     ["threats[0].params.random_start", "expected true or false"]),
    ("norm in the wrong case", threat("{name: apgd_ce, params: {norm: linf}}"),
     ["threats[0].params.norm", "Did you mean 'Linf'"]),
    ("unknown shift target", threat("{name: domain_shift, params: {dataset: mnistt}}"),
     ["threats[0].params.dataset", "unknown data set 'mnistt'", "Did you mean 'mnist'"]),
    ("shift target too small", sub("way: 5", "way: 12").replace("[clean]", "[{name: domain_shift}]"),
     ["threats[0].params.dataset", "do not fit mnist's test split (10 classes"]),
    ("threat needing a wider way", sub("way: 5", "way: 2").replace("[clean]", "[apgd_dlr]"),
     ["threats[0].name", "apgd_dlr needs episodes of at least 3 classes"]),
    ("colour-only corruption on grey images", sub("[clean]", "[clean, {name: saturate, params: {severity: 3}}]"),
     ["threats[1].name", "saturate changes colour only"]),
    ("duplicate threats", threat("clean, clean"), ["threats[0] and threats[1]", "duplicate entry 'clean'"]),
    ("two threats with one label", threat("{name: fgsm, label: a}, {name: pgd, label: a}"),
     ["threats[0] and threats[1]", "labelled 'a'"]),
    ("misspelt threat param", threat("{name: pgd, params: {epss: 0.1}}"),
     ["threats[0].params.epss", "Did you mean 'eps'"]),
    ("misspelt threat entry key", threat("{name: pgd, parms: {}}"), ["threats[0].parms", "Did you mean 'params'"]),
    # --- published ------------------------------------------------------------------------
    ("published a list", VALID + "published: [1, 2]\n", ["published", "expected a mapping"]),
    ("published unknown baseline", VALID + "published: {protonett: {glyphs 5-way 1-shot: 49.4}}\n",
     ["published.protonett", "Did you mean 'protonet'"]),
    ("published unknown setting", VALID + "published: {protonet: {glyphs 5-way 5-shot: 49.4}}\n",
     ["published.protonet", "no such data setting", "glyphs 5-way 1-shot"]),
    ("published bad accuracy", VALID + "published: {protonet: {glyphs 5-way 1-shot: lots}}\n",
     ["published.protonet", "not a published accuracy"]),
    ("published entry a list", VALID + "published: {protonet: [49.4]}\n",
     ["published.protonet", "expected a mapping"]),
    ("published misspelt key", VALID + "published: {protonet: {glyphs 5-way 1-shot: {acuracy: 49.4}}}\n",
     ["published.protonet", "accuracy"]),
    # --- report ---------------------------------------------------------------------------
    ("report a list", VALID + "report: [protonet]\n", ["report", "expected a mapping"]),
    ("report unknown key", VALID + "report: {mce_refrence: protonet}\n",
     ["report.mce_refrence", "Did you mean 'mce_reference'"]),
    ("mce reference not a string", VALID + "report: {mce_reference: [protonet]}\n",
     ["report.mce_reference", "expected a string"]),
    ("mce reference unknown label", sub("[clean]", "[clean, gaussian_noise]") + "report: {mce_reference: protonett}\n",
     ["report.mce_reference", "no baseline labelled 'protonett'", "Did you mean 'protonet'"]),
    ("mce reference without corruptions", VALID + "report: {mce_reference: protonet}\n",
     ["report.mce_reference", "runs no corruption"]),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES) and len({c[1] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("text,fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_suite_is_refused_with_a_precise_message(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           text: str, fragments: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BenchError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(path) in err and fragments[0] in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # validation writes nothing


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + BOMB)
    start = time.perf_counter()
    with pytest.raises(BenchError, match="alias bomb"):
        load_suite(str(path))
    assert time.perf_counter() - start < 0.5


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "# " + "x" * (1 << 20) + "\n")
    with pytest.raises(BenchError, match="at most 1048576 bytes"):
        load_suite(str(path))


def test_bytes_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(VALID.encode() + b"description: \xff\xfe\n")
    with pytest.raises(BenchError, match="cannot read the suite"):
        load_suite(str(path))


@pytest.mark.parametrize("text", [BOMB, VALID + "x: " + "[" * 100000 + "]" * 100000 + "\n"], ids=["bomb", "deep"])
def test_the_cli_refuses_hostile_yaml_without_a_traceback(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    done = subprocess.run([sys.executable, "-m", "bench", "validate", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and str(path) in done.stderr


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("[protonet]", "[protonett]").replace("[clean]", "[pgdd]")
                  .replace("steps: 2", "steps: 0"))
    with pytest.raises(BenchError, match="3 problems"):
        load_suite(str(path))


def test_a_folder_given_as_the_suite_is_named_as_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path, VALID)
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a suite file" in err and "bad.yaml" in err and "does not exist" not in err
