"""The sealer's backlog: ``/api/v3/events/chain/status/`` and the System settings page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from auditlog import chain
from auditlog.models import Event
from tests.chain.conftest import write

pytestmark = pytest.mark.django_db

STATUS = "/api/v3/events/chain/status/"
SETTINGS_PAGE = "/system/settings/"


def test_the_status_answers_the_backlog_and_its_oldest_event(api_as: Any, auditor: Any) -> None:
    client = api_as(auditor)
    chain.seal_pending()
    empty = client.get(STATUS).json()
    assert empty["unsealed"] == 0
    assert empty["oldest_unsealed_created"] is None
    assert empty["oldest_unsealed_age_seconds"] is None
    head = empty["head"]

    first, *_ = write(3)
    body = client.get(STATUS).json()
    assert body["unsealed"] == 3
    assert body["head"] == head
    oldest = Event.objects.get(pk=first.pk).created
    assert body["oldest_unsealed_created"].replace("Z", "+00:00") == oldest.isoformat()
    assert 0 <= body["oldest_unsealed_age_seconds"] < 60

    chain.seal_pending()
    after = client.get(STATUS).json()
    assert after["unsealed"] == 0
    assert after["head"] == (head or 0) + 3


def test_the_age_is_that_of_the_oldest_waiting_event() -> None:
    chain.seal_pending()
    write(2)
    backlog = chain.sealing_backlog()
    assert backlog.unsealed == 2
    later = timezone.now() + timedelta(minutes=10)
    assert 600 <= (backlog.age_seconds(later) or 0) < 660


def test_the_status_needs_the_view_permission(api_as: Any, nobody: Any) -> None:
    assert api_as(nobody).get(STATUS).status_code == 403
    assert api_as(None).get(STATUS).status_code in (401, 403)


def unsealed_shown(page: str) -> int:
    found = re.search(r"<dd data-unsealed>(\d+) events?</dd>", page)
    assert found, "the backlog is not on the page"
    return int(found.group(1))


def test_the_settings_page_shows_the_backlog(admin_user: Any, auditor: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    client.get(SETTINGS_PAGE)  # the page's own reads and the login are events too
    chain.seal_pending()
    page = client.get(SETTINGS_PAGE).content.decode()
    assert unsealed_shown(page) == 0
    assert "<dd data-oldest-unsealed>none</dd>" in page
    write(2)
    page = client.get(SETTINGS_PAGE).content.decode()
    assert unsealed_shown(page) == 2 == chain.sealing_backlog().unsealed
    assert "<dd data-oldest-unsealed>none</dd>" not in page
    assert re.search(r"<dd data-oldest-unsealed>\d+ s \(created <time", page)
    refused = Client()
    refused.force_login(auditor)
    assert refused.get(SETTINGS_PAGE).status_code == 403
