"""Test modules never import each other: what they share lives in `tests/helpers.py`,
`tests/processes.py` (child `bench run` processes and waiting on them) or `tests/conftest.py`. (Importing a test module runs its module-level code, drags its fixtures
and parametrisations along and ties one file's refactoring to another's.)"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SHARED = {"tests.helpers", "tests.processes", "tests.conftest", "helpers", "processes", "conftest"}


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            found |= {f"{base}.{alias.name}" if base == "tests" else base for alias in node.names}
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {}
    for path in sorted(TESTS.glob("*.py")):
        local = {m for m in _imported_modules(path)
                 if (m.startswith("tests.") or m.split(".")[0].startswith("test_")) and m not in SHARED}
        if local:
            offenders[path.name] = sorted(local)
    assert offenders == {}, "move what these share into tests/helpers.py or tests/conftest.py"
