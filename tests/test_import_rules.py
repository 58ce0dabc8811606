"""The import rules of DESIGN.md, read from the source with `ast` (nothing is imported).

- only `bench/tracking/` imports mlflow; only `bench/threats/` imports torchattacks;
- nothing outside `bench/report/` imports the report, except the CLI (`bench/cli/dispatch.py`,
  `bench/cli/commands.py`);
- each stage package of DESIGN's layout imports only the layers below it, ``if
  TYPE_CHECKING:`` imports included (`LAYERS`);
- the modules of `bench/` and `baselines/` import each other without a cycle, ``if
  TYPE_CHECKING:`` imports included (a cycle there is a knot a reader must untie all the same);
- `benchmarks/` never imports `tests/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("bench", "baselines", "benchmarks") for p in (ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p) for p in SOURCES} | {"tests.test_contract", "tests.conftest", "tests.helpers"}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of the imports inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines |= {child.lineno for child in ast.walk(node) if isinstance(child, ast.Import | ast.ImportFrom)}
    return lines


def imports(path: Path, annotations: bool = False) -> set[str]:
    """Every module ``path`` imports at run time (absolute names; relative ones resolved),
    and with ``annotations`` also those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if annotations else _type_checking_only(tree)
    package = module_name(path).rpartition(".")[0]
    if path.name == "__init__.py":
        package = module_name(path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            # ``from pkg import sub`` depends on the submodule; ``from mod import name`` on mod
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES
            found |= submodules or {base}
    return found


def importers(prefix: str, read=None) -> set[str]:
    """Repository paths of the sources importing ``prefix`` (``read``: path -> imported names)."""
    read = read or imports
    return {path.relative_to(ROOT).as_posix() for path in SOURCES
            if any(name == prefix or name.startswith(prefix + ".") for name in read(path))}


def mlflow_outside_tracking(read=None) -> set[str]:
    return {p for p in importers("mlflow", read) if not p.startswith("bench/tracking/")}


def torchattacks_outside_threats(read=None) -> set[str]:
    return {p for p in importers("torchattacks", read) if not p.startswith("bench/threats/")}


def test_only_tracking_imports_mlflow() -> None:
    assert mlflow_outside_tracking() == set()


def test_only_threats_import_torchattacks() -> None:
    assert torchattacks_outside_threats() == set()


def test_the_rules_can_fail() -> None:
    """Not vacuous: a module that imported mlflow or torchattacks would be caught."""
    def with_offender(path: Path) -> set[str]:
        return imports(path) | ({"mlflow.tracking", "torchattacks"} if path.name == "errors.py" else set())

    assert mlflow_outside_tracking(with_offender) == {"bench/errors.py"}
    assert torchattacks_outside_threats(with_offender) == {"bench/errors.py"}


def test_only_the_cli_imports_the_report() -> None:
    allowed = {"bench/cli/dispatch.py", "bench/cli/commands.py"}
    outside = {p for p in importers("bench.report") if not p.startswith(("bench/report/", "benchmarks/"))}
    assert outside - allowed == set()


def test_benchmarks_never_import_tests() -> None:
    assert {p for p in importers("tests") if p.startswith("benchmarks/")} == set()


def _graph() -> dict[str, set[str]]:
    known = {module_name(p): p for p in SOURCES if not p.is_relative_to(ROOT / "benchmarks")}
    return {name: {m for m in imports(path, annotations=True) if m in known and m != name}
            for name, path in known.items()}


# DESIGN.md "Layout", lowest first. A module may import its own package and any package of a
# lower layer; packages of one layer (scheduler and report) never import each other. The
# foundations are the top-level modules and `bench.data`: the baseline contract hands
# baselines an `Episode` (`bench.data.episodes`), and data sets register through
# `bench.registry`, so the two are one layer (their modules still may not form a cycle).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bench", "bench.data"),
    ("bench.threats",),
    ("bench.suite",),
    ("bench.plan",),
    ("bench.run",),
    ("bench.tracking",),
    ("bench.scheduler", "bench.report"),
    ("bench.exchange",),  # checkpoint files that leave the store (`bench export`, `load_checkpoint`)
    ("bench.api",),
    ("bench.cli",),  # the command line is built on the Python API (`bench export`, `bench eval-model`)
    ("bench.__main__",),
)


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, package) of a `bench` module: its longest-matching declared package."""
    matches = [(len(pkg), index, pkg) for index, layer in enumerate(LAYERS) for pkg in layer
               if module == pkg or module.startswith(pkg + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no layer of LAYERS: declare its package there")
    _, index, package = max(matches)
    return index, package


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``importer -> imported`` for each import of a package in the same or a higher layer."""
    found = []
    for module, targets in sorted(graph.items()):
        if not module.startswith("bench"):
            continue
        level, package = layer_of(module)
        for target in sorted(t for t in targets if t.startswith("bench")):
            target_level, target_package = layer_of(target)
            same_package = target_package == package and package != "bench"
            if not same_package and (target_level > level or (target_level == level and level > 0)):
                found.append(f"{module} -> {target}")
    return found


def test_each_stage_imports_only_the_layers_below() -> None:
    assert layer_violations(_graph()) == []


def test_the_layer_rule_can_fail() -> None:
    graph = _graph()
    graph["bench.run.runner"] = graph["bench.run.runner"] | {"bench.report.views"}
    graph["bench.report.views"] = graph["bench.report.views"] | {"bench.scheduler.dag"}
    assert layer_violations(graph) == ["bench.report.views -> bench.scheduler.dag",
                                       "bench.run.runner -> bench.report.views"]


def test_no_import_cycle() -> None:
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
