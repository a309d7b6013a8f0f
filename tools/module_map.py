"""The package's module map: files, lines, and who imports whom (inside ``mamlbook``).

    python tools/module_map.py            # the table, one module a line
    python tools/module_map.py --cycles   # exit 1 if the import graph has a cycle

Imports are read from the source (``ast``), not by importing, and include those inside
functions (a lazy import is still a dependency). ``tests/test_layout.py`` uses
`import_graph` and `find_cycle`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mamlbook"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The ``mamlbook`` modules an ``from ... import ...`` statement names."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("mamlbook"):
        return []
    # `from . import checks` names a submodule; `from .x import f` names module x
    return [f"{target}.{alias.name}" for alias in node.names] + [target]


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (edges to modules that exist)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                candidates = _resolve(name, is_package, node)
                # the most specific existing module among the candidates of each alias
                for c in candidates:
                    if c in files and c != name:
                        deps.add(c)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in files and a.name != name)
        # a package's own submodules are not dependencies of the package's parents
        graph[name] = {d for d in deps if not name.startswith(d + ".") or d == name}
    return graph


def find_cycle(graph: dict[str, set[str]], ignore_parents: bool = True) -> list[str] | None:
    """One import cycle as a list of modules, or None.

    ``ignore_parents``: an edge from a module to a package that contains it (``from .
    import checks`` inside ``mamlbook.tasks``, resolved to ``mamlbook``) is how Python
    imports a parent; such edges are dropped.
    """
    edges = {m: {d for d in ds if not (ignore_parents and m.startswith(d + "."))} for m, ds in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="The package's modules: lines, who imports whom.")
    parser.add_argument("--cycles", action="store_true", help="only look for an import cycle (exit 1 on one)")
    args = parser.parse_args(argv)
    graph = import_graph()
    if args.cycles:
        cycle = find_cycle(graph)
        print("import cycle: " + " -> ".join(cycle) if cycle else "no import cycle")
        return 1 if cycle else 0
    importers: dict[str, set[str]] = {m: set() for m in graph}
    for m, deps in graph.items():
        for d in deps:
            importers[d].add(m)
    for m in sorted(graph):
        path = PACKAGE.parent / (m.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE.parent / m.replace(".", "/") / "__init__.py"
        lines = len(path.read_text().splitlines())
        short = lambda names: ", ".join(sorted(n.removeprefix("mamlbook.") for n in names)) or "-"  # noqa: E731
        print(f"{m.removeprefix('mamlbook.') or 'mamlbook':<34}{lines:>5}  imports: {short(graph[m])}"
              f"  | imported by: {short(importers[m])}")
    cycle = find_cycle(graph)
    print("import cycle: " + " -> ".join(cycle) if cycle else "no import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
