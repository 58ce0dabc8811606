"""Name -> class registries for baselines, backbones, data sets and threats.

Suites refer to everything by name (never by import path: YAML that imports code is a
security hole). Each registry answers an unknown name with the allowed names and the closest
match. Baselines are discovered from the files in ``baselines/`` (the shipped ones and the project's,
`bench.project`), from the folders listed in ``$BENCH_BASELINES_PATH`` and from the
``fewshot_bench.baselines`` entry-point group of installed packages.

Every registered class declares its key once, as its ``name`` class attribute: a class
decorator ``@THREATS.register`` (no argument) reads it, and baseline discovery does too.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import os
import sys
import traceback
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeGuard, TypeVar

from bench.errors import BenchError
from bench.project import project_folder

if TYPE_CHECKING:
    from torch import nn

    from bench.baseline import Baseline
    from bench.data.source import DataSource

ENTRY_POINT_GROUP = "fewshot_bench.baselines"
PATH_VARIABLE = "BENCH_BASELINES_PATH"  # extra folders of baseline files (os.pathsep-separated)
USER_PACKAGE = "bench_user_baselines_"  # + folder index: the package of a user folder's modules
BASELINES_DIR = Path(__file__).resolve().parent.parent / "baselines"


def close_match(name: str, allowed: list[str]) -> str:
    """`" Did you mean 'x'?"` for the closest allowed name, or an empty string; a case-only
    mistake (``PGD`` for ``pgd``) is matched first."""
    same = [a for a in allowed if a.lower() == str(name).lower() and a != name]
    if same:
        return f" Did you mean {same[0]!r}?"
    match = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.5)
    if not match:  # "lr_rate" -> "lr": a shared prefix is a better hint than edit distance
        match = sorted((a for a in allowed if str(name).startswith(a) or a.startswith(str(name))),
                       key=len, reverse=True)[:1]
    return f" Did you mean {match[0]!r}?" if match else ""


class Named(Protocol):
    """What every registry holds: a class that declares its key once, ``name: ClassVar[str]``."""

    @property
    def name(self) -> str: ...


class BackboneClass(Protocol):
    """A backbone class (`bench.backbones`): ``cls(cls.Config(...), in_channels, image_size)``
    is an ``nn.Module`` mapping ``(N, C, S, S)`` to ``(N, out_features)``. A protocol, because
    backbones share no base class and `bench.backbones` imports this module."""

    @property
    def name(self) -> str: ...

    @property
    def Config(self) -> type: ...  # noqa: N802 - the class attribute it describes

    def __call__(self, config: Any, in_channels: int, image_size: int) -> nn.Module: ...

    def transductive(self, config: Any) -> bool:
        """True when a task model's prediction for one query depends on the other queries of
        its batch (batch-statistics batch norm)."""


class ThreatClass(Protocol):
    """`bench.threats.base.Threat` as a class, as the users of `THREATS` read it: this module
    sits below `bench.threats` in the layers and may not import it. Instances are typed Any;
    code above `bench.threats` that needs the full type narrows with ``issubclass(cls, Threat)``."""

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def kind(self) -> str: ...  # a `ThreatKind`, a str enum

    @property
    def source(self) -> str: ...

    @property
    def Config(self) -> type: ...  # noqa: N802 - the class attribute it describes

    @property
    def min_way(self) -> int: ...

    @property
    def gradient_free(self) -> bool: ...

    @property
    def needs_color(self) -> bool: ...

    def display(self, config: Any) -> str: ...

    def threat_model(self, config: Any) -> Any: ...

    def target_classes(self, config: Any, way: int) -> int | None: ...

    def __call__(self, config: Any) -> Any: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """A named collection of classes of one kind, each under the key it declares (``name``)."""

    def __init__(self, kind: str, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._modules = modules
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def register(self, item: T) -> T:
        """Class decorator: ``@THREATS.register`` files the class under its own ``name``.

        Raises:
            BenchError: the class declares no ``name`` of its own (an inherited one would file
                it under its parent's key), or another class already has that name.
        """
        if "name" not in vars(item):
            raise BenchError(f"{item!r} declares no `name` of its own: add `name = \"...\"`, "
                             f"the key suites use, to register it as a {self.kind}.")
        self._add(item.name, item)
        return item

    def _add(self, name: str, item: T) -> None:
        origin = _origin(item)
        if name in self._items and self._origins[name] != origin:
            raise BenchError(f"two {self.kind}s are named {name!r}: one in {self._origins[name]}, one in "
                             f"{origin}. Rename one of them (its `name` attribute).")
        self._items[name] = item
        self._origins[name] = origin

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            allowed = self.names()
            raise BenchError(f"unknown {self.kind} {name!r}. Allowed: {', '.join(allowed)}."
                             f"{close_match(name, allowed)}{self.unloaded_hint()}")
        return self._items[name]

    def unloaded_hint(self) -> str:
        """What could not be loaded (files that fail to import), for an unknown-name error."""
        return ""

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def origin(self, name: str) -> str:
        self.get(name)
        return self._origins[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._items.items()))

    def _load(self) -> None:
        """Import the modules whose decorators fill this registry (first use only)."""
        for module in self._modules:
            importlib.import_module(module)


def _origin(item: object) -> str:
    try:
        return inspect.getfile(item)  # type: ignore[arg-type]
    except TypeError:
        return repr(item)


class BaselineRegistry(Registry["type[Baseline]"]):
    """Baselines: every public module in ``baselines/`` plus the entry-point group.

    A baseline file that fails to import (a syntax error, a missing package) does not break
    the others: it is recorded in ``broken`` (file, line, error) and named by every error about
    an unknown baseline and by ``bench list baselines``. `temporarily` scopes additions.
    """

    def __init__(self) -> None:
        super().__init__("baseline")
        self._loaded = False
        self.broken: dict[str, str] = {}  # file path -> "line N: <error>"

    def unloaded_hint(self) -> str:
        if not self.broken:
            return ""
        files = "; ".join(f"{path}, {problem}" for path, problem in sorted(self.broken.items()))
        return f" These baseline files failed to import and are left out: {files}. Fix them to use their baselines."

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        extra = [Path(p) for p in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if p]
        own = project_folder("baselines")  # the project's own baselines/ (`bench.project`)
        if own is not None and own.resolve() != BASELINES_DIR:
            extra.insert(0, own)
        shipped = {path.name for path in BASELINES_DIR.glob("*.py")}
        for index, folder in enumerate([BASELINES_DIR, *extra]):
            package = "baselines" if index == 0 else _package(f"{USER_PACKAGE}{index}", folder)
            again = shipped if index and _other_checkout(folder) else set()  # loaded once, from the installed
            for path in sorted(folder.glob("*.py")):
                if not path.name.startswith("_") and path.name not in again:
                    self._import_file(path, f"{package}.{path.stem}")
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            self.add_class(entry.load())

    def _import_file(self, path: Path, module_name: str) -> None:
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - any error of user code: the file is left out, said so
                del sys.modules[module_name]
                self.broken[str(path)] = import_problem(exc, path)
                return
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module_name and getattr(obj, "name", None) and _is_baseline(obj):
                self.add_class(obj)

    def add_class(self, cls: type[Baseline]) -> None:
        """Register a baseline class under its ``name``, its own or inherited (a test's subclass)."""
        self._add(cls.name, cls)

    @contextmanager
    def temporarily(self) -> Iterator[None]:
        """A block after which the registry is as it was before: for tests and tools that add
        baselines (`add_class`) or point ``$BENCH_BASELINES_PATH`` at a folder of their own.

        On entry, the next use discovers the baselines again (the folders as they are set then);
        on exit, what was added or discovered inside is forgotten, with the user-folder modules
        imported inside, so that a later block imports its own files under those module names.
        """
        saved = dict(self._items), dict(self._origins), dict(self.broken), self._loaded
        modules = set(sys.modules)
        self._loaded = False
        try:
            yield
        finally:
            self._items, self._origins, self.broken, self._loaded = saved
            for name in set(sys.modules) - modules:
                if name.startswith(USER_PACKAGE):
                    del sys.modules[name]


def _other_checkout(folder: Path) -> bool:
    """Whether ``folder`` is the ``baselines/`` of another checkout of this repository (a clone
    next to the installed one): its shipped files are not loaded a second time beside the
    installed checkout's (a note says so); its own new files are."""
    root = folder.resolve().parent
    if not (root / "bench" / "baseline.py").is_file() or not (root / "baselines" / "_common.py").is_file():
        return False
    warnings.warn(f"{root} is another checkout of fewshot-bench: the shipped baselines come from the installed "
                  f"one ({BASELINES_DIR.parent}), this checkout's own new files are loaded beside them. To run "
                  f"this checkout's code: pip install -e {root}", stacklevel=2)
    return True


def _package(name: str, folder: Path) -> str:
    """A package module ``name`` for a folder of baseline files: pickle (multi-worker runs)
    imports a class's module by name, and ``name.file`` needs its package in ``sys.modules``."""
    if name not in sys.modules:
        package = types.ModuleType(name, f"baseline files of {folder}")
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    return name


def import_problem(exc: BaseException, path: Path) -> str:
    """``line 12: SyntaxError: invalid syntax``: where in ``path`` an import failed and why."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    if line is None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        line = frames[-1].lineno if frames else None
    where = f"line {line}: " if line else ""
    return f"{where}{type(exc).__name__}: {exc}"


def _is_baseline(cls: type) -> TypeGuard[type[Baseline]]:
    from bench.baseline import Baseline

    return issubclass(cls, Baseline) and not inspect.isabstract(cls)


BASELINES: BaselineRegistry = BaselineRegistry()
BACKBONES: Registry[BackboneClass] = Registry("backbone", ("bench.backbones", "bench.model_backbone"))
DATASETS: Registry[type[DataSource]] = Registry("data set", ("bench.data.sources",))
THREATS: Registry[ThreatClass] = Registry("threat", ("bench.threats",))
