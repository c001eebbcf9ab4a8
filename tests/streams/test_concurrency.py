"""Several workers at once on the same destinations: each batch is sent once, in order (the
lease lets one run through per destination), and different destinations proceed together."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from auditlog.chain.sealing import seal_pending
from auditlog.models import EventAction, EventChainLink
from auditlog.services import record_event
from streams import services
from streams.models import Destination, Transport
from tests.streams.conftest import make_destination
from tests.streams.receivers import http_receiver

pytestmark = pytest.mark.django_db(transaction=True)


def test_four_workers_on_two_destinations_send_every_batch_once_in_order() -> None:
    with http_receiver() as first, http_receiver() as second:
        first.hold = second.hold = 0.02  # slow receivers: the runs overlap
        destinations = [
            make_destination(name=name, transport=Transport.HTTP, url=receiver.url, paused=True)
            for name, receiver in (("first", first), ("second", second))
        ]
        for index in range(12):
            record_event(action=EventAction.LOGIN, app="tests", context={"n": index})
        seal_pending()
        for destination in destinations:
            Destination.objects.filter(pk=destination.pk).update(paused=False, batch_size=2)
        head = EventChainLink.objects.order_by("-sequence")[0].sequence
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                while any(
                    d.position < head
                    for d in Destination.objects.filter(pk__in=[x.pk for x in destinations])
                ):
                    for destination in destinations:
                        services.deliver(destination.pk, budget=0)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    chain = list(EventChainLink.objects.order_by("sequence").values_list("sequence", flat=True))
    for receiver in (first, second):
        assert [r["chain"]["sequence"] for r in receiver.records()] == chain
