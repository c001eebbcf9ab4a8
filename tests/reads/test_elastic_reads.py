"""Elastic's integration polling the event list while reads are recorded: it still collects
every event, each interval is one read of the trail, and that read is itself collected later."""

from __future__ import annotations

import json

import pytest

from auditlog.models import Event
from tests.api.test_elastic import check_event, elastic_server, poll  # noqa: F401  (fixture)
from tests.reads.conftest import read_events

pytestmark = pytest.mark.django_db(transaction=True)


def test_polling_with_reads_recorded_misses_nothing_and_reads_once_a_window(
    elastic_server,  # noqa: F811
) -> None:
    base_url, token = elastic_server
    existing = {str(pk) for pk in Event.objects.values_list("pk", flat=True)}
    first, paginations = poll(base_url, "/api/v3/events/events/", token)
    assert len(paginations) > 1  # several pages, one read
    assert {json.loads(document)["pk"] for document in first} >= existing
    [read] = read_events(read="search")
    assert read.user["username"] == "siem-collector"
    assert read.context["count"] == 1 and read.context["filters"] == {}

    second, _ = poll(base_url, "/api/v3/events/events/", token)
    collected = {json.loads(document)["pk"]: json.loads(document) for document in second}
    check_event(collected[str(read.pk)])  # the read event keeps Elastic's contract
    assert read_events(read="search") == [read]  # the same minute: counted, not written
