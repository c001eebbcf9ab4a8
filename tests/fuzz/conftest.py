"""Fuzzing support: the schema under test, the two personas, objects for the fuzzer to hit, and
the tally that ``make fuzz`` writes to ``bench/fuzz-results.md``.

How much is generated is set by the environment, so the same tests serve the short run in
the suite and the long run of ``make fuzz``:

- ``FUZZ_EXAMPLES``: generated cases per operation and persona (default 4);
- ``FUZZ_COVERAGE=1``: also schemathesis's coverage phase (boundary and missing values);
- ``FUZZ_RESULTS=path``: write the tally (cases per operation, failures) there at the end.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.contrib.contenttypes.models import ContentType
from django.core.handlers.wsgi import WSGIHandler
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from auditlog.models import Event, EventAction
from auditlog.services import record_event
from directory.models import Group, User
from directory.services import create_api_token
from exports.models import DataExport
from exports.services import build_export
from notifications.models import (
    Notification,
    NotificationRule,
    NotificationSeverity,
    NotificationTransport,
)

SCHEMA_URL = "/api/v3/schema/"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 4)
COVERAGE = os.environ.get("FUZZ_COVERAGE", "") not in ("", "0")
RESULTS = os.environ.get("FUZZ_RESULTS", "")
PERSONAS = ("admin", "nobody")
# Stands in for a protected object in a path: an id that exists nowhere.
ABSENT = "0"

# Generated cases per (operation, persona), and failures per operation, for the results file.
CASES: Counter[tuple[str, str]] = Counter()
ACCEPTED: Counter[tuple[str, str]] = Counter()  # of which answered 2xx
FAILURES: dict[tuple[str, str], str] = {}
STARTED = time.monotonic()


def generated_schema() -> dict[str, Any]:
    """The OpenAPI document exactly as ``/api/v3/schema/?format=json`` serves it."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


def fuzz_config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",  # valid data, and data the schema says is invalid
                "max-examples": EXAMPLES,
                # The short run in CI sends the same cases every time; the long run explores.
                "deterministic": not RESULTS,
                "database": "none",
                # The personas' tokens are sent by the test, not generated.
                "with-security-parameters": False,
            },
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": COVERAGE},
                "stateful": {"enabled": False},
            },
            "suppress-health-check": ["all"],
            "cache": {"enabled": False},  # no .schemathesis/ folder in the repository
        }
    )


@dataclass
class Persona:
    name: str
    user: User
    headers: dict[str, str]


@dataclass
class FuzzWorld:
    """What exists while one operation is fuzzed: the personas, and a few objects of every
    kind so that generated requests also reach existing objects, not only 404s."""

    personas: dict[str, Persona]
    protected: set[str]
    existing: dict[str, list[str]] = field(default_factory=dict)

    def ids_for(self, path: str, parameter: str) -> list[str]:
        """Ids of existing objects for a detail path, read from its list as the admin sees it."""
        prefix = path.split("{", 1)[0]
        if prefix not in self.existing:
            self.existing[prefix] = [
                value for value in self._listed(prefix, parameter) if value not in self.protected
            ]
        return self.existing[prefix]

    def _listed(self, prefix: str, parameter: str) -> list[str]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=self.personas["admin"].headers["Authorization"])
        response = client.get(prefix, {"page_size": 50})
        if response.status_code != 200:
            return []
        body = response.json()
        items = body.get("results", []) if isinstance(body, dict) else body
        found = []
        for item in items:
            for key in (parameter, "pk", "id"):
                if isinstance(item, dict) and key in item:
                    found.append(str(item[key]))
                    break
        return found


def _persona(name: str, user: User) -> Persona:
    token = create_api_token(user=user, identifier=f"fuzz-{name}-token")
    # identity: the in-process WSGI client does not undo the API's gzip.
    headers = {"Authorization": f"Bearer {token.key}", "Accept-Encoding": "identity"}
    return Persona(name, user, headers)


def _objects_to_hit(admin: User, nobody: User) -> None:
    others = [
        User.objects.create_user(f"fuzz-user-{index}", f"user{index}@example.com", "pw-fuzz-1234")
        for index in range(3)
    ]
    team = Group.objects.create(name="fuzz team", attributes={"floor": 3})
    team.users.add(*others, nobody)
    Group.objects.create(name="fuzz child", parent=team)
    create_api_token(user=others[0], identifier="fuzz-other-token")
    transport = NotificationTransport.objects.create(name="fuzz drawer")
    rule = NotificationRule.objects.create(
        name="fuzz rule", match='action = "custom_fuzz"', destination_group=team
    )
    rule.transports.add(transport)
    event = record_event(action="fuzz", app="tests", context={"message": "fuzzing"}, user=others[0])
    for user in (admin, nobody):
        Notification.objects.create(
            user=user, severity=NotificationSeverity.NOTICE, body="fuzz", event=event
        )
    for user in (admin, others[0]):
        DataExport.objects.create(requested_by=user, content_type=_event_type())
    build_export(DataExport.objects.create(requested_by=admin, content_type=_event_type()).pk)
    record_event(action=EventAction.LOGIN, app="tests", context={"username": "ana"})


