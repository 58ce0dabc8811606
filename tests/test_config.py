"""Suite validation: every shipped suite is valid; malformed suites get a precise error, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_suite, shipped_suites
from bench.errors import BenchError
from bench.params import parse_number

VALID = """
name: ok
datasets: [{name: glyphs, way: 5, shot: 1, query: 5}]
train: {steps: 2, meta_batch: 1}
eval: {episodes: 3}
baselines: [protonet]
threats: [clean]
"""

# (what is wrong, suite text, fragments the error must contain)
MALFORMED = [
    ("not yaml", "datasets: [unclosed", ["not valid YAML"]),
    ("empty", "", ["the suite is empty"]),
    ("a list at top level", "- protonet\n", ["the suite is a list"]),
    ("unknown top-level key", VALID + "treats: [clean]\n", ["treats", "unknown key", "Did you mean 'threats'"]),
    ("unknown baseline", VALID.replace("[protonet]", "[protonett]"),
     ["baselines[0].name", "unknown baseline 'protonett'", "Allowed:", "Did you mean 'protonet'"]),
    ("unknown threat", VALID.replace("[clean]", "[pgdd]"), ["threats[0].name", "unknown threat 'pgdd'", "'pgd'"]),
    ("unknown data set", VALID.replace("name: glyphs", "name: glyph"),
     ["datasets[0].name", "unknown data set 'glyph'", "Did you mean 'glyphs'"]),
    ("unknown param", VALID.replace("[protonet]", "[{name: protonet, params: {lr_rate: 0.1}}]"),
     ["baselines[0].params.lr_rate", "unknown parameter", "Did you mean 'lr'"]),
    ("wrong type", VALID.replace("[protonet]", "[{name: maml, params: {first_order: maybe}}]"),
     ["baselines[0].params.first_order", "expected true or false", "'maybe'"]),
    ("wrong number", VALID.replace("[clean]", "[{name: pgd, params: {eps: eight}}]"),
     ["threats[0].params.eps", "expected a number", "8/255"]),
    ("negative shots", VALID.replace("shot: 1", "shot: -1"), ["datasets[0].shot", "negative"]),
    ("way larger than the classes of a split", VALID.replace("way: 5", "way: 100000"),
     ["way", "100000-way episodes need 2 to", "classes"]),
    ("too many shots for the images per class", VALID.replace("shot: 1", "shot: 19"),
     ["shot=19", "<= 20 images per class"]),
    ("duplicate baselines", VALID.replace("[protonet]", "[protonet, protonet]"),
     ["baselines", "duplicate entry 'protonet'"]),
    ("duplicate threats", VALID.replace("[clean]", "[clean, clean]"), ["threats", "duplicate entry 'clean'"]),
    ("duplicate seeds", VALID + "seeds: [1, 1]\n", ["seeds", "duplicate seeds"]),
    ("bad severity", VALID.replace("[clean]", "[{name: gaussian_noise, params: {severity: 9}}]"),
     ["threats[0].params.severity", "9 is not allowed", "Allowed: 1, 2, 3, 4, 5"]),
    ("missing section", "datasets: [{name: glyphs}]\nbaselines: [protonet]\n", ["threats: missing"]),
    ("empty axis", VALID.replace("shot: 1", "shot: []"), ["datasets[0].shot", "empty list"]),
    ("train settings as an axis", VALID.replace("steps: 2", "steps: [2, 3]"), ["train", "not grid axes"]),
    ("bad eval split", VALID.replace("episodes: 3", "episodes: 3, split: tst"),
     ["eval.split", "'tst' is not allowed", "Did you mean 'test'"]),
    ("params not a mapping", VALID.replace("[protonet]", "[{name: protonet, params: [1, 2]}]"),
     ["baselines[0].params", "expected a mapping"]),
    ("unknown key in an entry", VALID.replace("[protonet]", "[{name: protonet, parms: {}}]"),
     ["baselines[0].parms", "Did you mean 'params'"]),
]


@pytest.mark.parametrize("what,text,fragments", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_suite_is_rejected_with_a_precise_error(tmp_path: Path, what: str, text: str,
                                                          fragments: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(BenchError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{what}: {fragment!r} not in {message!r}"


def test_validate_command_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace("[protonet]", "[protonett]"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'protonet'" in err and "Traceback" not in err


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace("[protonet]", "[protonett]").replace("[clean]", "[pgdd]"))
    with pytest.raises(BenchError, match="2 problems"):
        load_suite(str(path))


def test_unknown_suite_name_suggests_a_close_one() -> None:
    with pytest.raises(BenchError, match="Did you mean 'smoke'"):
        load_suite("smok")


@pytest.mark.parametrize("name", shipped_suites())
def test_every_shipped_suite_validates(name: str) -> None:
    suite = load_suite(name)
    assert suite.baselines and suite.threats and suite.datasets


def test_lists_are_grid_axes_and_fractions_parse(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(VALID.replace("shot: 1", "shot: [1, 5]").replace(
        "[clean]", "[{name: pgd, params: {eps: [2/255, 8/255], steps: 7}}]"))
    suite = load_suite(str(path))
    assert [d.shot for d in suite.datasets] == [1, 5]
    assert [t.config.eps for t in suite.threats] == [2 / 255, 8 / 255]
    assert {t.config.steps for t in suite.threats} == {7}
    assert [t.label for t in suite.threats] == ["pgd[eps=2/255,steps=7]", "pgd[eps=8/255,steps=7]"]


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), ("1e-3", 1e-3), (" 0.5 / 255 ", 0.5 / 255),
                                        (3, 3.0), ("__import__('os')", None), ("1/0", None), (True, None)])
def test_parse_number_never_evaluates_code(text: object, value: float | None) -> None:
    assert parse_number(text) == value
