"""The import rules of DESIGN.md, read from the source with `ast` (nothing is imported).

- only `bench/tracking/` imports mlflow; only `bench/threats/` imports torchattacks;
- nothing outside `bench/report/` imports the report, except the CLI (`bench/cli.py`,
  `bench/commands.py`);
- the modules of `bench/` and `baselines/` import each other without a cycle (imports under
  ``if TYPE_CHECKING:`` are annotations, not imports, and are left out);
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


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports at run time (absolute names; relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip, package = _type_checking_only(tree), module_name(path).rpartition(".")[0]
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
    allowed = {"bench/cli.py", "bench/commands.py"}
    outside = {p for p in importers("bench.report") if not p.startswith(("bench/report/", "benchmarks/"))}
    assert outside - allowed == set()


def test_benchmarks_never_import_tests() -> None:
    assert {p for p in importers("tests") if p.startswith("benchmarks/")} == set()


def _graph() -> dict[str, set[str]]:
    known = {module_name(p): p for p in SOURCES if not p.is_relative_to(ROOT / "benchmarks")}
    return {name: {m for m in imports(path) if m in known and m != name} for name, path in known.items()}


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
