"""A researcher's own code and files, named in a suite: model factories and weights files.

A factory is named ``package.module:attribute`` (`bench.fields.code_reference`) and imported
from the project folder (`bench.project`), the working directory or the environment, in the
driver and in every worker alike. A weights file is named by a path, absolute or relative to
the project folder (else the working directory), so every process of a run finds the same file.
What they contain is hashed into the code fingerprint (`bench.plan.fingerprint`), so a changed
factory or weights file makes finished runs stale instead of silently reused.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.project import project_root


def search_folders() -> list[Path]:
    """Where a factory's module is looked for before the environment: project folder, cwd."""
    return list(dict.fromkeys(p for p in (project_root(), Path.cwd()) if p is not None))


def _importable() -> None:
    for folder in reversed(search_folders()):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def load_reference(reference: str) -> Callable[..., Any]:
    """The object ``package.module:attribute`` names (a class or a function).

    Raises:
        BenchError: the module cannot be imported (the exception it raised is named) or has
            no such attribute.
    """
    module_name, _, attribute = reference.partition(":")
    _importable()
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's import is reported the same way
        folders = ", ".join(str(p) for p in search_folders())
        raise BenchError(f"cannot import {module_name!r} (for {reference}): {type(exc).__name__}: {exc}. The module "
                         f"must be importable from {folders} or the environment (pip install -e your package)."
                         ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = sorted(n for n in dir(target) if not n.startswith("_"))[:12]
            raise BenchError(f"{reference}: {module_name} has no attribute {attribute!r}. It defines: "
                             f"{', '.join(names) or 'nothing public'}.")
        target = getattr(target, part)
    if not callable(target):
        raise BenchError(f"{reference} is a {type(target).__name__}, not a class or function that builds a model.")
    return target


def module_file(reference: str) -> Path | None:
    """The source file of the module ``reference`` names (None when it has no Python source)."""
    module_name = reference.partition(":")[0]
    _importable()
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    origin = getattr(module, "__file__", None)
    return Path(origin).resolve() if origin and origin.endswith(".py") else None


def resolve_file(path: str) -> Path:
    """A suite's file path: absolute, or relative to the project folder (else the cwd)."""
    given = Path(path).expanduser()
    if given.is_absolute():
        return given
    return (project_root() or Path.cwd()) / given


def existing_file(path: str, what: str) -> Path:
    """`resolve_file`, refusing a path that is no file."""
    found = resolve_file(path)
    if not found.is_file():
        problem = "is a folder" if found.is_dir() else "does not exist"
        base = project_root() or Path.cwd()
        raise BenchError(f"{what} {path!r}: {found} {problem}. Give the path of a file saved with "
                         f"torch.save(model.state_dict(), PATH), absolute or relative to {base}.")
    return found


@functools.cache
def _content_hash(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (cached per size and modification time: weights files are big)."""
    stat = path.stat()
    return _content_hash(path, stat.st_size, stat.st_mtime_ns)
