"""The package's layout, read from its source with `ast` (nothing is imported):

* no import circle between sweep's modules, counting every import: module level, inside
  functions, and under ``if TYPE_CHECKING``;
* the stages depend one way (STAGE_DEPENDS): the core on nothing outside it, submit and collect
  on the records below them and never on each other, the job on physics, only the CLI on all;
* TensorFlow, Keras and the HTCondor bindings are imported at module level only in job/,
  submit/ and physics/; never in the core, where pandas too is imported only when called;
* every public function, class and method has a docstring (but a method whose base class or
  Protocol in sweep documents it);
* no module uses a private name of the core that it did not define.

The checker is tried first on a small package with one planted violation of each kind, so a
checker that finds nothing cannot pass for a clean layout.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

#: Which top-level parts of sweep each part may import ("sweep" is the root package: the version,
#: and the Python API's names, imported on first use). A part is a subpackage (core, records, …)
#: or a top-level module.
STAGE_DEPENDS = {
    "sweep": {"core", "api"},
    "fsutil": {"sweep", "core"},  # core.errors: LinkedPathError is a SweepError (the CLI prints it)
    "core": {"sweep"},
    "records": {"sweep", "core", "fsutil"},
    # physics reads a model's training record (model.json) and writes evaluation.json, and the job
    # writes run.json, metrics.json, progress.json, step.json, model.json and its checkpoint's
    # state: each record is written by its one module of sweep.records (standard library only, so
    # the job can import it before it knows numpy is there; tests/test_records.py checks it)
    "physics": {"sweep", "core", "fsutil", "records"},
    "job": {"sweep", "core", "fsutil", "physics", "records"},
    "submit": {"sweep", "core", "fsutil", "records"},
    "collect": {"sweep", "core", "fsutil", "records"},
    "search": {"sweep", "core", "fsutil", "records", "submit", "collect"},
    "chain": {"sweep", "core", "fsutil", "records", "physics", "submit", "collect", "search"},
    # the Python API (sweep.load, sweep.submit): above the stages, below the CLI; it never imports
    # the root package (whose lazy names import it)
    "api": {"core", "fsutil", "records", "physics", "submit", "collect", "search", "chain"},
    "cli": {"sweep", "core", "fsutil", "records", "physics", "job", "submit", "collect", "search", "chain", "api"},
    # the reference consumer of an exported model: deploy.json's reader and the numpy-only candidate
    # finder and windows of physics.datasets (tests/test_export.py runs it where TensorFlow cannot load)
    "deploy": {"sweep", "core", "fsutil", "records", "physics"},
}
HEAVY = {"tensorflow", "keras", "htcondor", "htcondor2", "classad2"}  # module level: only in HEAVY_ALLOWED
HEAVY_ALLOWED = {"job", "submit", "physics"}
CORE_LAZY = {"pandas"}  # the core imports these only inside functions


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. "sweep.core.grid"
    target: str  # the imported module (sweep.*) or top-level distribution name (third party)
    line: int
    module_level: bool  # runs when the module is imported (not inside a function or TYPE_CHECKING)


def modules(package_dir: Path, package: str) -> dict[str, Path]:
    """module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([package, *parts])] = path
    return out


