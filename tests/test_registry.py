"""Registries: a class declares its key once (``name``), ``register`` reads it, and
`BaselineRegistry.temporarily` leaves the baselines as they were, user files included."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import pytest

from bench.errors import BenchError
from bench.registry import BACKBONES, BASELINES, DATASETS, PATH_VARIABLE, THREATS, USER_PACKAGE, Registry

REPO = Path(__file__).resolve().parent.parent


class Thing:
    name: ClassVar[str] = "thing"


def test_register_files_a_class_under_its_own_name() -> None:
    things: Registry[type[Thing]] = Registry("thing")
    assert things.register(Thing) is Thing
    assert things.names() == ["thing"] and things.get("thing") is Thing


def test_register_refuses_a_class_that_only_inherits_its_name() -> None:
    things: Registry[type[Thing]] = Registry("thing")
    heir = type("Heir", (Thing,), {})  # would be filed under its parent's key
    with pytest.raises(BenchError, match="declares no `name` of its own"):
        things.register(heir)


@pytest.mark.parametrize("registry", [BASELINES, BACKBONES, DATASETS, THREATS],
                         ids=["baselines", "backbones", "datasets", "threats"])
def test_every_key_is_the_name_its_class_declares(registry: Registry) -> None:
    assert [name for name, cls in registry] == [cls.name for _, cls in registry]


def _user_baseline(folder: Path, name: str) -> None:
    """``folder/mine.py``: ProtoNet renamed to ``name`` (one file name, two baselines)."""
    folder.mkdir()
    source = (REPO / "baselines" / "protonet.py").read_text()
    (folder / "mine.py").write_text(source.replace('name = "protonet"', f'name = "{name}"'))


def test_temporarily_forgets_what_it_found_and_a_later_block_finds_anew(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = BASELINES.names()
    for name in ("first", "second"):  # the same file name: the second must not see the first's module
        _user_baseline(tmp_path / name, name)
        monkeypatch.setenv(PATH_VARIABLE, str(tmp_path / name))
        modules = set(sys.modules)
        with BASELINES.temporarily():
            assert set(BASELINES.names()) - set(before) == {name}
        assert BASELINES.names() == before
        assert not [m for m in set(sys.modules) - modules if m.startswith(USER_PACKAGE)]


def test_temporarily_forgets_an_added_class() -> None:
    protonet = BASELINES.get("protonet")
    added = type("Extra", (protonet,), {"name": "extra"})
    with BASELINES.temporarily():
        BASELINES.add_class(added)
        assert BASELINES.get("extra") is added
    assert "extra" not in BASELINES
