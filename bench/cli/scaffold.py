"""`bench new-baseline NAME`: write ``baselines/NAME.py`` from the commented template."""

from __future__ import annotations

import re
from pathlib import Path

from bench.errors import BenchError
from bench.project import project_folder
from bench.registry import BASELINES, BASELINES_DIR

TEMPLATE = Path(__file__).resolve().parent / "templates" / "baseline.py.tmpl"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def new_baseline(name: str, folder: Path | None = None) -> Path:
    """Write the template for ``name``; refuses bad names and names already taken."""
    if not NAME.match(name):
        raise BenchError(f"{name!r} is not a valid baseline name: use lower-case letters, digits and '_', "
                         f"starting with a letter (it becomes a Python module name).")
    folder = folder or project_folder("baselines") or BASELINES_DIR  # the project's (`bench.project`)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.py"
    if name in BASELINES:
        raise BenchError(f"a baseline named {name!r} already exists in {BASELINES.origin(name)}; choose "
                         f"another name.")
    if target.exists():
        raise BenchError(f"{target} already exists; choose another name or delete that file.")
    text = TEMPLATE.read_text().format(name=name, cls=class_name(name), title=name.replace("_", " ").title())
    target.write_text(text)
    return target
