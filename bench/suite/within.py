"""Checks of a data setting's ``within``: test episodes drawn inside one group of classes.

The grouping must be one the data source declares (`DataSource.groupings`). Whether every group
holds ``way`` classes is read from the prepared data set's manifest (class names and splits, a
small JSON file: no pixels are loaded); an unprepared data set is checked when it is loaded.
"""

from __future__ import annotations

from collections import Counter

from bench.data.cache import read_manifest
from bench.data.source import DataSource
from bench.errors import DataError
from bench.registry import DATASETS, close_match
from bench.suite.params import ParamError
from bench.suite.parse import Located
from bench.suite.values import DataSetting


def check_within(data: Located, split: str) -> list[ParamError]:
    """Problems with ``data``'s ``within`` on the ``split`` its test episodes come from."""
    return check_grouping(data.item, split, f"{data.path}.within", f"{data.path}.way")


def check_grouping(d: DataSetting, split: str, within_path: str, way_path: str) -> list[ParamError]:
    """Problems with episodes of ``d`` drawn within ``d.within`` on ``split`` (a test setting's,
    or a training setting's, `bench.plan.jobs.training_setting`); errors name the two keys."""
    if d.within is None:
        return []
    source = DATASETS.get(d.name)()
    if d.within not in source.groupings:
        offered = ", ".join(source.groupings) or "none"
        return [ParamError(within_path, f"{d.name} has no grouping {d.within!r}. Allowed: {offered}"
                           f"{close_match(d.within, list(source.groupings))}")]
    sizes = group_sizes(source, d.image_size, d.within, split)
    small = sorted((n, g) for g, n in sizes.items() if n < d.way)
    if not small:
        return []
    named = ", ".join(f"{g} ({n})" for n, g in small[:5])
    return [ParamError(way_path, f"{d.way}-way episodes within one {d.within} need {d.way} classes in "
                       f"every {d.within} of the {split} split of {d.name}; {len(small)} have fewer: {named}"
                       f"{', ...' if len(small) > 5 else ''}. Allowed: way <= {small[0][0]}")]


def group_sizes(source: DataSource, image_size: int, grouping: str, split: str) -> Counter[str]:
    """Classes per group of ``grouping`` in ``split``, from the prepared manifest (empty when the
    data set is not prepared yet)."""
    try:
        manifest = read_manifest(source.cache_dir(None, image_size))
    except DataError:
        return Counter()
    return Counter(source.class_group(grouping, name) for name in manifest["splits"].get(split, []))
