"""docs/suite-format.md is generated from the schema and current: every key the parser takes,
every registered baseline, threat and backbone, with types, defaults and meanings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.cli import main
from bench.registry import BACKBONES, BASELINES, THREATS
from bench.suite import load as config
from bench.suite.docs import PAGE, attribute_meanings, render_page
from bench.suite.parse import TOP_KEYS
from bench.suite.values import DataParams, EvalSettings, TrainSettings


def test_the_committed_page_is_current() -> None:
    assert (config.REPO_ROOT / PAGE).read_text(encoding="utf-8") == render_page(), "run `bench docs suite-format`"


def test_every_key_and_component_is_documented_with_its_meaning() -> None:
    page = render_page()
    for key in TOP_KEYS:
        assert f"| `{key}` |" in page, key
    for section in (DataParams, TrainSettings, EvalSettings):
        meanings = attribute_meanings(section)
        for field in dataclasses.fields(section):
            assert meanings.get(field.name), f"{section.__name__}.{field.name} has no meaning in its docstring"
    for registry in (BASELINES, THREATS, BACKBONES):
        for name, _ in registry:
            assert f"### `{name}`" in page, name
    assert "| `eps` | float | 8/255 |" in page  # pixel defaults as fractions of 255


def test_check_fails_on_a_stale_page_and_the_command_rewrites_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / PAGE).write_text("# old\n", encoding="utf-8")
    assert main(["docs", "suite-format", "--check"]) == 1
    assert (tmp_path / PAGE).read_text(encoding="utf-8") == "# old\n"  # --check writes nothing
    assert main(["docs", "suite-format"]) == 0
    assert main(["docs", "suite-format", "--check"]) == 0
