"""Fixtures for notification tests: a clean slate of rules, a real HTTP server that records
webhook calls, and a group with members."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from auditlog import chain
from auditlog.capture import audit_ignore
from directory.models import Group, User
from notifications.models import NotificationRule, NotificationTransport
from notifications.rules import forget_rules
from project import celery_app


@pytest.fixture(autouse=True)
def _no_default_rules(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts without rules or transports (the migration's defaults are removed)."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    with audit_ignore():
        NotificationRule.objects.all().delete()
        NotificationTransport.objects.all().delete()
    forget_rules()
    yield
    forget_rules()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookServer:
    """A real HTTP server in a thread. Answers from ``responses`` in order, then ``default``."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    responses: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    default: tuple[int, dict[str, str], str] = (200, {}, "ok")
    delay: float = 0.0

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def fail_first(self, count: int, status: int = 500) -> None:
        self.responses = [(status, {}, "temporarily broken")] * count

    def bodies(self) -> list[Any]:
        return [request.body for request in self.received]


def _handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            server.received.append(Received(self.path, dict(self.headers.items()), body))
            if server.delay:
                time.sleep(server.delay)
            status, headers, text = server.responses.pop(0) if server.responses else server.default
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text.encode())))
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    state = WebhookServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def security_group() -> tuple[Group, list[User]]:
    """A group with two active members (ana, ben) and an inactive one (cy)."""
    group = Group.objects.create(name="Security")
    ana = User.objects.create_user("ana", "ana@example.com")
    ben = User.objects.create_user("ben", "ben@example.com")
    cy = User.objects.create_user("cy", "cy@example.com", is_active=False)
    group.users.add(ana, ben, cy)
    return group, [ana, ben, cy]


@pytest.fixture
def make_rule() -> Callable[..., NotificationRule]:
    def make(
        match: str = 'action = "login_failed"',
        *,
        name: str | None = None,
        transports: tuple[NotificationTransport, ...] = (),
        **fields: Any,
    ) -> NotificationRule:
        rule = NotificationRule.objects.create(
            name=name or f"rule-{NotificationRule.objects.count()}", match=match, **fields
        )
        rule.transports.set(transports)
        return rule

    return make


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """``with commit():`` runs what would happen once the test's transaction commits: the
    block's events are sealed and the rules see them (through ``auditlog.feed``).

    What the set-up wrote before the block (users, groups and rules are recorded as events
    too) is sealed first, unseen by the rules, as if it had been committed before the test;
    and the seal's debounce is reset, as the scheduler's next run would make up for it."""

    @contextmanager
    def run() -> Iterator[list[Callable[[], Any]]]:
        with django_capture_on_commit_callbacks(execute=False):
            chain.seal_pending()  # its publication is never run: the rules do not see it
        chain.sealing._next_enqueue = 0.0
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            yield callbacks

    return run


@pytest.fixture
def eager_retries() -> Iterator[None]:
    """Let eagerly run tasks retry: Celery re-runs a retried task at once (no countdown) when
    the Retry is not propagated to the caller."""
    previous = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = previous