def _event_type() -> ContentType:
    return ContentType.objects.get_for_model(Event)


@pytest.fixture
def fuzz_world(transactional_db: None, settings: Any, tmp_path: Path) -> FuzzWorld:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # A generated webhook URL must not hold a test for long.
    settings.NOTIFICATION_WEBHOOK_TIMEOUT = 1
    admin = User.objects.create_superuser("fuzz-admin", "admin@example.com", "pw-fuzz-admin-1")
    nobody = User.objects.create_user("fuzz-nobody", "nobody@example.com", "pw-fuzz-nobody-1")
    personas = {"admin": _persona("admin", admin), "nobody": _persona("nobody", nobody)}
    _objects_to_hit(admin, nobody)
    # The admin may delete or rename itself, its token or its superuser group, and would test
    # nothing after that: paths naming these are pointed at an object that does not exist.
    protected = {str(admin.pk), str(nobody.pk), "fuzz-admin-token", "fuzz-nobody-token"}
    protected |= {str(group.pk) for group in admin.groups.all()}
    assert (
        not nobody.user_permissions.exists()
        and not nobody.groups.exclude(permissions=None).exists()
    )
    return FuzzWorld(personas=personas, protected=protected)


@pytest.fixture(scope="session")
def wsgi_application() -> WSGIHandler:
    return WSGIHandler()


# --- The tally ------------------------------------------------------------------------------

NODE = re.compile(r"\[(?P<operation>[A-Z]+ [^\]]+)\]\[(?P<persona>\w+)\]")


def record_case(operation: str, persona: str, status: int) -> None:
    CASES[(operation, persona)] += 1
    if 200 <= status < 300:
        ACCEPTED[(operation, persona)] += 1


CHECK = re.compile(r"- (ST\d+ [^\n|]+)")
STATUS = re.compile(r"^\s*\|?\s*\[(\d{3})\]", re.MULTILINE)
CURL = re.compile(r"(curl -X [^\n]+)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    match = NODE.search(report.nodeid)
    if match is None or not report.failed:
        return
    text = str(report.longrepr)
    checks = sorted({found.strip() for found in CHECK.findall(text)})
    status = STATUS.search(text)
    curl = CURL.search(text)
    summary = "; ".join(checks) or text.strip().splitlines()[-1][:160]
    if status:
        summary += f" (answered {status[1]})"
    if curl:
        summary += f": `{curl[1][:300]}`"
    FAILURES[(match["operation"], match["persona"])] = summary


def pytest_sessionfinish(session: pytest.Session) -> None:
    if RESULTS and CASES:
        Path(RESULTS).write_text(results_markdown())


def results_markdown() -> str:
    operations = sorted({operation for operation, _ in CASES}, key=_by_path)
    minutes = (time.monotonic() - STARTED) / 60
    lines = [
        "# API fuzzing results",
        "",
        f"Written by `make fuzz` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: schemathesis against "
        f"the generated OpenAPI schema, up to {EXAMPLES} generated cases per operation and "
        f"persona{' plus the coverage phase' if COVERAGE else ''}, in {minutes:.0f} minutes.",
        "Checks: no 5xx, documented status codes and content types, bodies and headers valid "
        "against the schema, and requests the schema calls invalid refused. An operation with "
        "few possible inputs gets fewer cases (Hypothesis stops when it has tried them all); "
        "one that fails stops at its first failure.",
        "",
        f"- operations: {len(operations)}",
        f"- cases: {sum(CASES.values())}",
        f"- failures: {len(FAILURES)}",
        "",
        "Cases are counted per persona as `sent (answered 2xx)`.",
        "",
        "| operation | admin | no rights | result |",
        "|---|---:|---:|---|",
    ]
    for operation in operations:
        failures = [
            f"{persona}: {FAILURES[(operation, persona)]}"
            for persona in PERSONAS
            if (operation, persona) in FAILURES
        ]
        result = "; ".join(failures).replace("|", "\\|") if failures else "ok"
        counts = " | ".join(
            f"{CASES[(operation, persona)]} ({ACCEPTED[(operation, persona)]})"
            for persona in PERSONAS
        )
        lines.append(f"| `{operation}` | {counts} | {result} |")
    return "\n".join(lines) + "\n"


def _by_path(operation: str) -> tuple[str, str]:
    method, path = operation.split(" ", 1)
    return path, method
