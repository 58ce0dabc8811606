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
import importlib.util
import inspect
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import user_code
from bench.fields import code_fields

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
def for_classes(classes: tuple[type, ...], code: tuple[str, ...] = (), files: tuple[str, ...] = ()) -> Fingerprint:
    """The fingerprint of the worker entry point and the modules defining ``classes``, the
    modules that ``code`` references name (``package.module:attribute``, a researcher's model
    factory, with the user code it imports) and the bytes of ``files`` (weights files, as the
    suite names them). Cached: a plan of 10,000 jobs has a few dozen distinct sets."""
    for reference in code:  # user packages are displayed relative to their folder: register it first
        _user_root(reference.split(".")[0].split(":")[0])
    roots = {_module_file(ENTRY), *(Path(inspect.getfile(cls)).resolve() for cls in classes),
             *(user_code.module_file(reference) for reference in code)}
    modules = sorted({path for root in roots if root is not None for path in _closure(root)}, key=_display)
    hashes = tuple((_display(path), _file_hash(path)) for path in modules)
    hashes += tuple((f"file {name}", _data_hash(name)) for name in files)
    return Fingerprint(hashlib.sha256(repr(hashes).encode()).hexdigest()[:16], hashes)


def _data_hash(name: str) -> str:
    """12 hex digits of a named file's SHA-256 ("missing" when it is gone: the run then differs)."""
    path = user_code.resolve_file(name)
    return user_code.file_sha256(path)[:12] if path.is_file() else "missing"


def clear_cache() -> None:
    """Forget file hashes and import graphs (call when the code on disk may have changed)."""
    for cached in (_file_hash, _imports, _closure, for_classes, _user_root):
        cached.cache_clear()


def _display(path: Path) -> str:
    """Relative to the repository or to the folder a user package sits in (stable across
    clones and machines), absolute otherwise."""
    base = _base_of(path)
    return path.relative_to(base).as_posix() if base is not None else str(path)


def _base_of(path: Path) -> Path | None:
    """The folder ``path``'s module name is relative to: the repository, or a user package's parent."""
    if path.is_relative_to(ROOT):
        return ROOT
    return next((root for root in _USER_ROOTS.values() if root is not None and path.is_relative_to(root)), None)


def _module_name(path: Path) -> str:
    base = _base_of(path)
    if base is None:
        return ""
    parts = list(path.relative_to(base).with_suffix("").parts)
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
    """The file of a project module (``bench.*``, ``baselines.*``) or of user code (`_user_root`),
    or None for anything else (the standard library, installed packages)."""
    top = module.split(".")[0]
    root = ROOT if top in PACKAGES else _user_root(top)
    if root is None:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


_USER_ROOTS: dict[str, Path | None] = {}
UNHASHED: set[str] = set()  # user modules without Python source (compiled): named once per run


@functools.cache
def _user_root(top: str) -> Path | None:
    """The folder holding user package (or module) ``top``: code that is neither the standard
    library nor installed into the environment (a researcher's models beside the suite, an
    editable install). Found without importing it."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    found = _spec_folder(spec) if spec is not None else None
    if found is None and spec is not None and spec.origin not in (None, "built-in", "frozen") \
            and not _installed(Path(spec.origin)):
        UNHASHED.add(top)
    _USER_ROOTS[top] = found
    return found


def _spec_folder(spec: importlib.machinery.ModuleSpec) -> Path | None:
    locations = list(spec.submodule_search_locations or [])
    source = Path(locations[0]) / "__init__.py" if locations else Path(spec.origin or "")
    if not source.is_file() or source.suffix != ".py" or _installed(source.resolve()):
        return None
    return source.resolve().parent.parent if locations else source.resolve().parent


def _installed(path: Path) -> bool:
    """Whether ``path`` lies in the Python installation (standard library or site-packages)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    folders = {Path(p).resolve() for p in (*(sysconfig.get_paths().get(n) for n in names), *site.getsitepackages(),
                                           site.getusersitepackages()) if p}
    return any(path.is_relative_to(folder) for folder in folders)


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
    """The code a train job runs: worker, baseline, backbone, data source, training attack, and
    the researcher's code and weights files its configuration names (`user_inputs`)."""
    return for_classes(_train_classes(job), *user_inputs(job))


def eval_fingerprint(job: EvalJob) -> Fingerprint:
    """The code an evaluation runs: its train job's code plus the threat's module."""
    from bench.registry import THREATS

    return for_classes((*_train_classes(job.train), THREATS.get(job.threat.name)), *user_inputs(job.train))


def user_inputs(job: TrainJob) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The code references (`bench.fields.code_reference` fields of the baseline's and the
    backbone's configs) and the weights files (``backbone.weights``) of a train job."""
    variant = job.variant
    code = tuple(code_fields(variant.baseline.config) + code_fields(variant.backbone.config))
    return code, (variant.backbone.weights,) if variant.backbone.weights else ()


def _train_classes(job: TrainJob) -> tuple[type, ...]:
    from bench.registry import BACKBONES, BASELINES, DATASETS, THREATS

    variant = job.variant
    # all classes; Any because backbones and threats are typed by protocols, which are not `type`
    classes: list[Any] = [BASELINES.get(variant.baseline.name), DATASETS.get(job.data.name),
                          BACKBONES.get(variant.backbone.name)]
    if variant.train.adversarial != "none":
        classes.append(THREATS.get(variant.train.adversarial))
    return tuple(classes)
