"""Code fingerprints: which source files determine a job's result (DESIGN.md "Identity").

A job key hashes the configuration; a fingerprint hashes the code that turns that
configuration into numbers. It is the SHA-256 over the syntax trees (docstrings and comments
left out) of every module a job runs through: the import closure (read with `ast`, never by
importing) of the worker entry point, the baseline's module (with the ``baselines/_*.py``
helpers it imports), the backbone's module
and, for an evaluation, the threat's module. Modules that only describe, plan, schedule,
record or report jobs are left out: editing them changes keys, tags or tables, never the
numbers a job computes, so it must not make finished jobs stale.

A finished run whose recorded fingerprint differs from today's is *stale*: `bench run`
re-runs it unless the user keeps it (``--reuse-stale``).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.plan.jobs import EvalJob, TrainJob

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "baselines")
# Bookkeeping modules (and packages, by prefix): configuration parsing, planning keys,
# discovery, scheduling, recording and reporting. A change there cannot change a result
# without also changing a job key (configs are hashed into keys).
BOOKKEEPING = ("bench.cli", "bench.suite", "bench.registry", "bench.tracking", "bench.report", "bench.scheduler",
               "bench.errors", "bench.environment", "bench.fields", "bench.plan.fingerprint", "bench.plan.selection",
               "bench.run.step_progress", "bench.run.stopping", "bench.run.resume_state")
ENTRY = "bench.run.worker"


@dataclass(frozen=True)
class Fingerprint:
    """A job's code fingerprint: ``digest`` (16 hex) over ``files`` (path -> 12-hex content hash)."""

    digest: str
    files: tuple[tuple[str, str], ...]

    def encoded(self) -> str:
        """``path:hash;path:hash`` (an MLflow tag value), so a stale run can say what changed."""
        return ";".join(f"{path}:{digest}" for path, digest in self.files)


def changed_files(recorded: str, current: Fingerprint) -> list[str]:
    """The files whose content differs between a recorded `Fingerprint.encoded` and ``current``."""
    old = dict(item.rsplit(":", 1) for item in recorded.split(";") if ":" in item)
    new = dict(current.files)
    return sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))


@functools.cache
def for_classes(classes: tuple[type, ...]) -> Fingerprint:
    """The fingerprint of the worker entry point and the modules defining ``classes``
    (cached: a plan of 10,000 jobs has a few dozen distinct class sets)."""
    roots = {_module_file(ENTRY), *(Path(inspect.getfile(cls)).resolve() for cls in classes)}
    files = sorted({path for root in roots if root is not None for path in _closure(root)}, key=_display)
    hashes = tuple((_display(path), _file_hash(path)) for path in files)
    return Fingerprint(hashlib.sha256(repr(hashes).encode()).hexdigest()[:16], hashes)


def clear_cache() -> None:
    """Forget file hashes and import graphs (call when the code on disk may have changed)."""
    for cached in (_file_hash, _imports, _closure, for_classes):
        cached.cache_clear()


def _display(path: Path) -> str:
    """Repository-relative for project files (stable across clones), absolute otherwise."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def _module_name(path: Path) -> str:
    if not path.is_relative_to(ROOT):
        return ""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_bookkeeping(path: Path) -> bool:
    module = _module_name(path)
    return any(module == name or module.startswith(name + ".") for name in BOOKKEEPING)


@functools.cache
def _closure(root: Path) -> frozenset[Path]:
    """``root`` and every project module it imports, transitively (bookkeeping excluded)."""
    seen: set[Path] = set()
    stack = [root]
    while stack:
        path = stack.pop()
        if path in seen or (path != root and _is_bookkeeping(path)):
            continue
        seen.add(path)
        stack.extend(_imports(path))
    return frozenset(seen)


def _module_file(module: str) -> Path | None:
    """The file of a project module (``bench.*``, ``baselines.*``), or None for anything else."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _imports(path: Path) -> tuple[Path, ...]:
    """Project module files imported by ``path`` (``from pkg import sub`` counts as ``pkg.sub``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += _from_import(node, package)
    files = (_module_file(name) for name in dict.fromkeys(found))
    return tuple(file for file in files if file is not None)


def _from_import(node: ast.ImportFrom, package: str) -> list[str]:
    if node.level:
        parts = package.split(".")
        parent = ".".join(parts[: len(parts) - node.level + 1])
        base = f"{parent}.{node.module}" if node.module else parent
    else:
        base = node.module or ""
    submodules = [f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")]
    # Importing names from a package runs its __init__ only for what it defines itself;
    # submodules named explicitly are the real dependency.
    return submodules or [base]


@functools.cache
def _file_hash(path: Path) -> str:
    """12 hex digits over the module's syntax tree without docstrings: editing a comment or a
    docstring changes no result, so it must not make finished runs stale."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def train_fingerprint(job: TrainJob) -> Fingerprint:
    """The code a train job runs: worker, baseline, backbone, data source, training attack."""
    return for_classes(_train_classes(job))


def eval_fingerprint(job: EvalJob) -> Fingerprint:
    """The code an evaluation runs: its train job's code plus the threat's module."""
    from bench.registry import THREATS

    return for_classes((*_train_classes(job.train), THREATS.get(job.threat.name)))


def _train_classes(job: TrainJob) -> tuple[type, ...]:
    from bench.registry import BACKBONES, BASELINES, DATASETS, THREATS

    variant = job.variant
    # all classes; Any because backbones and threats are typed by protocols, which are not `type`
    classes: list[Any] = [BASELINES.get(variant.baseline.name), DATASETS.get(job.data.name),
                          BACKBONES.get(variant.backbone.name)]
    if variant.train.adversarial != "none":
        classes.append(THREATS.get(variant.train.adversarial))
    return tuple(classes)
