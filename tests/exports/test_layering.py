"""The exports sit above the event core and the directory: nothing below imports them, and
they import each other one way only (a task enqueued from inside a function is the one
exception, because the task itself calls the service)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import grimp
import pytest

# (importer, imported): allowed only as an import inside a function.
LAZY_TASK_ENQUEUES = {("exports.services", "exports.tasks")}
API_LAYERS = ("auditlog.api", "directory.api", "rest_framework")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "auditlog",
        "directory",
        "exports",
        "notifications",
        "project",
        include_external_packages=True,
    )


def test_nothing_below_exports_imports_them(graph) -> None:
    for lower in ("auditlog", "directory", "notifications"):
        chain = graph.find_shortest_chain(importer=lower, imported="exports", as_packages=True)
        assert chain is None, chain


def test_exports_import_each_other_one_way_except_a_lazy_task_enqueue(graph) -> None:
    for importer, imported in LAZY_TASK_ENQUEUES:
        assert _only_inside_functions(importer, imported), (importer, imported)
        graph.remove_import(importer=importer, imported=imported)
    circles = []
    for module in sorted(m for m in graph.modules if m.startswith("exports")):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                circles.append((module, *back))
    assert circles == []


@pytest.mark.parametrize(
    "module", ["exports.services", "exports.writers", "exports.tasks", "exports.models"]
)
@pytest.mark.parametrize("layer", API_LAYERS)
def test_building_an_export_depends_on_no_api_view_or_serializer(graph, module, layer) -> None:
    """Editing the list viewsets or serializers cannot change what an export holds."""
    chain = graph.find_shortest_chain(importer=module, imported=layer, as_packages=True)
    assert chain is None, chain


def _only_inside_functions(importer: str, imported: str) -> bool:
    spec = importlib.util.find_spec(importer)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    top_level = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom | ast.Import) and _names(node, imported)
    ]
    anywhere = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom | ast.Import) and _names(node, imported)
    ]
    return bool(anywhere) and not top_level


def _names(node: ast.Import | ast.ImportFrom, module: str) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == module
    return any(alias.name == module for alias in node.names)
