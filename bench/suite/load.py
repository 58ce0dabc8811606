"""Suite YAML -> a validated, typed `Suite` (DESIGN.md "Suites").

The whole grid is validated before anything runs; every problem found is reported at once,
each naming the file, the key path, the bad value, the allowed values and a close match. The
steps, one module each: `bench.suite.read` reads the file (safe YAML, bounded), then
`bench.suite.parse` types each section (`bench.suite.params` for every value), `bench.suite.labels` names
the variants, and `bench.suite.checks` checks what spans sections. Suites refer to components
by name, never by import path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.errors import BenchError
from bench.project import REPO_ROOT, project_folder
from bench.registry import DATASETS, close_match
from bench.suite.added import Additions, with_added
from bench.suite.checks import check_suite
from bench.suite.overrides import apply_overrides
from bench.suite.params import ParamError
from bench.suite.parse import parse_suite
from bench.suite.read import read_suite_yaml
from bench.suite.values import (
    BaselineVariant,
    Component,
    DataSetting,
    EvalSettings,
    Suite,
    TrainSettings,
)
from bench.threats.base import target_dataset

__all__ = ["REPO_ROOT", "BaselineVariant", "Component", "DataSetting", "EvalSettings", "Suite", "TrainSettings",
           "data_needed", "load_suite", "shipped_suites", "suite_path"]



def suite_path(name_or_path: str) -> Path:
    """A suite file from a name found in ``suites/`` (here or in the repository) or a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if candidate.is_dir():
            found = sorted(p.name for p in candidate.glob("*.y*ml"))[:8]
            raise BenchError(f"{candidate.resolve()} is a folder, not a suite file. Give one .yaml file"
                             f"{' (it holds ' + ', '.join(found) + ')' if found else ''} or a suite name.")
        if not candidate.is_file():
            raise BenchError(f"suite file {candidate.resolve()} does not exist. Give a path to a .yaml file or one "
                             f"of the shipped names: {', '.join(shipped_suites())}.")
        return candidate
    for folder in _suite_folders():
        if (folder / f"{name_or_path}.yaml").is_file():
            return folder / f"{name_or_path}.yaml"
    names = known_suites()
    raise BenchError(f"no suite named {name_or_path!r}. Known suites: {', '.join(names)}."
                     f"{close_match(name_or_path, names)} A path to a .yaml file works too.")


def _suite_folders() -> list[Path]:
    """Where suite names are looked up: the project's ``suites/`` (`bench.project`), then the
    shipped ones."""
    own = project_folder("suites")
    return list(dict.fromkeys(p.resolve() for p in (own, REPO_ROOT / "suites") if p is not None))


def shipped_suites() -> list[str]:
    """The shipped suites' names (the ones `bench report --all` reports)."""
    return sorted(p.stem for p in (REPO_ROOT / "suites").glob("*.yaml"))


def known_suites() -> list[str]:
    """Every suite name a command accepts: the project's and the shipped ones."""
    return sorted({p.stem for folder in _suite_folders() for p in folder.glob("*.yaml")})


def load_suite(name_or_path: str, overrides: tuple[str, ...] = (), added: Additions = Additions()) -> Suite:
    """Read, parse and validate a suite (after the ``--set`` ``overrides``, `bench.suite.overrides`,
    and with the ``added`` entries, `bench.suite.added`); raise one `BenchError` listing every
    problem."""
    path = suite_path(name_or_path)
    raw = with_added(apply_overrides(read_suite_yaml(path), overrides), added)
    errors: list[ParamError] = []
    try:
        parsed = parse_suite(raw, path, errors)
        if parsed is not None and not errors:
            errors.extend(check_suite(parsed))
    except Exception as exc:  # noqa: BLE001 - a validator bug must still read as a message, not a traceback
        errors.append(ParamError("(top level)", f"could not be validated ({type(exc).__name__}: {exc})"))
        parsed = None
    if errors or parsed is None:
        lines = "\n".join(f"  - {e}" for e in errors)
        given = f" with --set {', '.join(overrides)}" if overrides else ""
        raise BenchError(f"{path}{given}: invalid suite ({len(errors)} problem{'s' * (len(errors) != 1)}):\n"
                         f"{lines}\nFix the suite and run `bench validate {path}` again.")
    suite = dataclasses.replace(parsed.suite, overrides=tuple(overrides),
                                added=tuple(str(entry.get("label", "")) for entry in added.baselines))
    if added.threats:  # their columns, by difference: one entry may be a grid of several
        own = load_suite(name_or_path, overrides).threats
        suite = dataclasses.replace(suite, added_threats=tuple(t.label for t in suite.threats if t not in own))
    return suite


def data_needed(suite: Suite) -> list[tuple[str, int]]:
    """Every (data set, image size) the suite reads, domain-shift targets included."""
    needed = {(d.name, d.image_size) for d in suite.datasets}
    for threat in suite.threats:
        target = target_dataset(threat.config)
        if target is not None:
            needed.add((target, DATASETS.get(target).default_size))
    return sorted(needed)
