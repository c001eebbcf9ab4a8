"""Each transport against the real thing: the drawer, a local HTTP server for webhooks, Django's
locmem mail backend (and a closed SMTP port); retries, final failures and masked secrets."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from auditlog.models import Event
from auditlog.sanitize import MASK
from auditlog.services import record_event
from directory.models import Group, User
from notifications import transports
from notifications.dispatch import PIPELINE_APP
from notifications.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationTransport,
)
from notifications.transports import TransportError

pytestmark = pytest.mark.django_db

SECRETS = ("hunter2-hunter2", "abcdef0123456789", "AKIAABCDEFGHIJKLMNOP")


@pytest.fixture
def ana() -> User:
    return User.objects.create_user("ana", "ana@example.com", name="Ana")


@pytest.fixture
def notify(make_rule, ana, commit):
    """Record a login_failed event (by ana unless ``user`` says otherwise) that a rule sends
    to ana through ``transport``; return the delivery."""
    group = Group.objects.create(name="Recipients")
    group.users.add(ana)

    def run(transport: NotificationTransport | None, *, user: Any = ana, **context: Any):
        rule = make_rule(
            name=f"rule-{NotificationDelivery.objects.count()}",
            transports=(transport,) if transport else (),
            destination_group=group,
            severity="warning",
        )
        with commit():
            record_event(action="login_failed", app="tests", context=context, user=user)
        return NotificationDelivery.objects.get(rule=rule)

    return run


def _webhook(server: Any, mode: str = "webhook", **fields: Any) -> NotificationTransport:
    return NotificationTransport.objects.create(
        name=f"{mode}-{NotificationTransport.objects.count()}",
        mode=mode,
        webhook_url=server.url(),
        **fields,
    )


# --- Local ----------------------------------------------------------------------------------------


def test_the_drawer_notification_carries_severity_body_event_and_link(notify, ana) -> None:
    local = NotificationTransport.objects.create(name="drawer")
    delivery = notify(
        local, message="Ana failed to log in", hyperlink="/events/x/", hyperlink_label="Show"
    )
    notification = Notification.objects.get(user=ana)
    assert notification.severity == "warning"
    assert notification.body == "Ana failed to log in"
    assert notification.event is not None and notification.event.action == "login_failed"
    assert (notification.hyperlink, notification.hyperlink_label) == ("/events/x/", "Show")
    assert delivery.status == DeliveryStatus.SENT and delivery.notification == notification


# --- Webhooks -------------------------------------------------------------------------------------


def test_the_generic_webhook_posts_the_default_body(notify, webhook_server) -> None:
    delivery = notify(_webhook(webhook_server), message="Ana failed")
    assert webhook_server.bodies() == [
        {
            "body": "Ana failed",
            "severity": "warning",
            "user_email": "ana@example.com",
            "user_username": "ana",
            "event_user_email": "ana@example.com",
            "event_user_username": "ana",
        }
    ]
    request = webhook_server.received[0]
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert delivery.status == DeliveryStatus.SENT and delivery.messages == ["200", "ok"]


def test_without_an_event_user_the_default_body_has_no_event_user_keys(
    notify, webhook_server
) -> None:
    notify(_webhook(webhook_server), user=None, message="System")
    assert set(webhook_server.bodies()[0]) == {"body", "severity", "user_email", "user_username"}


def test_a_custom_body_template_is_rendered_with_json_types(notify, webhook_server) -> None:
    template = {
        "text": "[{{ severity }}] {{ body }} for {{ user_username }}",
        "country": "{{ event.context.geo.country }}",
        "attempts": "{{ event.context.attempts }}",
        "geo": "{{ event.context.geo }}",
        "inline": "geo={{ event.context.geo }}",
        "missing": "{{ event.context.nope.deeper }}",
        "no_attributes": "{{ user.__class__ }}",
        "{{ event.action }}": [1, True, None],
    }
    hook = _webhook(webhook_server, webhook_body_template=json.dumps(template))
    notify(hook, message="Ana failed", geo={"country": "DE"}, attempts=3)
    assert webhook_server.bodies() == [
        {
            "text": "[warning] Ana failed for ana",
            "country": "DE",
            "attempts": 3,
            "geo": {"country": "DE"},
            "inline": 'geo={"country":"DE"}',
            "missing": None,
            "no_attributes": None,
            "login_failed": [1, True, None],
        }
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"text": "{{ body }}"', "not valid JSON: Expecting ',' delimiter (line 1, column 22)"),
        ('{"text": "{{ secret_key }}"}', "Unknown placeholder {{ secret_key }}"),
        ('{"text": "{{ body|upper }}"}', "{{ body|upper }} is not a placeholder"),
        ('{"text": "{{ __import__(\'os\') }}"}', "is not a placeholder"),
        ('"just a string"', "must be a JSON object or array"),
    ],
)
def test_a_bad_body_template_is_refused_on_save(template: str, message: str) -> None:
    transport = NotificationTransport(
        name="bad",
        mode="webhook",
        webhook_url="https://example.com/",
        webhook_body_template=template,
    )
    with pytest.raises(ValidationError) as caught:
        transport.save()
    assert message in str(caught.value)
    assert not NotificationTransport.objects.filter(name="bad").exists()


def test_a_webhook_transport_needs_an_http_url() -> None:
    with pytest.raises(ValidationError, match="webhook URL is required"):
        NotificationTransport.objects.create(name="no-url", mode="webhook_slack")
    with pytest.raises(ValidationError, match="http:// or https://"):
        NotificationTransport.objects.create(
            name="ftp", mode="webhook", webhook_url="ftp://example.com/"
        )


def test_the_slack_webhook_posts_attachments_with_fields(notify, webhook_server) -> None:
    notify(
        _webhook(webhook_server, mode="webhook_slack"),
        message="Ana failed",
        username="ana",
        attempts=3,
        geo={"country": "DE"},
        reason="x" * 2000,
    )
    (body,) = webhook_server.bodies()
    assert body["username"] == "authentik"
    (attachment,) = body["attachments"]
    assert attachment["title"] == "login_failed"
    assert attachment["color"] == "#fd4b2d"
    assert attachment["footer"]
    assert attachment["fields"][:3] == [
        {"title": "Severity", "value": "warning", "short": True},
        {"title": "Dispatched for user", "value": "ana", "short": True},
        {"title": "Event user", "value": "ana", "short": True},
    ]
    # Then the string context values (in the database's key order; numbers and objects left out).
    context_fields = sorted(attachment["fields"][3:], key=lambda field: field["title"])
    assert context_fields == [
        {"title": "message", "value": "Ana failed"},
        {"title": "reason", "value": "x" * 1024},
        {"title": "username", "value": "ana"},
    ]


def test_slack_sends_at_most_25_fields(notify, webhook_server) -> None:
    notify(
        _webhook(webhook_server, mode="webhook_slack"),
        **{f"field_{index:02}": "value" for index in range(40)},
    )
    fields = webhook_server.bodies()[0]["attachments"][0]["fields"]
    assert len(fields) == 25
    assert all(field["value"] == "value" for field in fields[3:])


def test_a_webhook_follows_a_same_host_redirect_with_its_body(notify, webhook_server) -> None:
    webhook_server.responses = [(307, {"Location": "/moved"}, "")]
    delivery = notify(_webhook(webhook_server), message="Ana failed")
    assert [request.path for request in webhook_server.received] == ["/hook", "/moved"]
    assert webhook_server.bodies()[0] == webhook_server.bodies()[1]
    assert delivery.status == DeliveryStatus.SENT


def test_a_redirect_to_another_host_is_not_followed(notify, webhook_server) -> None:
    webhook_server.responses = [(307, {"Location": webhook_server.url("/x", "localhost")}, "")]
    delivery = notify(_webhook(webhook_server), message="Ana failed")
    assert len(webhook_server.received) == 1
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert "http://localhost" in delivery.last_error and "not followed" in delivery.last_error


def test_a_slow_webhook_times_out(webhook_server, settings) -> None:
    settings.NOTIFICATION_WEBHOOK_TIMEOUT = 1
    webhook_server.delay = 2
    with pytest.raises(TransportError, match="timed out") as caught:
        transports.post_json(webhook_server.url(), {"body": "x"})
    assert caught.value.retryable


# --- Retries and failures -------------------------------------------------------------------------


def test_a_failing_webhook_is_retried_until_it_succeeds(
    notify, webhook_server, eager_retries
) -> None:
    webhook_server.fail_first(3, status=503)
    delivery = notify(_webhook(webhook_server), message="Ana failed")
    assert len(webhook_server.received) == 4
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 4 and delivery.last_error == ""
    assert not Event.objects.filter(action="configuration_error").exists()


def test_the_final_failure_is_recorded_on_the_delivery_and_as_an_event(
    notify, webhook_server, eager_retries, settings
) -> None:
    webhook_server.default = (500, {}, "broken for good")
    hook = _webhook(webhook_server)
    hook.webhook_url = webhook_server.url("/services/T0/B0/s3cr3tpath")
    hook.save()
    delivery = notify(hook, message="Ana failed")
    attempts = settings.NOTIFICATION_MAX_RETRIES + 1
    assert len(webhook_server.received) == attempts
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == attempts
    assert "HTTP 500" in delivery.last_error and "broken for good" in delivery.last_error
    assert delivery.body == "Ana failed"  # the notification itself is kept
    failure = Event.objects.get(action="configuration_error")
    assert failure.app == PIPELINE_APP
    assert failure.context["notification_delivery"] == str(delivery.pk)
    assert "could not deliver to ana" in failure.context["message"]
    assert "s3cr3tpath" not in json.dumps(failure.context) + delivery.last_error


def test_a_client_error_is_not_retried(notify, webhook_server, eager_retries) -> None:
    webhook_server.default = (404, {}, "no such hook")
    delivery = notify(_webhook(webhook_server))
    assert len(webhook_server.received) == 1
    assert delivery.status == DeliveryStatus.FAILED and "HTTP 404" in delivery.last_error


def test_running_a_finished_delivery_again_sends_nothing(notify, webhook_server) -> None:
    from notifications.deliveries import deliver

    delivery = notify(_webhook(webhook_server))
    assert deliver(str(delivery.pk)) == DeliveryStatus.SENT
    assert len(webhook_server.received) == 1


# --- Email ----------------------------------------------------------------------------------------


def test_email_is_sent_with_the_prefixed_subject(notify, ana) -> None:
    transport = NotificationTransport.objects.create(
        name="mail", mode="email", email_subject_prefix="[audit] "
    )
    delivery = notify(transport, message="Ana failed", hyperlink="https://example.com/e/1")
    (message,) = mail.outbox
    assert message.subject == "[audit] login_failed"
    assert message.to == ["ana@example.com"]
    assert "Ana failed" in message.body
    assert "event_user_username: ana" in message.body
    assert "Link: https://example.com/e/1" in message.body
    assert delivery.status == DeliveryStatus.SENT


def test_email_is_skipped_for_a_user_without_an_address(notify, ana) -> None:
    ana.email = ""
    ana.save()
    delivery = notify(NotificationTransport.objects.create(name="mail", mode="email"))
    assert mail.outbox == []
    assert delivery.status == DeliveryStatus.SKIPPED
    assert "no email address" in delivery.messages[0]


def test_an_unreachable_mail_server_is_retried_then_recorded(
    notify, settings, eager_retries
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    delivery = notify(NotificationTransport.objects.create(name="mail", mode="email"))
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == settings.NOTIFICATION_MAX_RETRIES + 1
    assert "Email to ana@example.com failed" in delivery.last_error


# --- Secrets --------------------------------------------------------------------------------------


def _leaky_event(**fields: Any) -> Event:
    """An event whose stored context holds raw secrets (written around the sanitiser, as an
    old row or a bulk import might be)."""
    event = record_event(action="login_failed", app="tests", **fields)
    Event.objects.filter(pk=event.pk).update(
        context={
            "message": f"Login with Authorization: Bearer {SECRETS[1]}",
            "password": SECRETS[0],
            "api_key": SECRETS[2],
            "username": "ana",
        }
    )
    return Event.objects.get(pk=event.pk)


@pytest.mark.parametrize(
    ("mode", "template"),
    [
        ("webhook", ""),
        ("webhook", '{"all": "{{ event }}", "text": "{{ event.context.password }} {{ body }}"}'),
        ("webhook_slack", ""),
    ],
)
def test_secrets_never_leave_through_a_webhook(
    webhook_server, ana, mode: str, template: str
) -> None:
    from notifications.dispatch import notification_content

    transport = _webhook(webhook_server, mode=mode, webhook_body_template=template)
    event = _leaky_event(user=ana)
    content = notification_content(_rule_stub(), event)
    notification = Notification(user=ana, event=event, **content)
    transports.send(transport, notification)
    sent = json.dumps(webhook_server.bodies())
    assert MASK in sent
    assert not any(secret in sent for secret in SECRETS)


def test_secrets_never_leave_by_email(ana) -> None:
    event = _leaky_event(user=ana)
    transport = NotificationTransport.objects.create(name="mail", mode="email")
    notification = Notification(user=ana, event=event, body=event.summary, severity="alert")
    transports.send(transport, notification)
    (message,) = mail.outbox
    assert MASK in message.body
    assert not any(secret in message.body + message.subject for secret in SECRETS)


def _rule_stub() -> Any:
    from notifications.models import NotificationRule

    return NotificationRule(name="stub", match='action = "x"', severity="alert")
