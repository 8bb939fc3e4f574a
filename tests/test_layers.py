"""The package's import graph: no cycle, no library -> program import, every module on a floor.

The floors themselves are the import-linter contract in pyproject.toml (``lint-imports``, run by
``make test``); this test computes the graph with ``benchmarks/import_graph.py`` (imports under
``if TYPE_CHECKING:`` left out, lazy imports inside functions counted) so that ``make unit`` catches a
cycle or a library module importing a program too. The imports the contract lists as pending
(``ignore_imports``) are left out here as there, and each must still exist.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _import_graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "benchmarks" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


import_graph = _import_graph_module()
CONTRACTS = {c["id"]: c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]}
PENDING = [tuple(part.strip() for part in line.split("->")) for line in CONTRACTS["floors"].get("ignore_imports", [])]


@pytest.fixture(scope="module")
def graph():
    graph = import_graph.import_graph()
    for importer, imported in PENDING:
        assert imported in graph[importer], (f"pyproject.toml lists the pending import {importer} -> {imported}, "
                                             "which no longer exists: remove it from both contracts' ignore_imports")
        graph[importer].discard(imported)
    return graph


def test_the_package_has_no_import_cycle(graph):
    cycles = [" -> ".join(import_graph.shortest_cycle(graph, c)) for c in import_graph.strongly_connected_components(graph)]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_no_library_module_imports_a_program(graph):
    assert import_graph.library_to_program(graph) == []


def test_the_programs_are_the_contracts_top_floor():
    top = {name.strip() for name in CONTRACTS["floors"]["layers"][0].split("|")}
    assert top == set(import_graph.PROGRAMS)
    assert set(CONTRACTS["package-inits"]["forbidden_modules"]) == set(import_graph.PROGRAMS)


def test_every_module_sits_on_a_floor(graph):
    placed = {name.strip() for layer in CONTRACTS["floors"]["layers"] for name in layer.replace("|", ":").split(":")}
    package_inits = set(CONTRACTS["package-inits"]["source_modules"])  # a program's package: checked by that contract
    unplaced = [m for m in graph if m not in package_inits
                and not any(m == p or m.startswith(p + ".") for p in placed)]
    assert unplaced == [], f"modules on no floor of pyproject.toml's [tool.importlinter] contract: {unplaced}"


def test_the_measurement_finds_a_cycle_and_a_library_to_program_import(tmp_path):
    """The graph script on a tiny package: a lazy cycle and a library -> program import are found, an
    import under TYPE_CHECKING is not an edge."""
    package = tmp_path / "vclip"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from vclip.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from vclip import a\n    return a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vclip import d\n"
                                  "import vclip.evaluate\n")
    (package / "d.py").write_text("from . import c\n")
    (package / "evaluate.py").write_text("")
    graph = import_graph.import_graph(package)
    assert graph["vclip.c"] == {"vclip.evaluate"} and graph["vclip.d"] == {"vclip.c"}
    assert import_graph.strongly_connected_components(graph) == [["vclip.a", "vclip.b"]]
    assert import_graph.library_to_program(graph) == [("vclip.c", "vclip.evaluate")]
