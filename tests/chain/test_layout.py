"""The chain package imports in one direction only, and never the services or the tasks."""

from __future__ import annotations

import ast
from pathlib import Path

import auditlog.chain

ORDER = [
    "canonical",
    "links",
    "signing",
    "pruning",
    "sealing",
    "breaches",
    "anchors",
    "verification",
    "files",
]
PACKAGE = Path(auditlog.chain.__file__).parent


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (a lazy import inside a function is not counted)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_every_module_of_the_chain_has_its_place_in_the_order() -> None:
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(ORDER)


def test_no_module_imports_one_after_it_nor_the_services_or_tasks() -> None:
    for position, name in enumerate(ORDER):
        imported = _top_level_imports(PACKAGE / f"{name}.py")
        later = {f"auditlog.chain.{after}" for after in ORDER[position + 1 :]}
        assert not imported & later, f"{name} imports {imported & later}"
        assert not imported & {"auditlog.services", "auditlog.tasks", "auditlog.notifications"}


def test_no_module_of_the_chain_is_over_500_lines() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name
