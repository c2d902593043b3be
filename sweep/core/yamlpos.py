"""Load YAML keeping the line and column of every key and value.

PyYAML's composer already knows where each node starts; we build plain Python values from
the node tree and keep a map from key path to position, so validation can name the exact
place of a mistake. Duplicate keys (which PyYAML silently overwrites) are reported.

Grid files come from users who may be careless or hostile, so the loader also refuses what
would make later stages hang, blow up or silently lose intent: explicit tags (on scalars and
collections), nesting deeper than any grid needs, self-referencing aliases, merge keys, and
aliases that multiply the document ("billion laughs"). Plain scalars follow YAML 1.2 where
YAML 1.1 surprises physicists: `1e-3` is a number and `12:30` is text, not 750; a key `on`, `off`,
`yes` or `no` is that word (a value keeps YAML 1.1's reading: `balanced: yes` is true).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from .errors import InputError

_Loader: type[yaml.CSafeLoader] | type[yaml.SafeLoader]
try:  # libyaml is much faster; fall back to the pure-Python loader.
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

#: Where a value sits in a document: its keys (str; int, float or bool for such YAML keys) and list indexes (int).
KeyPath = tuple[str | int | float, ...]
#: 1-based line and column.
Position = tuple[int, int]

#: No grid needs more than a handful of levels; the limit keeps every recursive walk safe.
MAX_DEPTH = 32
TOO_DEEP = f"nesting deeper than {MAX_DEPTH} levels: a grid never needs that many"
#: How many values aliases may add to a document beyond what is written in it.
MAX_ALIAS_VALUES = 100_000

# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as text: 1e-3, 5E+2, .5e3 (no dot needed).
_FLOAT_12_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+")
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"


class YamlProblem(InputError, yaml.YAMLError):
    """Something in the YAML text a grid file may not use, with where it is (1-based); the grid
    validator turns it into a GridError issue."""

    def __init__(self, line: int, column: int, message: str):
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def format_path(path: KeyPath) -> str:
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
    #: path -> (line, column) of the value (of its alias, if one)
    values: dict[KeyPath, Position] = field(default_factory=dict)
    keys: dict[KeyPath, Position] = field(default_factory=dict)  # path -> (line, column) of the mapping key
    duplicates: list[tuple[KeyPath, Position]] = field(default_factory=list)  # (path, (line, column)) of repeated keys
    anchors: dict[KeyPath, Position] = field(default_factory=dict)  # path of an alias -> (line, column) of its anchor

    def where(self, path: KeyPath, prefer_key: bool = False) -> tuple[int, int]:
        """Position of the value at `path` (of its key when `prefer_key` and it has one), walking
        up to the nearest known ancestor; (1, 1) when none is known."""
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

    def anchor_of(self, path: KeyPath) -> tuple[int, int] | None:
        """Where the value at path was written, when it (or a value holding it) is an alias."""
        path = tuple(path)
        while path:
            if path in self.anchors:
                return self.anchors[path]
            path = path[:-1]
        return self.anchors.get(())


def load(text: str) -> Located:
    """Parse one YAML document.

    Raises:
        yaml.YAMLError: syntax errors (with problem_mark), and YamlProblem (with line and
            column) for what grid files may not use: tags, deep nesting, self-referencing
            aliases, merge keys, alias bombs.
    """
    alias_uses = _scan_events(text)
    node = yaml.compose(text, Loader=_Loader)
    located = Located(data=None)
    if node is None:
        return located
    builder = _Builder(located, alias_uses)
    located.data = builder.build(node, ())
    return located


class _Mark(Protocol):
    """Where PyYAML (pure Python or libyaml) says an event or node starts: 0-based."""

    @property
    def line(self) -> int: ...

    @property
    def column(self) -> int: ...


def _mark_of(mark: _Mark | None) -> Position:
    assert mark is not None  # the parser marks every event and node it makes
    return (mark.line + 1, mark.column + 1)


def _scan_events(text: str) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Refuse explicit tags and deep nesting from the event stream, before any node is built
    (the composer recurses), and return, per anchor position, where its aliases are used."""
    anchors: dict[str, tuple[int, int]] = {}
    uses: dict[tuple[int, int], list[tuple[int, int]]] = {}
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            if event.tag is not None:
                line, col = _mark_of(event.start_mark)
                tag = event.tag.replace("tag:yaml.org,2002:", "!!")
                raise YamlProblem(line, col, f"YAML tags such as {tag} are not allowed in grid files: "
                                  "write the plain value (a tag is either ignored or runs code elsewhere)")
            if event.anchor is not None:
                anchors[event.anchor] = _mark_of(event.start_mark)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line, col = _mark_of(event.start_mark)
                raise YamlProblem(line, col, f"{TOO_DEEP} (a runaway indentation or bracket?)")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent) and event.anchor in anchors:
            uses.setdefault(anchors[event.anchor], []).append(_mark_of(event.start_mark))
    return uses


