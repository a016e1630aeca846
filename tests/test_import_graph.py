"""chalicelib's modules import one another without a circle.

The graph is read from the source with `ast` (nothing is imported): every import of a module of
the package, at the top of a file or inside a function, except those under `if TYPE_CHECKING:`
(type hints, never run). An import moved into a function only hides a circle from the loader:
it still counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Circles known and expected to disappear, each as the set of its modules. The test fails
# when one is found that is not listed, and when one listed is gone: then delete its entry.
KNOWN_CIRCLES: frozenset[frozenset[str]] = frozenset()


def modules(root: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST) -> Iterator[tuple[str, str | None]]:
    """(module, name) of every import that runs: `import m` gives (m, None)."""
    pending = list(ast.iter_child_nodes(tree))
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from ((node.module, alias.name) for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))


def imports(tree: ast.AST, known: dict[str, Path]) -> set[str]:
    """The modules of `known` that `tree` imports when it runs."""
    found: set[str] = set()
    for module, name in runtime_imports(tree):
        if name is not None and f"{module}.{name}" in known:
            found.add(f"{module}.{name}")
        elif module in known:
            found.add(module)
    return found


def graph(root: Path, package: str) -> dict[str, set[str]]:
    known = modules(root, package)
    return {
        name: imports(ast.parse(path.read_text()), known) - {name} for name, path in known.items()
    }


def circles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(edges[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = {stack.pop()}
            while module not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.add(frozenset(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_chalicelib_has_no_import_circle() -> None:
    edges = graph(ROOT, "chalicelib")
    assert "chalicelib.messaging" in edges["chalicelib.sweep"]  # the graph is read at all
    assert circles(edges) == KNOWN_CIRCLES


def test_the_graph_sees_function_level_imports_and_skips_type_hints(tmp_path: Path) -> None:
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def late():\n    from pkg.c import thing\n",
        "c.py": "import pkg.a\n",
        # Circles among type hints only: d <-> e and e <-> f.
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
        "e.py": "from pkg.d import name\nimport pkg.f\n",
        "f.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.e\n",
    }
    (tmp_path / "pkg").mkdir()
    for name, text in files.items():
        (tmp_path / "pkg" / name).write_text(text)
    edges = graph(tmp_path, "pkg")
    assert edges["pkg.e"] == {"pkg.d", "pkg.f"}
    assert edges["pkg.d"] == edges["pkg.f"] == set()
    assert circles(edges) == {frozenset({"pkg.a", "pkg.b", "pkg.c"})}
