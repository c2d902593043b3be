"""Load YAML keeping the line and column of every key and value.

PyYAML's composer already knows where each node starts; we build plain Python values from
the node tree and keep a map from key path to position, so validation can name the exact
place of a mistake. Duplicate keys (which PyYAML silently overwrites) are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # libyaml is much faster; fall back to the pure-Python loader.
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

Path = tuple  # tuple[str | int, ...]


def format_path(path: Path) -> str:
    """("axes", "optimizer", 2) -> "axes.optimizer[2]"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Located:
    """A parsed YAML document plus where each value and key sits (1-based line, column)."""

    data: Any
    values: dict = field(default_factory=dict)  # path -> (line, column) of the value
    keys: dict = field(default_factory=dict)  # path -> (line, column) of the mapping key
    duplicates: list = field(default_factory=list)  # (path, (line, column)) of repeated keys

    def where(self, path: Path, prefer_key: bool = False) -> tuple[int, int]:
        """Position of path, walking up to the nearest known ancestor."""
        path = tuple(path)
        while True:
            if prefer_key and path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            if path in self.keys:
                return self.keys[path]
            if not path:
                return (1, 1)
            path = path[:-1]


def load(text: str) -> Located:
    """Parse one YAML document; raises yaml.YAMLError (with problem_mark) on syntax errors."""
    node = yaml.compose(text, Loader=_Loader)
    located = Located(data=None)
    if node is None:
        return located
    constructor = yaml.SafeLoader("")
    located.data = _build(node, (), located, constructor, {}, set())
    return located


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, path: Path, located: Located, constructor: yaml.SafeLoader, built: dict,
           building: set) -> Any:
    """Plain values from nodes. An alias is built once (no exponential 'billion laughs' blow-up)
    and an alias that contains itself is refused."""
    located.values[path] = _mark(node)
    if id(node) in built:
        return built[id(node)]
    if id(node) in building:
        raise yaml.YAMLError(f"line {_mark(node)[0]}: a YAML alias refers to itself")
    building.add(id(node))
    try:
        value = _build_node(node, path, located, constructor, built, building)
    finally:
        building.discard(id(node))
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        built[id(node)] = value
    return value


def _build_node(node: yaml.Node, path: Path, located: Located, constructor: yaml.SafeLoader, built: dict,
                building: set) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.YAMLError("YAML merge keys ('<<') are not supported in grid files")
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                key = str(key)
            child = path + (key,)
            if key in result:
                located.duplicates.append((child, _mark(key_node)))
            located.keys[child] = _mark(key_node)
            result[key] = _build(value_node, child, located, constructor, built, building)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), located, constructor, built, building)
                for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)