class _Builder:
    """Plain values from nodes. A collection reached again through an alias is built once and
    shared (no exponential 'billion laughs' blow-up in memory), but what aliases add is counted
    and bounded, since later stages walk the values as if expanded."""

    def __init__(self, located: Located, alias_uses: dict[Position, list[Position]]):
        self.located = located
        self.alias_uses = {k: list(v) for k, v in alias_uses.items()}
        self.constructor = yaml.SafeLoader("")
        self.built: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}  # values in a built node, expanded
        self.visited: set[int] = set()
        self.building: set[int] = set()
        self.added = 0  # values added by aliases

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        mark = _mark_of(node.start_mark)
        self.located.values[path] = mark
        if id(node) in self.visited:  # an alias: say where it is used, and where its anchor is
            queue = self.alias_uses.get(mark)
            if queue:
                self.located.values[path] = queue.pop(0)
            self.located.anchors[path] = mark
            if id(node) in self.building:
                line, col = self.located.values[path]
                raise YamlProblem(line, col, "a YAML alias refers to a value that contains it")
            self.added += self.sizes.get(id(node), 1)
            if self.added > MAX_ALIAS_VALUES:
                line, col = self.located.values[path]
                raise YamlProblem(line, col, f"YAML aliases expand this file by more than {MAX_ALIAS_VALUES:,} "
                                  "values (an alias bomb?): write the values out, or use fewer aliases")
            if id(node) in self.built:
                return self.built[id(node)]
        self.visited.add(id(node))
        self.building.add(id(node))
        try:
            value = self._build_node(node, path)
        finally:
            self.building.discard(id(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            self.built[id(node)] = value
        return value

    def _size(self, node: yaml.Node) -> int:
        return self.sizes.get(id(node), 1)

    def _build_node(self, node: yaml.Node, path: KeyPath) -> Any:
        if isinstance(node, yaml.MappingNode):
            result: dict[str | int | float, Any] = {}
            size = 1
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    line, col = _mark_of(key_node.start_mark)
                    raise YamlProblem(line, col, "YAML merge keys ('<<') are not supported in grid files: "
                                      "write the keys out")
                if not isinstance(key_node, yaml.ScalarNode):
                    line, col = _mark_of(key_node.start_mark)
                    raise YamlProblem(line, col, "a key must be a plain name, not a list or mapping")
                key = self._scalar(key_node)
                if isinstance(key, bool) and key_node.value.lower() not in ("true", "false"):
                    key = key_node.value  # YAML 1.2: a key `on` (notify.on), `yes` or `off` is that word
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    key = str(key)
                child = path + (key,)
                if key in result:
                    self.located.duplicates.append((child, _mark_of(key_node.start_mark)))
                self.located.keys[child] = _mark_of(key_node.start_mark)
                result[key] = self.build(value_node, child)
                size += 1 + self._size(value_node)
            self.sizes[id(node)] = size
            return result
        if isinstance(node, yaml.SequenceNode):
            items = []
            size = 1
            for i, item in enumerate(node.value):
                items.append(self.build(item, path + (i,)))
                size += self._size(item)
            self.sizes[id(node)] = size
            return items
        assert isinstance(node, yaml.ScalarNode)  # the one other kind of node
        return self._scalar(node)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        plain = not node.style  # None (pure-Python loader) or "" (libyaml) for a plain scalar
        if plain and node.tag == _STR_TAG and _FLOAT_12_RE.fullmatch(node.value):
            return float(node.value)  # YAML 1.2: 1e-3 is a number
        if plain and node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in node.value:
            return node.value  # YAML 1.1 base 60 (12:30 = 750): nobody means that; keep the text
        return self.constructor.construct_object(node, deep=True)
