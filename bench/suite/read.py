"""Reading a suite file: safe YAML with bounds, before anything is parsed further.

`yaml.safe_load` alone constructs no code, but it accepts input that the validator would then
choke on: an alias bomb ("billion laughs": nine anchors of nine aliases each expand to 10^9
nodes, which validation walked for minutes), nesting that overflows Python's recursion limit,
an alias that contains itself, and duplicate mapping keys (YAML keeps the last one, silently).
`read_suite_yaml` refuses all of them from the composed node graph, in time linear in the
size of the file, with a `BenchError` naming the file, the line and the key path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bench.errors import BenchError

MAX_BYTES = 1 << 20  # the largest shipped suite is under 3 KB
MAX_DEPTH = 16  # a suite needs 7 levels (baselines[0].backbone.params.channels[0] is 6)
MAX_NODES = 50_000  # after alias expansion; the largest shipped suite has about 300
MERGE_TAG = "tag:yaml.org,2002:merge"


class Refused(Exception):
    """Input refused before construction, at ``line`` (1-based) and key ``path``."""

    def __init__(self, message: str, node: Node | None, path: str) -> None:
        super().__init__(message)
        mark = node.start_mark if node is not None else None
        self.where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "line ?"
        self.path = path or "(top level)"


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that limits nesting while composing and checks the node graph before construction."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.trail: list[str] = []  # key path of the node being composed

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        # PyYAML composes recursively (two frames per level): stop before Python's limit does.
        # ``index`` is a sequence position, a mapping's key node (for its value) or None (a key).
        self.trail.append(f"[{index}]" if isinstance(index, int) else
                          f".{index.value}" if isinstance(index, ScalarNode) else "")
        try:
            if len(self.trail) > MAX_DEPTH:
                raise Refused(f"nested deeper than {MAX_DEPTH} levels; a suite needs about 7",
                              self.peek_event(), "".join(self.trail).lstrip("."))  # type: ignore[arg-type]
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.trail.pop()

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None:
            _Walk().size(node, "")
        return node


class _Walk:
    """Expanded size, expanded depth, cycles and duplicate keys of a node graph, memoised per
    node so that shared (aliased) nodes are visited once: linear in the file, not the expansion."""

    def __init__(self) -> None:
        self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)
        self.active: set[int] = set()
        self.constructor = yaml.constructor.SafeConstructor()

    def size(self, node: Node, path: str) -> tuple[int, int]:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.active:
            raise Refused("an alias refers to a node that contains it (a recursive structure)", node, path)
        self.active.add(key)
        nodes, depth = 1, 0
        for child, child_path in _children(node, path, self.constructor):
            child_nodes, child_depth = self.size(child, child_path)
            nodes, depth = nodes + child_nodes, max(depth, child_depth)
        self.active.discard(key)
        if nodes > MAX_NODES:
            raise Refused(f"expands to more than {MAX_NODES} values through aliases (an alias bomb?)", node, path)
        if depth + 1 > MAX_DEPTH:
            raise Refused(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded", node, path)
        self.sizes[key] = (nodes, depth + 1)
        return self.sizes[key]


def _children(node: Node, path: str, constructor: Any) -> list[tuple[Node, str]]:
    if isinstance(node, SequenceNode):
        return [(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
    if not isinstance(node, MappingNode):
        return []
    out: list[tuple[Node, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, ScalarNode) else "?"
        child_path = f"{path}.{name}" if path else str(name)
        if isinstance(key_node, ScalarNode) and key_node.tag != MERGE_TAG:
            ident = (key_node.tag, _canonical(key_node, constructor))
            if ident in seen:
                raise Refused(f"duplicate key {name!r} (first given on line {seen[ident]}); YAML would keep the "
                              f"last one silently. Remove one of them", key_node, child_path)
            seen[ident] = key_node.start_mark.line + 1
        out += [(key_node, child_path), (value_node, child_path)]
    return out


def _canonical(node: ScalarNode, constructor: Any) -> str:
    """Scalars equal once constructed compare equal (``yes``/``true``, ``0x10``/``16``)."""
    try:
        return repr(constructor.construct_object(node))
    except yaml.YAMLError:
        return str(node.value)


def read_suite_yaml(path: Path) -> Any:
    """The suite's YAML data, or a `BenchError` naming the file, line and key path."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise BenchError(f"{path}: {path.stat().st_size} bytes; a suite file is at most {MAX_BYTES} bytes. "
                             f"Is this the right file?")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: cannot read the suite ({exc}).") from exc
    return parse_yaml_text(text, str(path), f"Fix the suite and run `bench validate {path}` again.")


def parse_yaml_text(text: str, where: str, hint: str) -> Any:
    """YAML ``text`` through the same bounded loader as suite files (``--set`` values too)."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except Refused as exc:
        raise BenchError(f"{where}: {exc.where}: {exc.path}: {exc}. {hint}") from None
    except yaml.YAMLError as exc:
        raise BenchError(f"{where}: not valid YAML ({exc}). {hint}") from None
    finally:
        loader.dispose()
