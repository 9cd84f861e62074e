"""The package's import structure: every module imports on its own, and no two modules import each other.

The graph counts every import of a legrep or legrep_sim module in a module's source (top level and
inside functions alike: a lazy import that closes a cycle is still a cycle, it only hides it),
except imports under ``if TYPE_CHECKING:`` (they never run). A module's import of a package is an
edge to the package's ``__init__``; a package's ``__init__`` importing its own submodules is an edge
too, but a submodule is not taken to import its parent package (Python runs the parent first, but
that is not a dependency of the code).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"legrep": ROOT / "host", "legrep_sim": ROOT / "firmware_sim"}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for name, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([name, *parts])] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


_STATEMENT_LIKE = (ast.stmt, ast.excepthandler, ast.match_case)
"""The nodes whose bodies hold statements (the walk skips expressions: nine tenths of the nodes)."""


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The legrep/legrep_sim modules ``module`` imports (resolved to names in ``known``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _STATEMENT_LIKE):
                continue  # an import is a statement: none lies inside an expression
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    target = resolve(alias.name)
                    if target:
                        found.add(target)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    stem = ".".join(base + ([child.module] if child.module else []))
                else:
                    stem = child.module or ""
                for alias in child.names:
                    target = resolve(f"{stem}.{alias.name}") if f"{stem}.{alias.name}" in known else resolve(stem)
                    if target:
                        found.add(target)
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_import_graph_has_no_cycles() -> None:
    modules = _modules()
    known = set(modules)
    graph = {m: _imports(m, p, known) for m, p in modules.items()}
    assert graph["legrep.live_core"], "the graph found no imports at all: the parser is broken"
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_record_vocabulary_is_a_leaf() -> None:
    modules = _modules()
    deps = _imports("legrep.records", modules["legrep.records"], set(modules))
    assert deps <= {"legrep.errors", "legrep.model"}, deps


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_module_imports_in_a_fresh_interpreter(package: str) -> None:
    names = sorted(m for m in _modules() if m.split(".")[0] == package and not m.endswith("__main__"))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_diagnostics_are_a_leaf() -> None:
    """Every stage returns its diagnostics value: the module holding them imports no stage."""
    modules = _modules()
    assert _imports("legrep.diagnostics", modules["legrep.diagnostics"], set(modules)) == {"legrep.errors"}