def _from_module(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` statement of `source` imports from, made absolute."""
    if node.level:
        base = source.split(".") if is_package else source.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module or ""


def _resolve(source: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = _from_module(source, is_package, node)
    # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself
    return [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(source: str, path: Path, known: set[str]) -> list[Import]:
    """Every import statement of one module, resolved, with whether it runs at import time."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            level = module_level
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                level = False
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_stmt(stmt, False)
                for stmt in child.orelse:
                    visit_stmt(stmt, module_level)
                continue
            visit_stmt(child, level)

    def visit_stmt(child: ast.AST, level: bool) -> None:
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            for target in _resolve(source, is_package, child, known):
                found.append(Import(source, target, child.lineno, level))
        visit(child, level)

    visit(tree, True)
    return found


def part_of(module: str) -> str:
    """The top-level part a module belongs to: "sweep.core.grid" -> "core", "sweep" -> "sweep"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sweep"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a list of modules, first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in graph}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        color[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if color.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if color.get(nxt) == WHITE:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = BLACK
        return None

    for start in sorted(graph):
        if color[start] == WHITE:
            found = dfs(start)
            if found:
                return found
    return None


def violations(package_dir: Path, package: str = "sweep") -> tuple[list[str], dict[str, set[str]]]:
    """(every layout violation as a message, the module import graph)."""
    mods = modules(package_dir, package)
    known = set(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    problems = []
    for source, path in mods.items():
        for imp in imports_of(source, path, known):
            top = imp.target.split(".")[0]
            where = f"{path.relative_to(package_dir.parent)}:{imp.line}"
            src_part = part_of(source)
            if top == package:
                target = imp.target if imp.target in known else next(
                    (m for m in sorted(known, key=len, reverse=True) if imp.target.startswith(m + ".")), package)
                if target != source:
                    graph[source].add(target)
                dst_part = part_of(target)
                if dst_part != src_part and dst_part not in STAGE_DEPENDS.get(src_part, set()):
                    problems.append(f"{where}: {src_part} imports {target} ({dst_part} is not below {src_part})")
                continue
            if src_part == "core" and top in HEAVY:
                problems.append(f"{where}: the core imports {imp.target}")
            elif src_part == "core" and top in CORE_LAZY and imp.module_level:
                problems.append(f"{where}: the core imports {imp.target} at module level")
            elif top in HEAVY and imp.module_level and src_part not in HEAVY_ALLOWED:
                problems.append(f"{where}: {imp.target} imported at module level outside "
                                f"{', '.join(sorted(HEAVY_ALLOWED))}/")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("import circle: " + " -> ".join(cycle))
    return problems, graph


PLANTED = {
    "__init__.py": '__version__ = "0"\n',
    "core/__init__.py": "",
    "core/grid.py": "from . import expand\nfrom ..records import manifest\n",
    "core/expand.py": "def count():\n    from .grid import x\n",
    "core/ranking.py": "import pandas as pd\n",
    "records/__init__.py": "",
    "records/manifest.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import htcondor2\n",
    "collect/__init__.py": "",
    "collect/report.py": "import tensorflow\nfrom ..submit import status\n",
    "submit/__init__.py": "",
    "submit/status.py": "import htcondor2\n\ndef f():\n    import tensorflow\n",
}


def test_the_checker_finds_each_planted_violation(tmp_path):
    pkg = tmp_path / "sweep"
    for name, text in PLANTED.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    problems, graph = violations(pkg)
    text = "\n".join(problems)
    assert "core imports sweep.records.manifest" in text  # core reaching outside core
    assert "import circle: sweep.core.expand -> sweep.core.grid -> sweep.core.expand" in text  # via a function
    assert "the core imports pandas at module level" in text
    assert "sweep/collect/report.py:1: tensorflow imported at module level outside" in text
    assert "collect imports sweep.submit.status" in text  # collect and submit never import each other
    # allowed: htcondor2 at module level in submit/, tensorflow inside a function, TYPE_CHECKING imports
    assert "submit/status.py" not in text and "records/manifest.py" not in text
    assert len(problems) == 5, problems
    assert graph["sweep.core.grid"] == {"sweep.core.expand", "sweep.records.manifest"}


def test_sweep_reads_like_the_pipeline():
    problems, graph = violations(REPO / "sweep")
    assert not problems, "\n".join(problems)
    # every part of the package is in the table (a new stage must say what it may import)
    parts = {part_of(m) for m in graph}
    assert parts <= set(STAGE_DEPENDS), parts - set(STAGE_DEPENDS)
    # the layout this test was written for: no loose stage modules at the top level
    top_level = sorted(m for m in graph if m.count(".") == 1 and not (REPO / "sweep" / m.split(".")[1]).is_dir())
    assert top_level == ["sweep.api", "sweep.cli", "sweep.fsutil"], top_level


def test_the_root_package_reads_the_version_and_imports_the_api_only_when_asked():
    path = REPO / "sweep" / "__init__.py"
    found = [i for i in imports_of("sweep", path, set(modules(REPO / "sweep", "sweep")))
             if i.target.split(".")[0] == "sweep"]
    assert {(i.target, i.module_level) for i in found} == {("sweep.core.version", True), ("sweep.api", False)}
    # and no module of sweep imports the root (its lazy names import sweep.api: that would be a circle)
    _, graph = violations(REPO / "sweep")
    assert not [m for m, targets in graph.items() if "sweep" in targets]


# ------------------------------------------------------------------ every public name says what it does

def _parsed(mods: dict[str, Path]) -> dict[str, ast.Module]:
    return {m: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for m, p in mods.items()}


def _bindings(module: str, tree: ast.Module, is_package: bool, known: set[str]) -> dict[str, tuple[str, str | None]]:
    """What each module-level name of `module` stands for: (module, class or other name) for a
    class defined or imported here, (module, None) for a module of the package."""
    out: dict[str, tuple[str, str | None]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = (module, node.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = (alias.name, None)
                else:  # `import a.b.c` binds a; a.b.c.X is read through _dotted
                    out[alias.name.split(".")[0]] = (alias.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom):
            base = _from_module(module, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out[alias.asname or alias.name] = (sub, None) if sub in known else (base, alias.name)
    return out


def _find_class(trees: dict[str, ast.Module], packages: set[str], module: str, name: str,
                depth: int = 0) -> tuple[str, ast.ClassDef] | None:
    """The class `name` of `module` (followed through re-exports), or None outside the package."""
    tree = trees.get(module)
    if tree is None or depth > 10:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
    bound = _bindings(module, tree, module in packages, set(trees)).get(name)
    if bound and bound[1] is not None and bound[0] != module:
        return _find_class(trees, packages, bound[0], bound[1], depth + 1)
    return None


def _base_classes(trees: dict[str, ast.Module], packages: set[str], module: str,
                  cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
    """The bases of `cls` (of `module`) that are classes of the package: named in the same module,
    imported (`from .base import Backend`), or reached through an imported module (`base.Backend`)."""
    bindings = _bindings(module, trees[module], module in packages, set(trees))
    found = []
    for expr in cls.bases:
        dotted = _dotted(expr)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head not in bindings:
            continue
        target_module, target = bindings[head]
        if target is None:  # a module: the class is the last part of the rest
            path, _, target = rest.rpartition(".")
            target_module = ".".join(filter(None, [target_module, path]))
        elif rest:
            continue
        hit = _find_class(trees, packages, target_module, target) if target else None
        if hit:
            found.append(hit)
    return found


def _documented_in_a_base(trees: dict[str, ast.Module], packages: set[str], module: str, cls: ast.ClassDef,
                          method: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a base class of the package (at any depth) documents a method of that name."""
    for base_module, base in _base_classes(trees, packages, module, cls):
        key = f"{base_module}.{base.name}"
        if key in seen:
            continue
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == method and ast.get_docstring(n)
               for n in base.body):
            return True
        if _documented_in_a_base(trees, packages, base_module, base, method, seen | {key}):
            return True
    return False


def undocumented(package_dir: Path, package: str = "sweep") -> dict[str, list[str]]:
    """file -> its public functions, classes and methods without a docstring, for every module of
    the package. Public: no leading underscore (the function, the class and the method).

    The one exception: a method that implements a method of the same name which a base class or
    Protocol of the package documents (found through the class's bases, named in the same module
    or imported): the base's docstring says what it does. Properties, static and class methods
    are methods like the others."""
    mods = modules(package_dir, package)
    trees = _parsed(mods)
    packages = {m for m, p in mods.items() if p.name == "__init__.py"}
    missing: dict[str, list[str]] = {}
    for module, tree in trees.items():
        gaps = []
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name.startswith("_"):
                continue
            if not ast.get_docstring(node):
                gaps.append(node.name)
            if isinstance(node, ast.ClassDef):
                # the one exception, and no other (no name, module or decorator is exempt): an
                # implementation of a method a base class or Protocol of the package documents
                gaps += [f"{node.name}.{sub.name}" for sub in node.body
                         if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_")
                         and not ast.get_docstring(sub)
                         and not _documented_in_a_base(trees, packages, module, node, sub.name)]
        if gaps:
            missing[str(mods[module].relative_to(package_dir.parent))] = gaps
    return missing


PLANTED_DOCS = {
    "__init__.py": "",
    "base.py": ('class Base:\n    """B."""\n\n    def run(self):\n        """Runs."""\n\n    def stop(self):\n'
                '        pass\n\n\nclass Mid(Base):\n    """M."""\n'),
    "impl.py": ("from typing import Protocol\n\nfrom . import base\nfrom .base import Mid\n\n\n"
                'class Proto(Protocol):\n    """P."""\n\n    def look(self):\n        """Looks."""\n\n\n'
                'class A(base.Base):\n    """A."""\n\n    def run(self):\n        pass\n\n'  # documented in Base
                "    def stop(self):\n        pass\n\n"  # Base.stop has no docstring either
                "    def extra(self):\n        pass\n\n"  # in no base
                "    @property\n    def size(self):\n        return 1\n\n"  # a property too
                "    def _private(self):\n        pass\n\n\n"
                'class B(Mid, Proto):\n    """B."""\n\n    def run(self):\n        pass\n\n'  # Base, through Mid
                "    def look(self):\n        pass\n\n\n"  # the Protocol's
                "class C:\n    def look(self):\n        pass\n\n\n"  # the same name, no base: not exempt
                "def f():\n    pass\n\n\ndef _g():\n    pass\n"),
}


def test_the_docstring_checker_finds_each_planted_gap(tmp_path):
    pkg = tmp_path / "sweep"
    for name, text in PLANTED_DOCS.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    assert undocumented(pkg) == {"sweep/base.py": ["Base.stop"],
                                 "sweep/impl.py": ["A.stop", "A.extra", "A.size", "C", "C.look", "f"]}


def test_every_public_function_class_and_method_says_what_it_does():
    """Every module of sweep: public functions, classes and methods have a docstring (what they
    take, return and raise where the name and signature do not say it), but for a method that
    implements one a base class or Protocol of sweep documents."""
    missing = undocumented(REPO / "sweep")
    assert not missing, "\n".join(f"{path}: {', '.join(names)}" for path, names in sorted(missing.items()))


# ------------------------------------------------------------------ private names stay at home

PRIVATE_SCOPE = "core"  # the part whose private names no other module may use


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _dotted(node: ast.expr) -> str | None:
    """"a.b.c" for the expression a.b.c; None when it is not a chain of names."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def private_uses(files: dict[str, Path], known: set[str], package: str = "sweep",
                 scope: str = PRIVATE_SCOPE) -> list[str]:
    """Every use of a private name (one leading underscore) of a module of `scope` outside the
    module that defines it, in `files` (module name -> file): imported (`from ..core.grid import
    _x`, at any level), reached through the module (`grid._x` after `from . import grid`,
    `sweep.core.grid._x` after `import sweep.core.grid`), or named in a string
    ("sweep.core.grid._x", as monkeypatch.setattr takes it)."""
    def in_scope(module: str) -> bool:
        return module.split(".")[0] == package and part_of(module) == scope

    problems = []
    for source, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"

        def where(node: ast.AST, path: Path = path) -> str:
            return f"{path}:{node.lineno}"

        bound: dict[str, str] = {}  # local name -> the module of scope it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and in_scope(alias.name):
                        bound[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                base = _from_module(source, is_package, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in known and in_scope(sub):
                        bound[alias.asname or alias.name] = sub
                    elif _is_private(alias.name) and in_scope(base) and base != source:
                        problems.append(f"{where(node)}: imports {alias.name} from {base}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                owner = _dotted(node.value)
                if owner is None:
                    continue
                head, _, rest = owner.partition(".")
                module = bound.get(head, head) + (f".{rest}" if rest else "")
                if module in known and in_scope(module) and module != source:
                    problems.append(f"{where(node)}: uses {module}.{node.attr}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                module, _, name = node.value.rpartition(".")
                if _is_private(name) and module in known and in_scope(module) and module != source:
                    problems.append(f"{where(node)}: names {node.value}")
    return problems


def _scanned(repo: Path) -> tuple[dict[str, Path], set[str]]:
    """(every Python file of the package, its tests, benchmarks and tools by module name, the
    package's own module names)."""
    package = modules(repo / "sweep", "sweep")
    files = dict(package)
    for folder in ("tests", "bench", "tools"):
        files.update(modules(repo / folder, folder) if (repo / folder).is_dir() else {})
    return files, set(package)


PLANTED_PRIVATE = {
    "sweep/__init__.py": "",
    "sweep/core/__init__.py": "",
    "sweep/core/grid.py": "def _x():\n    pass\n\n\n_y = _x()\n",  # its own: fine
    "sweep/core/pipeline.py": "from .grid import _x, __all__\nfrom . import grid\nz = grid._y\n",
    "sweep/core/schema.py": "from . import grid as g\n\n\ndef h():\n    return g._x\n",
    "sweep/chain/__init__.py": "",
    "sweep/chain/stages.py": "def f():\n    from ..core.grid import _x\n",
    "sweep/chain/run.py": "import sweep.core.grid\nimport sweep.core.grid as cg\nsweep.core.grid._x()\ncg._y\n"
                          "from .stages import _private\n",  # outside the core: another rule's business
    "tests/test_x.py": "from sweep.core.grid import _x\n\n\ndef test(monkeypatch):\n"
                       "    monkeypatch.setattr('sweep.core.grid._y', 1)\n",
}


def test_the_private_name_checker_finds_each_planted_use(tmp_path):
    for name, text in PLANTED_PRIVATE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    files, known = _scanned(tmp_path)
    found = sorted(p.replace(str(tmp_path) + "/", "") for p in private_uses(files, known))
    assert found == sorted([
        "sweep/core/pipeline.py:1: imports _x from sweep.core.grid",
        "sweep/core/pipeline.py:3: uses sweep.core.grid._y",
        "sweep/core/schema.py:5: uses sweep.core.grid._x",
        "sweep/chain/stages.py:2: imports _x from sweep.core.grid",
        "sweep/chain/run.py:3: uses sweep.core.grid._x",
        "sweep/chain/run.py:4: uses sweep.core.grid._y",
        "tests/test_x.py:1: imports _x from sweep.core.grid",
        "tests/test_x.py:5: names sweep.core.grid._y",
    ]), found


def test_no_module_uses_a_private_name_of_the_core_it_did_not_define():
    """What another module needs from a core module is public (no leading underscore)."""
    files, known = _scanned(REPO)
    problems = private_uses(files, known)
    assert not problems, "\n".join(problems)
