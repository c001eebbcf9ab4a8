"""Delivery to real local receivers: every event, exactly in order, nothing skipped through a
failing phase, each record naming its place in the chain and the record sent before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from auditlog.models import Event, EventAction, EventChainLink
from streams import services, verify_stream
from streams.models import Destination, HttpShape, Transport
from tests.streams.conftest import SIGNING_KEY, deliver_all, make_destination
from tests.streams.receivers import http_receiver, make_test_ca, syslog_receiver

pytestmark = pytest.mark.django_db


def _chain_pks() -> list[str]:
    return [
        str(pk)
        for pk in EventChainLink.objects.order_by("sequence").values_list("event_uuid", flat=True)
    ]


def _assert_complete_and_in_order(records: list[dict], lines: list[str] | None = None) -> None:
    assert [r["pk"] for r in records] == _chain_pks()
    sequences = [r["chain"]["sequence"] for r in records]
    assert sequences == sorted(sequences)
    assert [r["chain"]["previous_sequence"] for r in records] == [None, *sequences[:-1]]
    report = verify_stream.verify(lines or [json.dumps(r) for r in records], key=SIGNING_KEY)
    assert report.problems == [] and report.records == len(records)


def test_http_batches_arrive_in_order_and_a_503_phase_skips_nothing(make_events) -> None:
    make_events(7)
    with http_receiver() as receiver:
        destination = make_destination(
            transport=Transport.HTTP,
            url=receiver.url,
            batch_size=3,
            auth_header_name="Authorization",
            auth_header_value="Bearer receiver-token",
        )
        receiver.status = 503
        run = deliver_all(destination)
        destination.refresh_from_db()
        assert run.sent == 0
        assert destination.position == 0 and destination.attempts == 1
        assert destination.last_error.startswith("HTTP 503")
        assert "index is read-only" in destination.last_error
        assert services.health(destination).lag_events == 7
        # More events while the receiver is down: a backlog builds.
        make_events(5)
        run = deliver_all(destination)
        destination.refresh_from_db()
        assert run.sent == 0 and destination.attempts == 2
        receiver.status = 200
        run = deliver_all(destination)
        destination.refresh_from_db()
    # 12 events, and the destination's own model_created (sealed with the second ones).
    assert run.sent == len(_chain_pks()) == 13 and run.batches == 5
    assert [len(json.loads(body)) for body in receiver.bodies] == [3, 3, 3, 3, 1]
    assert receiver.headers[0]["Authorization"] == "Bearer receiver-token"
    _assert_complete_and_in_order(receiver.records())
    assert destination.last_error == "" and destination.attempts == 0
    health = services.health(destination)
    assert health.lag_events == 0 and health.lag_seconds == 0
    assert destination.last_success is not None


def test_splunk_hec_shape_wraps_each_record_with_its_time(make_events) -> None:
    make_events(2)
    with http_receiver() as receiver:
        destination = make_destination(
            transport=Transport.HTTP, url=receiver.url, http_shape=HttpShape.SPLUNK_HEC
        )
        deliver_all(destination)
    objects = [json.loads(line) for line in receiver.bodies[0].decode().split("\n")]
    assert [o["event"]["pk"] for o in objects] == _chain_pks()
    created = Event.objects.get(event_uuid=objects[0]["event"]["pk"]).created
    assert objects[0]["time"] == pytest.approx(created.timestamp())
    assert objects[0]["sourcetype"] == "_json"
    lines = receiver.bodies[0].decode().split("\n")
    assert verify_stream.verify(lines, key=SIGNING_KEY).problems == []


def test_a_refused_connection_is_shown_in_the_receivers_words(make_events) -> None:
    make_events(1)
    destination = make_destination(transport=Transport.SYSLOG_TCP, host="127.0.0.1", port=1)
    run = deliver_all(destination)
    destination.refresh_from_db()
    assert "refused" in run.error.lower() and destination.last_error == run.error
    assert destination.position == 0


def test_syslog_over_tcp_receives_octet_counted_rfc5424_in_order(make_events) -> None:
    make_events(6)
    with syslog_receiver() as receiver:
        destination = make_destination(
            transport=Transport.SYSLOG_TCP, host="127.0.0.1", port=receiver.port, batch_size=4
        )
        assert deliver_all(destination).sent == 6
        _wait(lambda: len(receiver.messages) == 6)
    assert receiver.errors == []
    first = receiver.messages[0].decode()
    assert first.startswith("<86>1 ")
    assert ' auditlog - login [chain@32473 sequence="' in first
    # The script reads the messages as a syslog server stores them, header and all.
    _assert_complete_and_in_order(
        receiver.records(), [m.decode().replace("\ufeff", "") for m in receiver.messages]
    )


def test_syslog_over_tls_with_a_test_ca(make_events, tmp_path: Path) -> None:
    make_events(5)
    ca = make_test_ca(tmp_path)
    with syslog_receiver(tls=ca.server_context()) as receiver:
        destination = make_destination(
            transport=Transport.SYSLOG_TLS,
            host="127.0.0.1",
            port=receiver.port,
            ca_file=str(ca.ca_file),
            batch_size=2,
        )
        assert deliver_all(destination).sent == 5
        _wait(lambda: len(receiver.messages) == 5)
    _assert_complete_and_in_order(receiver.records())


def test_syslog_tls_handshake_failure_keeps_the_position(make_events, tmp_path: Path) -> None:
    make_events(2)
    ca = make_test_ca(tmp_path)
    with syslog_receiver(tls=ca.server_context()) as receiver:
        # Trusting the system's CAs only: the test certificate is refused.
        destination = make_destination(
            transport=Transport.SYSLOG_TLS, host="127.0.0.1", port=receiver.port
        )
        run = deliver_all(destination)
    destination.refresh_from_db()
    assert "TLS" in run.error and "CERTIFICATE_VERIFY_FAILED" in run.error
    assert destination.position == 0 and destination.events_sent == 0


def test_file_receives_json_lines_and_rotates_by_size(make_events, tmp_path: Path) -> None:
    make_events(30)
    path = tmp_path / "out" / "siem.jsonl"
    destination = make_destination(
        transport=Transport.FILE, path=str(path), max_bytes=4096, backups=20, batch_size=5
    )
    assert deliver_all(destination).sent == 30
    rotated = sorted(
        tmp_path.joinpath("out").glob("siem.jsonl.*"), key=lambda p: -int(p.suffix[1:])
    )
    assert rotated, "the file was not rotated"
    lines = [line for file in [*rotated, path] for line in file.read_text().splitlines()]
    assert all(file.stat().st_size <= 4096 for file in [*rotated, path])
    _assert_complete_and_in_order([json.loads(line) for line in lines], lines)


def test_a_filter_sends_only_matching_events_and_names_the_previous_one_sent(
    make_events, tmp_path: Path
) -> None:
    make_events(3, action=EventAction.LOGIN)
    failed = make_events(2, action=EventAction.LOGIN_FAILED)
    make_events(2, action=EventAction.LOGIN)
    failed += make_events(1, action=EventAction.LOGIN_FAILED)
    path = tmp_path / "failed.jsonl"
    destination = make_destination(
        transport=Transport.FILE, path=str(path), filter='action = "login_failed"'
    )
    deliver_all(destination)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["pk"] for r in records] == failed
    sequences = [r["chain"]["sequence"] for r in records]
    assert [r["chain"]["previous_sequence"] for r in records] == [None, *sequences[:-1]]
    destination.refresh_from_db()
    assert destination.position == EventChainLink.objects.order_by("-sequence")[0].sequence


def test_paused_destinations_send_nothing_and_resume_where_they_stopped(
    make_events, tmp_path: Path
) -> None:
    make_events(2)
    path = tmp_path / "s.jsonl"
    destination = make_destination(transport=Transport.FILE, path=str(path))
    services.pause(destination)
    assert not services.deliver(destination.pk).claimed
    assert not path.exists()
    services.resume(destination)
    assert deliver_all(destination).sent == 2


def test_replay_from_a_position_and_from_a_time(make_events, tmp_path: Path) -> None:
    make_events(4)
    path = tmp_path / "r.jsonl"
    destination = make_destination(transport=Transport.FILE, path=str(path))
    deliver_all(destination)
    sequences = list(EventChainLink.objects.order_by("sequence").values_list("sequence", flat=True))
    services.replay(destination, from_position=sequences[2])
    deliver_all(destination)
    lines = path.read_text().splitlines()
    replayed = [json.loads(line)["chain"] for line in lines[4:]]
    assert [c["sequence"] for c in replayed] == sequences[2:]
    assert replayed[0]["previous_sequence"] is None
    third = EventChainLink.objects.get(sequence=sequences[1]).event_uuid
    services.replay(destination, from_time=Event.objects.get(event_uuid=third).created)
    deliver_all(destination)
    again = [json.loads(line)["chain"]["sequence"] for line in path.read_text().splitlines()[6:]]
    assert again == sequences[1:]
    report = verify_stream.verify(path.read_text().splitlines(), key=SIGNING_KEY)
    assert report.problems == [] and report.duplicates == 5 and report.restarts == 1


def test_one_worker_at_a_time_holds_a_destination(make_events, tmp_path: Path) -> None:
    make_events(2)
    destination = make_destination(transport=Transport.FILE, path=str(tmp_path / "l.jsonl"))
    assert services._claim(
        destination.pk, "another-worker", __import__("django.utils.timezone").utils.timezone.now()
    )
    run = services.deliver(destination.pk)
    assert not run.claimed and run.sent == 0
    # The other worker's lease expires (it died): the destination is taken over.
    Destination.objects.filter(pk=destination.pk).update(lease_until=None)
    assert deliver_all(destination).sent == 2


def _wait(condition, timeout: float = 5) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_object_storage_gets_one_object_per_batch_through_djangos_storage_api(
    make_events, settings, tmp_path: Path
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "siem-bucket": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "bucket")},
        },
    }
    make_events(5)
    destination = make_destination(
        transport=Transport.STORAGE, storage_alias="siem-bucket", batch_size=2
    )
    assert deliver_all(destination).sent == 5
    objects = sorted((tmp_path / "bucket" / "streams" / "siem").iterdir())
    assert [o.name for o in objects] == [
        "000000000001-000000000002.jsonl",
        "000000000003-000000000004.jsonl",
        "000000000005-000000000005.jsonl",
    ]
    lines = [line for o in objects for line in o.read_text().splitlines()]
    _assert_complete_and_in_order([json.loads(line) for line in lines], lines)


def test_an_unknown_storage_is_refused_per_field() -> None:
    destination = Destination(name="s3", transport=Transport.STORAGE, storage_alias="nope")
    with pytest.raises(ValidationError) as refused:
        destination.full_clean()
    assert 'No storage "nope" in STORAGES' in refused.value.message_dict["storage_alias"][0]
