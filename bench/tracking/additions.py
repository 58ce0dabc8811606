"""A suite as its store knows it: the file plus the entries added from outside it (`bench.suite.added`)."""

from __future__ import annotations

from bench.suite.added import Additions
from bench.suite.load import Suite, load_suite
from bench.tracking.store import resolve_uri, store_exists
from bench.tracking.tracker import Tracker


def stored_additions(name: str, uri: str | None) -> Additions:
    """The entries the store at ``uri`` holds for suite ``name`` (none when there is no store)."""
    if not store_exists(resolve_uri(uri)):
        return Additions()
    return Tracker(uri, name, create=False).additions()


def suite_with_additions(name_or_path: str, overrides: tuple[str, ...] = (), uri: str | None = None) -> Suite:
    """The suite with the models `bench eval-model` added and the threats `bench eval` ran."""
    suite = load_suite(name_or_path, overrides)
    added = stored_additions(suite.name, uri)
    return load_suite(name_or_path, overrides, added) if added else suite
