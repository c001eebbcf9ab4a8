"""The real web process writes its JSON lines to a log file; the Logs page and
``manage.py logs`` find an API write's lines there by the request id its event stores."""

from __future__ import annotations

import json
import os
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from auditlog.models import Event
from directory.models import User
from directory.services import create_api_token
from project.local_server import gunicorn
from tests.workers import database_url

SECRET = "s3cret-Passw0rd-in-a-body"


@pytest.mark.django_db(transaction=True)
def test_an_api_write_is_found_in_the_web_log_file_by_its_request_id(
    tmp_path: Path, settings: object
) -> None:
    admin = User.objects.create_superuser("admin", "admin@example.com", "correct-horse-battery-1")
    target = User.objects.create_user("target", "target@example.com", "target-password-1")
    token = create_api_token(user=admin).key
    log_dir = tmp_path / "logs"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATA_DIR": str(tmp_path),
        "LOG_FILES": "true",
        "LOG_DIR": str(log_dir),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }
    console = tmp_path / "gunicorn.log"
    # As the Procfile runs it: gunicorn's own lines in the same schema.
    logger_class = ["--logger-class=logs.gunicorn.Logger"]
    with gunicorn(env=env, log=console, workers=1, extra_args=logger_class) as url:
        request = urllib.request.Request(
            f"{url}/api/v3/core/users/{target.pk}/",
            data=json.dumps({"name": "Renamed", "password": SECRET}).encode(),
            method="PATCH",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            header_id = response.headers["X-Request-ID"]
    event = Event.objects.filter(action="model_updated", context__model__pk=target.pk).latest(
        "created"
    )
    request_id = event.context["http_request"]["request_id"]
    assert request_id == header_id

    output = [json.loads(line) for line in console.read_text().splitlines() if line.strip()]
    assert any(line["event"].startswith("Booting worker") for line in output)
    assert {line["process"] for line in output} == {"web"}

    text = (log_dir / "web.log").read_text()
    assert SECRET not in text and token not in text
    lines = [json.loads(line) for line in text.splitlines()]
    [recorded] = [line for line in lines if line.get("event_pk") == str(event.pk)]
    assert recorded["request_id"] == request_id
    assert recorded["process"] == "web"

    settings.LOG_DIR = log_dir  # type: ignore[attr-defined]
    client = Client()
    client.force_login(admin)
    page = client.get("/system/logs/", {"request_id": request_id})
    assert page.status_code == 200
    body = page.content.decode()
    assert str(event.pk) in body and "request_finished" in body
    assert SECRET not in body

    out = StringIO()
    call_command("logs", request_id=request_id, format="json", stdout=out)
    found = [json.loads(line) for line in out.getvalue().splitlines()]
    assert found and {line["request_id"] for line in found} == {request_id}
    assert any(line.get("event_pk") == str(event.pk) for line in found)
