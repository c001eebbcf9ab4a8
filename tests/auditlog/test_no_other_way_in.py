"""No code of the project writes event rows except the recording service (and the bulk writer
it uses): a scan of every module's syntax tree for the ways an Event row can be created."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Everything of the project that runs, tests and migrations aside (tests may write rows
# directly as fixtures; migrations describe the schema).
SKIPPED_DIRS = {"tests", "migrations", "node_modules", "static", "templates"}
# The recording service, and the writer of batches only the service calls.
ALLOWED = {Path("auditlog/services.py"), Path("auditlog/bulk.py")}
# The second, deliberate door: on PostgreSQL the capture triggers write the events of changes
# made past the application (update(), bulk operations, raw SQL, psql), so that no change
# escapes the record. Only the generated trigger SQL may do so, once: one INSERT statement
# in auditlog/triggers.py, and no other kind of write there.
TRIGGER_MODULE = Path("auditlog/triggers.py")
WRITING_METHODS = {"create", "bulk_create", "get_or_create", "update_or_create"}
BULK_WRITERS = {"write_events", "_copy_batch", "_bulk_create_batch"}
RAW_INSERT = re.compile(r"\b(INSERT\s+INTO|COPY)\s+\W?auditlog_event\b", re.IGNORECASE)


def project_modules() -> list[Path]:
    modules = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0].startswith(".") or SKIPPED_DIRS & set(relative.parts):
            continue
        modules.append(relative)
    return modules


def _names(node: ast.AST) -> list[str]:
    """The dotted parts of ``a.b.c`` (``["a", "b", "c"]``), or ``[]`` for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return []


def _callee(call: ast.Call) -> list[str]:
    return _names(call.func)


def ways_in(source: str) -> list[str]:
    """Every place in ``source`` that creates an event row, as ``line: what``."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and RAW_INSERT.search(node.value):  # type: ignore[attr-defined]
            found.append(f"{node.lineno}: SQL writing auditlog_event")
        if not isinstance(node, ast.Call):
            continue
        callee = _callee(node)
        if not callee:
            # Event(...).save(): a call of .save on a built event.
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "save"
                and isinstance(func.value, ast.Call)
                and _callee(func.value)[-1:] in (["Event"], ["build_event"])
            ):
                found.append(f"{node.lineno}: Event(...).save()")
            continue
        writes = callee[0] == "Event" and callee[-1] in WRITING_METHODS | {"new", "from_http"}
        if writes or callee[-1] in BULK_WRITERS:
            found.append(f"{node.lineno}: {'.'.join(callee)}()")
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            found.extend(_built_then_saved(function))
    return list(dict.fromkeys(found))


def _built_then_saved(scope: ast.AST) -> list[str]:
    """``event = Event(...)`` (or ``build_event(...)``) and then ``event.save()`` in one
    function."""
    built: set[str] = set()
    for node in ast.walk(scope):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and _callee(node.value)[-1:] in (["Event"], ["build_event"])
        ):
            built.update(target.id for target in node.targets if isinstance(target, ast.Name))
    found = []
    for node in ast.walk(scope):
        if isinstance(node, ast.Call):
            callee = _callee(node)
            if len(callee) == 2 and callee[0] in built and callee[1] in {"save", "save_base"}:
                found.append(f"{node.lineno}: {callee[0]} = Event(...); {callee[0]}.save()")
    return found


def test_the_scan_sees_every_way_in() -> None:
    """The scan itself: each forbidden way is found (else the real test proves nothing)."""
    source = """
from auditlog.bulk import write_events
from auditlog.models import Event

def door():
    Event.objects.create(action="login", app="x")
    Event.objects.bulk_create([])
    Event(action="login", app="x").save()
    event = Event(action="login", app="x")
    event.save()
    write_events([])
    bulk.write_events([])
    Event.new("x")
    cursor.execute('INSERT INTO "auditlog_event" (action) VALUES (%s)', ["x"])

def harmless():
    preview = Event(action="login", app="x")  # shown, never stored
    return preview.summary
"""
    found = ways_in(source)
    assert sorted(int(line.split(":")[0]) for line in found) == [6, 7, 8, 10, 11, 12, 13, 14]


def test_the_scan_covers_the_project() -> None:
    modules = {str(path) for path in project_modules()}
    assert {"auditlog/services.py", "auditlog/middleware.py", "auditlog/ingest.py"} <= modules
    assert "auditlog/api/serializers.py" in modules and "exports/services.py" in modules
    assert not [path for path in modules if path.startswith("tests/")]


@pytest.mark.parametrize("module", project_modules(), ids=str)
def test_no_module_but_the_service_creates_event_rows(module: Path) -> None:
    if module in ALLOWED:
        return
    found = ways_in((ROOT / module).read_text())
    if module == TRIGGER_MODULE:
        raw_sql = [item for item in found if item.endswith("SQL writing auditlog_event")]
        assert len(raw_sql) == 1, f"the trigger SQL writes events in one place only: {found}"
        found = [item for item in found if item not in raw_sql]
    assert not found, (
        f"{module} creates event rows; record them through auditlog.services "
        f"(record_event / record_events / ingest_event) instead: {found}"
    )
