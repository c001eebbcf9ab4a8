"""Export fixtures: private storage in a temporary folder, an exporter persona, and helpers
that request an export through the API and read its file back."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import kombu.pools
import pytest
from rest_framework.test import APIClient

from directory.models import User
from exports.models import DataExport
from project import celery_app
from tests.conftest import grant

EVENTS = "/api/v3/events/events/"
USERS = "/api/v3/core/users/"
EXPORTS = "/api/v3/reports/exports/"


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Export files go to a folder of this test only."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def exporter(auditor: User) -> User:
    """The auditor, allowed to export what they may read."""
    return grant(auditor, "exports.add_dataexport")


def export_url(list_url: str, params: dict[str, Any] | None = None) -> str:
    query = urlencode(params or {}, doseq=True)
    return f"{list_url}export/" + (f"?{query}" if query else "")


@pytest.fixture
def request_export(
    django_capture_on_commit_callbacks: Any,
) -> Callable[..., Any]:
    """POST <list>/export/?params as ``client``; the (eager) build runs on commit."""

    def post(client: APIClient, list_url: str, params: dict[str, Any] | None = None) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(export_url(list_url, params))

    return post


def stored_text(export: DataExport) -> str:
    export.refresh_from_db()
    with export.file.open("rb") as handle:
        return handle.read().decode("utf-8")


def csv_header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")))


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def jsonl_rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def list_results(client: APIClient, list_url: str, params: dict[str, Any] | None = None) -> list:
    response = client.get(list_url, {**(params or {}), "page_size": 1000})
    assert response.status_code == 200, response.content
    return response.json()["results"]


@contextmanager
def celery_sends_to(broker_url: str, queue: str | None = None) -> Iterator[None]:
    """Make the project's Celery app publish for real (not eagerly) to ``broker_url``.

    The project's app is made the current one again on both ends: creating another app (the
    worker test's sender) makes that one current, and shared tasks follow the current app.
    """
    celery_app.set_current()
    conf = celery_app.conf
    saved = {
        key: conf[key]
        for key in ("task_always_eager", "broker_url", "broker_transport_options", "task_routes")
    }
    conf.task_always_eager = False
    conf.broker_url = broker_url
    conf.broker_transport_options = {}
    conf.task_routes = {"exports.tasks.generate_export": {"queue": queue}} if queue else {}
    _reset_connections()
    try:
        yield
    finally:
        for key, value in saved.items():
            conf[key] = value
        _reset_connections()
        celery_app.set_current()


def _reset_connections() -> None:
    """Forget the routes and broker connections made with the previous configuration."""
    celery_app.amqp.flush_routes()
    celery_app.amqp.router = celery_app.amqp.Router()
    kombu.pools.reset()  # closes the pooled connections and forgets the pools
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
