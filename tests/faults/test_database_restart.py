"""PostgreSQL restarted while a real gunicorn takes writes: every request either succeeds or
fails cleanly (a 503 with a JSON message from the API, a "temporarily unavailable" page from
the web admin, never a 500), every write answered with a 2xx has its event, and the service
recovers by itself once the database is back.

The test restarts a throw-away PostgreSQL cluster of its own (initdb into a temporary
directory), never the shared one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests

from tests.conftest import REPO
from tests.servers import Cluster, running_gunicorn, throwaway_postgres

ADMIN_PASSWORD = "restart-test-password-1"
SETUP = f"""
import json
from directory.models import User
from directory.services import create_api_token
admin = User.objects.create_superuser("restart-admin", "r@example.com", "{ADMIN_PASSWORD}")
targets = [User.objects.create_user(f"restart-target-{{i}}").pk for i in range(3)]
print(json.dumps({{"key": create_api_token(user=admin).key, "targets": targets}}))
"""


@dataclass
class Outcome:
    kind: str
    status: int  # 0: no HTTP answer at all
    content_type: str
    body: str
    at: float
    value: str = ""  # the event pk (post) or the name set (patch)


@dataclass
class Writers:
    base_url: str
    key: str
    targets: list[int]
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, number: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.key}"
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            if sequence % 2:
                self._send(session, "post", number, sequence)
            else:
                self._send(session, "patch", number, sequence)
            time.sleep(0.02)

    def _send(self, session: requests.Session, kind: str, number: int, sequence: int) -> None:
        at = time.monotonic()
        value = f"restart {number}-{sequence}"
        try:
            if kind == "post":
                body = {"action": "custom_restart", "app": "tests", "context": {"n": value}}
                response = session.post(f"{self.base_url}/api/v3/events/events/", json=body)
            else:
                target = self.targets[sequence % len(self.targets)]
                response = session.patch(
                    f"{self.base_url}/api/v3/core/users/{target}/", json={"name": value}
                )
        except requests.RequestException as exc:
            outcome = Outcome(kind, 0, "", repr(exc), at)
        else:
            if kind == "post" and response.status_code == 201:
                value = response.json()["pk"]
            outcome = Outcome(
                kind,
                response.status_code,
                response.headers.get("Content-Type", ""),
                response.text[:300],
                at,
                value,
            )
        with self.lock:
            self.outcomes.append(outcome)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    try:
        with throwaway_postgres() as started:
            yield started
    except LookupError as exc:
        pytest.skip(f"a throw-away PostgreSQL cluster is needed ({exc})")


def manage(database_url: str, data_dir: Path, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def signed_in_browser(base_url: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{base_url}/login/", timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, form
    answer = browser.post(
        f"{base_url}/login/",
        data={
            "username": "restart-admin",
            "password": ADMIN_PASSWORD,
            "csrfmiddlewaretoken": token[1],
        },
        headers={"Referer": f"{base_url}/login/"},
        timeout=30,
    )
    assert answer.status_code == 200 and "/login/" not in answer.url, answer.text[:500]
    return browser


def stored(database_url: str) -> tuple[set[str], set[str]]:
    """The pks of the ingested events, and the names the users' model_updated events show."""
    with psycopg.connect(database_url) as db:
        events = {
            str(row[0])
            for row in db.execute(
                "SELECT event_uuid FROM auditlog_event WHERE action = 'custom_restart'"
            )
        }
        names = {
            row[0]
            for row in db.execute(
                "SELECT context -> 'diff' -> 'name' ->> 'new_value' FROM auditlog_event "
                "WHERE action = 'model_updated' AND context -> 'model' ->> 'model_name' = 'user'"
            )
        }
    return events, names


@pytest.mark.postgres
def test_writes_survive_a_database_restart_cleanly_and_the_service_recovers(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = cluster.url
    manage(url, tmp_path, "migrate", "--no-input", "-v", "0")
    setup = json.loads(manage(url, tmp_path, "shell", "-v", "0", "-c", SETUP).strip())
    with running_gunicorn(url, tmp_path, workers=2) as base_url:
        browser = signed_in_browser(base_url)
        writers = Writers(base_url, setup["key"], setup["targets"])
        threads = [threading.Thread(target=writers.run, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.5)
            cluster.stop("fast")  # ends every open session, as a restart does
            stopped_at = time.monotonic()
            time.sleep(1.5)
            api_down = requests.get(
                f"{base_url}/api/v3/events/events/",
                headers={"Authorization": f"Bearer {setup['key']}"},
                timeout=30,
            )
            page_down = browser.get(f"{base_url}/", timeout=30)
            cluster.start()
            started_at = time.monotonic()
            deadline = started_at + 30
            while time.monotonic() < deadline and not any(
                o.at > started_at and 200 <= o.status < 300 for o in writers.outcomes
            ):
                time.sleep(0.2)
            time.sleep(1)
        finally:
            writers.stop.set()
            for thread in threads:
                thread.join(timeout=60)
        page_back = browser.get(f"{base_url}/", timeout=30)

    outcomes = writers.outcomes
    # Failing cleanly: the API answers a 503 with a JSON message, the web admin a page.
    assert api_down.status_code == 503, api_down.text
    assert api_down.headers["Content-Type"] == "application/json"
    assert "database is unavailable" in api_down.json()["detail"]
    assert api_down.headers["Retry-After"]
    assert page_down.status_code == 503
    assert page_down.headers["Content-Type"].startswith("text/html")
    assert "Temporarily unavailable" in page_down.text
    unclean = [o for o in outcomes if not (200 <= o.status < 300 or o.status == 503)]
    assert not unclean, unclean[:3]
    for refused in (o for o in outcomes if o.status == 503):
        assert refused.content_type == "application/json", refused
        assert "database is unavailable" in json.loads(refused.body)["detail"]
    assert any(o.status == 503 for o in outcomes if o.at > stopped_at), "the outage was felt"
    # Recovering by itself: writes succeed again after the restart, and pages are back.
    assert any(200 <= o.status < 300 for o in outcomes if o.at > started_at)
    assert page_back.status_code == 200
    # Nothing confirmed is lost: every 2xx write has its event.
    events, names = stored(url)
    posted = {o.value for o in outcomes if o.kind == "post" and o.status == 201}
    patched = {o.value for o in outcomes if o.kind == "patch" and o.status == 200}
    assert posted and patched
    assert posted <= events, posted - events
    assert patched <= names, patched - names
