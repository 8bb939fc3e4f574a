"""The import graph of the ``vclip`` package: its cycles and its library -> program imports.

    python benchmarks/import_graph.py            # one line of numbers, then each cycle and each bad import
    python benchmarks/import_graph.py --edges    # every edge, ``importer -> imported``
    python benchmarks/import_graph.py --package OTHER/vclip   # another checkout's package (before/after)

Every ``import`` and ``from ... import`` of a ``vclip`` module counts, at module level or inside a
function (a lazy import is still a dependency); an import under ``if TYPE_CHECKING:`` does not (it
never runs). ``from vclip.x import name`` is an edge to ``vclip.x.name`` when that is a module, else
to ``vclip.x``. A package's ``__init__`` is the package's own node. The programs are the modules run
as ``python -m``; ``tests/test_layers.py`` asserts zero cycles and zero library -> program imports,
and ``lint-imports`` (the contract in pyproject.toml) checks the floors.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vclip"

# The modules a user runs (python -m ...): nothing in the library may import them.
PROGRAMS = frozenset({
    "vclip.__main__",
    "vclip.pretrain",
    "vclip.finetune",
    "vclip.evaluate",
    "vclip.extract",
    "vclip.data.__main__",
    "vclip.synthetic.__main__",
    "vclip.notebooks.__main__",
    "vclip.hub",
})


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package's ``__init__`` is the package)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Yield the import nodes of a tree, leaving out the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """importer -> the package modules it imports (self-imports left out)."""
    modules = module_names(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:  # relative import
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); only the components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first module (breadth-first), for the report."""
    members = set(component)
    start = component[0]
    parents = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return component


def library_to_program(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The imports from a library module (not a program) to a program."""
    return sorted((importer, imported) for importer, targets in graph.items() if importer not in PROGRAMS
                  for imported in targets if imported in PROGRAMS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", action="store_true", help="print every edge")
    parser.add_argument("--package", type=Path, default=PACKAGE, help="the package folder (default: this checkout's vclip/)")
    args = parser.parse_args(argv)
    graph = import_graph(args.package)
    if args.edges:
        for importer in sorted(graph):
            for imported in sorted(graph[importer]):
                print(f"{importer} -> {imported}")
        return 0
    components = strongly_connected_components(graph)
    bad = library_to_program(graph)
    edges = sum(len(targets) for targets in graph.values())
    print(f"{len(graph)} modules, {edges} imports, {len(components)} cyclic groups "
          f"({sum(len(c) for c in components)} modules), {len(bad)} library -> program imports")
    for component in components:
        print("cycle group:", ", ".join(component))
        print("  e.g.", " -> ".join(shortest_cycle(graph, component)))
    for importer, imported in bad:
        print(f"library -> program: {importer} -> {imported}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
