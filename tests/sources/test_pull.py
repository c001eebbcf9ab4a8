"""Pulling a real server's events: a second server of this project stands in for authentik
(its API is authentik's). Complete (pks equal), twice without duplicates, resumable after a
crash between pages and after the syncing process is killed, an out-of-order commit still
imported, a bad token shown clearly with nothing half-imported; imported events are in the
log, search, exports and the chain."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from auditlog import chain
from auditlog.models import Event, EventChainLink
from sources.models import AuthentikSource
from sources.services import create_source, sync_source
from tests.conftest import REPO
from tests.sources.conftest import Upstream, authentik_event
from tests.workers import database_url

pytestmark = pytest.mark.django_db(transaction=True)


def imported_pks(name: str = "upstream") -> set[UUID]:
    return set(Event.objects.filter(context__imported__source=name).values_list("pk", flat=True))


def source_for(
    upstream: Upstream, *, token: str | None = None, page_size: int = 25
) -> AuthentikSource:
    source, _ = create_source(
        name="upstream", url=upstream.url, token=token or upstream.key, page_size=page_size
    )
    return source


@pytest.fixture(scope="module")
def loaded(upstream: Upstream) -> Upstream:
    """120 events over the last hour, with a secret in one context and a newer action."""
    start = timezone.now() - timedelta(hours=1)
    events = [authentik_event(start + timedelta(seconds=20 * n), n) for n in range(120)]
    events[7]["context"]["password"] = "hunter2-upstream-secret"
    upstream.add_events(events)
    return upstream


def test_a_backfill_imports_every_event_once_with_its_identity(
    loaded: Upstream, admin_user: Any, api_as: Any
) -> None:
    source = source_for(loaded)
    first = sync_source(source_id=source.pk)
    after_first = Event.objects.count()
    again = sync_source(source_id=source.pk)

    assert first.error == "" and first.pages > 1
    wanted = loaded.pks()
    assert imported_pks() == wanted
    assert Event.objects.filter(context__imported__source="upstream").count() == len(wanted)
    assert again.error == "" and again.imported == 0
    assert Event.objects.count() == after_first  # the second run added nothing
    source.refresh_from_db()
    assert source.events_imported == len(wanted)
    assert source.last_error == "" and source.last_success is not None
    assert source.position is not None and source.sync_lease_until is None
    assert source.lag is not None and source.lag.total_seconds() < 60
    listed = api_as(admin_user).get("/api/v3/sources/authentik/").json()["results"][0]
    assert listed["events_imported"] == len(wanted) and listed["lag_seconds"] < 60
    one = Event.objects.filter(context__n=7).get()
    assert one.action == "login" and one.app == "authentik.events.signals"
    assert one.user == {"pk": 7, "username": "user7", "email": "user7@example.com"}
    assert one.brand["name"] == "Acme" and one.client_ip == "192.0.2.8"
    assert one.context["auth_method"] == "password"  # readable, not over-masked
    assert one.context["password"] == "********************"  # the redaction policy
    assert one.context["imported"] == {
        "source": "upstream",
        "source_pk": str(one.pk),
        "via": "pull",
    }
    upstream_created = {e.pk: e.created for e in Event.objects.filter(context__n=7)}
    assert upstream_created[one.pk] < timezone.now() - timedelta(minutes=30)


def test_imported_events_are_in_the_log_search_exports_and_chain(
    loaded: Upstream, admin_user: Any, api_as: Any, tmp_path: Path, settings: Any
) -> None:
    sync_source(source_id=source_for(loaded).pk)
    total = len(loaded.pks())
    api = api_as(admin_user)
    search = api.get(
        "/api/v3/events/events/",
        {"search": 'context.imported.source = "upstream"', "page_size": 500},
    )
    assert search.status_code == 200
    assert search.json()["pagination"]["count"] == total
    page = Client()
    page.force_login(admin_user)
    log = page.get("/events/", {"search": 'context.imported.source = "upstream" and context.n = 7'})
    assert log.status_code == 200 and "user7" in log.content.decode()

    settings.MEDIA_ROOT = str(tmp_path)
    export = api.post(
        "/api/v3/events/events/export/?search=context.imported.source%20%3D%20%22upstream%22"
    )
    assert export.status_code == 201, export.content
    download = api.get(f"/api/v3/reports/exports/{export.json()['id']}/download/")
    assert download.status_code == 200
    body = b"".join(download.streaming_content).decode()  # type: ignore[attr-defined]
    assert sum(str(pk) in body for pk in loaded.pks()) == total

    chain.seal_pending()
    out = StringIO()
    call_command("verify_events", stdout=out)
    assert "Event chain intact" in out.getvalue() and "0 not sealed yet" in out.getvalue()
    linked = EventChainLink.objects.filter(event_uuid__in=loaded.pks()).count()
    assert linked == total


def test_an_event_committed_late_with_an_older_time_is_imported_next_run(
    loaded: Upstream,
) -> None:
    source = source_for(loaded)
    assert sync_source(source_id=source.pk).error == ""
    source.refresh_from_db()
    assert source.position is not None
    late = authentik_event(source.position - timedelta(minutes=3), 999, action="logout")
    loaded.add_events([late])  # committed now, created before the position

    result = sync_source(source_id=source.pk)

    assert result.error == "" and result.imported == 1
    assert Event.objects.filter(pk=late["pk"], action="logout").exists()
    assert imported_pks() == loaded.pks()


def test_a_crash_between_pages_loses_and_doubles_nothing(loaded: Upstream) -> None:
    source = source_for(loaded, page_size=10)

    def crash(pages: int) -> None:
        if pages == 3:
            raise RuntimeError("killed between pages")

    with pytest.raises(RuntimeError):
        sync_source(source_id=source.pk, between_pages=crash)
    source.refresh_from_db()
    halfway = len(imported_pks())  # three pages, each starting at the last one's second
    assert source.events_imported == halfway and 20 < halfway <= 30
    assert "RuntimeError: killed between pages" in source.last_error

    assert sync_source(source_id=source.pk).error == ""
    source.refresh_from_db()
    assert imported_pks() == loaded.pks()
    assert Event.objects.count() == len(loaded.pks()) + 1  # + the source's creation
    assert source.events_imported == len(loaded.pks()) and source.last_error == ""


def test_a_sync_killed_mid_run_resumes_without_loss_or_duplicates(loaded: Upstream) -> None:
    source = source_for(loaded, page_size=3)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sync_source", "upstream", "-v", "0"],
        cwd=REPO,
        env={**__import__("os").environ, "DATABASE_URL": database_url()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if AuthentikSource.objects.get(pk=source.pk).events_imported >= 9:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the sync finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    source.refresh_from_db()
    halfway = imported_pks()
    assert 9 <= len(halfway) < len(loaded.pks())
    assert source.events_imported == len(halfway)  # the position matches what was committed
    assert source.sync_lease_until is not None  # the dead process still holds the lease

    out = StringIO()
    call_command("sync_source", "upstream", "-v", "0", stdout=out)

    assert imported_pks() == loaded.pks()
    assert Event.objects.count() == len(loaded.pks()) + 1  # + the source's creation
    source.refresh_from_db()
    assert source.events_imported == len(loaded.pks())
    assert f"{len(loaded.pks()) - len(halfway)} imported" in out.getvalue()


def test_a_bad_token_is_a_clear_error_on_the_status_page_and_imports_nothing(
    loaded: Upstream, admin_user: Any
) -> None:
    source = source_for(loaded, token="not-a-valid-token")
    result = sync_source(source_id=source.pk)
    no_rights, _ = create_source(name="no-rights", url=loaded.url, token=loaded.nobody_key)
    refused = sync_source(source_id=no_rights.pk)

    assert result.error == "authentik answered 403 Forbidden: Token invalid/expired"
    assert refused.error.startswith("authentik answered 403 Forbidden: ")
    assert Event.objects.filter(context__imported__isnull=False).count() == 0
    page = Client()
    page.force_login(admin_user)
    html = page.get("/system/sources/").content.decode()
    assert "authentik answered 403 Forbidden: Token invalid/expired" in html
    assert "not-a-valid-token" not in html
    source.refresh_from_db()
    assert source.events_imported == 0 and source.position is None


def test_an_unreachable_source_says_so() -> None:
    source, _ = create_source(name="gone", url="http://127.0.0.1:9", token="t")
    result = sync_source(source_id=source.pk)
    assert result.error.startswith("Could not reach http://127.0.0.1:9")
    source.refresh_from_db()
    assert source.last_error == result.error and source.last_error_at is not None


def test_more_events_in_one_second_than_a_page_holds_are_all_imported(
    upstream: Upstream,
) -> None:
    moment = timezone.now().replace(microsecond=0) - timedelta(days=2)
    crowd = [authentik_event(moment + timedelta(microseconds=n), 500 + n) for n in range(12)]
    upstream.add_events(crowd)
    source = source_for(upstream, page_size=5)

    assert sync_source(source_id=source.pk).error == ""

    assert {str(pk) for pk in imported_pks()} >= {event["pk"] for event in crowd}
    assert imported_pks() == upstream.pks()


def test_the_scheduled_task_follows_enabled_sources_only(loaded: Upstream) -> None:
    followed = source_for(loaded)
    paused, _ = create_source(name="paused", url=loaded.url, token=loaded.key, enabled=False)

    from sources.tasks import sync_sources

    queued = sync_sources.delay().get(disable_sync_subtasks=False)

    assert queued == 1 and imported_pks() == loaded.pks()
    followed.refresh_from_db()
    paused.refresh_from_db()
    assert followed.last_success is not None and paused.last_sync_started is None


def test_an_event_pushed_first_is_not_doubled_by_the_pull(loaded: Upstream) -> None:
    source, webhook_token = create_source(name="upstream", url=loaded.url, token=loaded.key)
    answer = requests.get(
        f"{loaded.url}/api/v3/events/events/",
        params={"ordering": "created", "page_size": 1},
        headers={"Authorization": f"Bearer {loaded.key}"},
        timeout=30,
    )
    event = answer.json()["results"][0]  # exactly what authentik's API answers
    pushed = Client().post(
        "/api/v3/sources/authentik/upstream/webhook/",
        {"body": "pushed", "severity": "notice", "event": event},
        content_type="application/json",
        HTTP_X_WEBHOOK_TOKEN=webhook_token,
    )
    assert pushed.status_code == 201, pushed.content

    result = sync_source(source_id=source.pk)

    assert result.error == "" and result.imported == len(loaded.pks()) - 1
    assert imported_pks() == loaded.pks()
    assert Event.objects.get(pk=event["pk"]).context["imported"]["via"] == "webhook"


def test_a_password_in_the_sources_url_is_never_shown() -> None:
    source, _ = create_source(name="creds", url="http://user:hunter2-in-url@127.0.0.1:9", token="t")
    result = sync_source(source_id=source.pk)
    assert result.error.startswith("Could not reach http://user:")
    assert "hunter2-in-url" not in result.error


def test_the_scheduler_runs_the_sync_of_every_source_every_minute(settings: Any) -> None:
    from celery.schedules import crontab

    from sources.tasks import sync_sources

    entry = settings.CELERY_BEAT_SCHEDULE["sync-sources"]
    assert entry["task"] == sync_sources.name
    assert entry["schedule"] == crontab()


@pytest.mark.worker
def test_a_real_worker_follows_the_sources(loaded: Upstream, tmp_path: Path, settings: Any) -> None:
    from tests.workers import redis_url_or_skip, running_worker, wait_until

    source_for(loaded)
    # The worker must hold the key the token was encrypted with (the same SECRET_KEY).
    same_key = {"SECRET_KEY": settings.SECRET_KEY}
    with running_worker(redis_url_or_skip(), data_dir=tmp_path, extra_env=same_key) as sender:
        sender.send_task("sources.tasks.sync_sources")
        wait_until(
            lambda: imported_pks() == loaded.pks(), message="the worker to import the events"
        )
    source = AuthentikSource.objects.get(name="upstream")
    assert source.last_success is not None and source.last_error == ""
