"""A second server of this project standing in for authentik (its API is authentik's): gunicorn
on a database of its own (SQLite file, or a PostgreSQL database of its own when the suite runs
on PostgreSQL), with an API token, loaded with events by ``manage.py shell``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

from tests.conftest import REPO
from tests.servers import running_gunicorn

SETUP = """
import json
from directory.models import User
from directory.services import create_api_token
admin = User.objects.create_superuser("akadmin", "akadmin@example.com", "upstream-password-1")
reader = User.objects.create_user("ak-nobody", "ak-nobody@example.com", "upstream-password-2")
print(json.dumps({"key": create_api_token(user=admin).key,
                  "nobody_key": create_api_token(user=reader).key}))
"""

ADD_EVENTS = """
import json, sys
from auditlog.services import record_events
items = json.loads(sys.stdin.read())
record_events(items, keep_identity=True)
"""


@dataclass
class Upstream:
    """The stand-in authentik: its URL, an administrator's API token, one without rights."""

    url: str
    key: str
    nobody_key: str
    database_url: str
    data_dir: Path

    def manage(self, *args: str, stdin: str | None = None) -> str:
        return manage(self.database_url, self.data_dir, *args, stdin=stdin)

    def add_events(self, events: list[dict[str, Any]]) -> list[str]:
        """Commit ``events`` (authentik's event JSON, pk and created given) upstream."""
        for event in events:
            event.setdefault("pk", str(uuid.uuid4()))
        self.manage("shell", "-v", "0", "-c", ADD_EVENTS, stdin=json.dumps(events))
        return [event["pk"] for event in events]

    def pks(self) -> set[uuid.UUID]:
        """Every event stored upstream, read from its database (not through its API)."""
        query = "SELECT event_uuid FROM auditlog_event"
        if self.database_url.startswith("sqlite"):
            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as db:
                return {uuid.UUID(row[0]) for row in db.execute(query)}
        with psycopg.connect(self.database_url) as db:
            return {row[0] for row in db.execute(query)}


def manage(database_url: str, data_dir: Path, *args: str, stdin: str | None = None) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "DEMO_EVENTS": "0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _postgres_database() -> Iterator[str]:
    ours = settings.DATABASES["default"]
    server = (
        f"postgres://{ours.get('USER') or 'postgres'}"
        f"{':' + ours['PASSWORD'] if ours.get('PASSWORD') else ''}"
        f"@{ours.get('HOST') or '127.0.0.1'}:{ours.get('PORT') or 5432}"
    )
    name = f"auditlog_upstream_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    data_dir = tmp_path_factory.mktemp("upstream")
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    databases = _postgres_database() if on_postgres else iter([f"sqlite:///{data_dir}/db.sqlite3"])
    database_url = next(databases)
    try:
        manage(database_url, data_dir, "migrate", "--no-input", "-v", "0")
        keys = json.loads(manage(database_url, data_dir, "shell", "-v", "0", "-c", SETUP))
        with running_gunicorn(database_url, data_dir, workers=1) as url:
            yield Upstream(url, keys["key"], keys["nobody_key"], database_url, data_dir)
    finally:
        next(databases, None)  # drops the PostgreSQL database


def authentik_event(created: datetime, number: int, **extra: Any) -> dict[str, Any]:
    """An event as authentik's API answers it."""
    return {
        "pk": str(uuid.uuid4()),
        "action": "login",
        "app": "authentik.events.signals",
        "user": {"pk": number, "username": f"user{number}", "email": f"user{number}@example.com"},
        "context": {"auth_method": "password", "n": number},
        "client_ip": f"192.0.2.{number % 250 + 1}",
        "created": created.isoformat(),
        "brand": {"app": "authentik_brands", "model_name": "brand", "pk": "b1", "name": "Acme"},
        **extra,
    }
