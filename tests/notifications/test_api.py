"""``/api/v3/events/transports/``, ``/events/rules/`` and ``/events/deliveries/``."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from auditlog.models import Event
from auditlog.sanitize import MASK
from auditlog.services import record_event
from directory.models import Group
from notifications.models import (
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
)
from tests.conftest import grant

pytestmark = pytest.mark.django_db

TRANSPORTS = "/api/v3/events/transports/"
RULES = "/api/v3/events/rules/"
DELIVERIES = "/api/v3/events/deliveries/"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


@pytest.fixture
def admin(api_as, admin_user) -> APIClient:
    return api_as(admin_user)


def _names(client: APIClient, url: str, params: dict[str, str]) -> list[str]:
    return [row["name"] for row in client.get(url, params).json()["results"]]


# --- Transports -----------------------------------------------------------------------------------


def test_transport_crud_with_a_masked_webhook_url(admin) -> None:
    created = admin.post(
        TRANSPORTS,
        {"name": "slack", "mode": "webhook_slack", "webhook_url": SLACK_URL, "send_once": True},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == {
        "pk",
        "name",
        "mode",
        "mode_verbose",
        "send_once",
        "email_subject_prefix",
        "webhook_url",
        "webhook_body_template",
    }
    assert body["mode_verbose"] == "Slack Webhook (Slack/Discord)"
    assert body["webhook_url"] == f"https://hooks.slack.com/{MASK}"
    assert body["email_subject_prefix"] == "authentik Notification: "
    url = f"{TRANSPORTS}{body['pk']}/"
    assert admin.get(url).json()["webhook_url"] == f"https://hooks.slack.com/{MASK}"
    # Sending the masked value back keeps the stored URL.
    renamed = admin.put(url, {**body, "name": "chat"}, format="json")
    assert renamed.status_code == 200, renamed.json()
    transport = NotificationTransport.objects.get(pk=body["pk"])
    assert (transport.name, transport.webhook_url) == ("chat", SLACK_URL)
    moved = admin.patch(url, {"webhook_url": "https://chat.example.com/hook"}, format="json")
    assert moved.status_code == 200
    transport.refresh_from_db()
    assert transport.webhook_url == "https://chat.example.com/hook"
    assert admin.delete(url).status_code == 204
    assert not NotificationTransport.objects.exists()


def test_the_webhook_url_never_reaches_the_event_log(admin) -> None:
    admin.post(
        TRANSPORTS,
        {"name": "slack", "mode": "webhook_slack", "webhook_url": SLACK_URL},
        format="json",
    )
    created = Event.objects.get(
        action="model_created", context__model__model_name="notificationtransport"
    )
    assert created.context["diff"]["webhook_url"]["new_value"] == MASK
    assert "secret" not in json.dumps(created.context)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"mode": "webhook"}, "webhook_url", "A webhook URL is required for Generic Webhook."),
        ({"mode": "webhook_slack", "webhook_url": ""}, "webhook_url", "required"),
        ({"mode": "webhook", "webhook_url": "ftp://x.example/"}, "webhook_url", "http://"),
        ({"mode": "webhook", "webhook_url": "not a url"}, "webhook_url", "http://"),
        ({"mode": "webhook", "webhook_url": f"https://x.example/{MASK}"}, "webhook_url", "full"),
        ({"mode": "pigeon"}, "mode", "not a valid choice"),
        (
            {"mode": "webhook", "webhook_url": "https://x.example/", "webhook_body_template": "{"},
            "webhook_body_template",
            "not valid JSON",
        ),
        (
            {
                "mode": "webhook",
                "webhook_url": "https://x.example/",
                "webhook_body_template": '{"a": "{{ os.environ }}"}',
            },
            "webhook_body_template",
            "Unknown placeholder {{ os.environ }}",
        ),
    ],
)
def test_a_bad_transport_is_a_400_naming_the_field(admin, payload, field, message) -> None:
    response = admin.post(TRANSPORTS, {"name": "bad", **payload}, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not NotificationTransport.objects.exists()


def test_switching_a_transport_to_a_webhook_mode_needs_a_url(admin) -> None:
    transport = NotificationTransport.objects.create(name="drawer")
    response = admin.patch(f"{TRANSPORTS}{transport.pk}/", {"mode": "webhook"}, format="json")
    assert response.status_code == 400 and "webhook_url" in response.json()
    transport.refresh_from_db()
    assert transport.mode == "local"


def test_transport_filters(admin) -> None:
    NotificationTransport.objects.create(name="drawer")
    NotificationTransport.objects.create(name="mail", mode="email")
    assert _names(admin, TRANSPORTS, {"mode": "email"}) == ["mail"]
    assert _names(admin, TRANSPORTS, {"name": "drawer"}) == ["drawer"]
    assert _names(admin, TRANSPORTS, {"search": "mai"}) == ["mail"]
    assert _names(admin, TRANSPORTS, {"ordering": "-name"}) == ["mail", "drawer"]


# --- The test action ------------------------------------------------------------------------------


def test_testing_a_local_transport_puts_a_notification_in_my_drawer(admin, admin_user) -> None:
    transport = NotificationTransport.objects.create(name="drawer")
    response = admin.post(f"{TRANSPORTS}{transport.pk}/test/")
    assert response.status_code == 200
    assert response.json() == {"messages": ["Notification created for admin."]}
    notification = Notification.objects.get(user=admin_user)
    assert notification.body == "Test notification from transport drawer"
    assert notification.event is None
    assert not Event.objects.filter(action="custom_notification_test").exists()


def test_testing_a_webhook_posts_to_it_and_reports_the_answer(admin, webhook_server) -> None:
    webhook_server.default = (200, {}, "thanks")
    transport = NotificationTransport.objects.create(
        name="hook", mode="webhook", webhook_url=webhook_server.url()
    )
    response = admin.post(f"{TRANSPORTS}{transport.pk}/test/")
    assert response.status_code == 200
    assert response.json() == {"messages": ["200", "thanks"]}
    (body,) = webhook_server.bodies()
    assert body["user_username"] == "admin" and body["event_user_username"] == "admin"
    assert body["body"] == "Test notification from transport hook"
    assert not NotificationDelivery.objects.exists()


def test_a_failing_test_send_is_a_503_saying_why(admin, webhook_server) -> None:
    webhook_server.default = (500, {}, "on fire")
    transport = NotificationTransport.objects.create(
        name="hook", mode="webhook_slack", webhook_url=webhook_server.url()
    )
    response = admin.post(f"{TRANSPORTS}{transport.pk}/test/")
    assert response.status_code == 503
    assert response.json()["messages"][0].startswith("HTTP 500 from http://127.0.0.1:")
    assert len(webhook_server.received) == 1  # a test is never retried


def test_testing_an_email_transport_mails_me(admin) -> None:
    transport = NotificationTransport.objects.create(name="mail", mode="email")
    response = admin.post(f"{TRANSPORTS}{transport.pk}/test/")
    assert response.json() == {"messages": ["Email sent to admin@example.com."]}
    (message,) = mail.outbox
    assert message.subject == "authentik Notification: custom_notification_test"


# --- Rules ----------------------------------------------------------------------------------------


def test_rule_crud(admin) -> None:
    group = Group.objects.create(name="Security")
    hook = NotificationTransport.objects.create(
        name="hook", mode="webhook", webhook_url="https://x.example/"
    )
    created = admin.post(
        RULES,
        {
            "name": "failed-logins",
            "match": 'action = "login_failed" and context.geo.country != "DE"',
            "severity": "alert",
            "destination_group": str(group.pk),
            "destination_event_user": True,
            "transports": [str(hook.pk)],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["enabled"] is True
    # The group in its full shape, as authentik's client requires (children, roles_obj...).
    group_obj = body["destination_group_obj"]
    assert {key: group_obj[key] for key in ("pk", "num_pk", "name", "is_superuser")} == {
        "pk": str(group.pk),
        "num_pk": group.num_pk,
        "name": "Security",
        "is_superuser": False,
    }
    assert group_obj["children"] == [] and group_obj["roles_obj"] == []
    assert body["transports_obj"] == [
        {"pk": str(hook.pk), "name": "hook", "mode": "webhook", "mode_verbose": "Generic Webhook"}
    ]
    url = f"{RULES}{body['pk']}/"
    patched = admin.patch(url, {"enabled": False, "transports": []}, format="json")
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["transports"] == []
    assert admin.delete(url).status_code == 204
    assert not NotificationRule.objects.exists()


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ('action = "login" and actoin = "x"', "Unknown field: actoin. Possible choices are"),
        ('action = "login" and actoin = "x"', "(line 1, column 22)"),
        ("action =", "(line 1, column 9)"),
        ('context.geo.country = "Atlantis"', "Unknown country 'Atlantis'"),
        ("login failed", "Invalid query"),
        ("", "This field may not be blank."),
    ],
)
def test_a_bad_match_is_a_400_naming_the_error_and_its_position(admin, match, message) -> None:
    response = admin.post(RULES, {"name": "bad", "match": match}, format="json")
    assert response.status_code == 400
    assert message in response.json()["match"][0]
    assert not NotificationRule.objects.exists()


def test_authentiks_client_creates_a_rule_that_matches_nothing_until_given_a_match(
    admin, security_group, commit
) -> None:
    """authentik's rules have no match (they bind policies); its generated client sends
    exactly these fields. The rule is valid and, like an authentik rule without policies,
    never fires until a match is set."""
    group, _ = security_group
    transport = NotificationTransport.objects.create(name="drawer")
    # authentik-client 2026.8.5's NotificationRuleRequest, serialised: its only properties.
    body = json.dumps(
        {
            "name": "from-authentik",
            "transports": [str(transport.pk)],
            "severity": "alert",
            "destination_group": str(group.pk),
            "destination_event_user": True,
        }
    )
    response = admin.post(RULES, body, content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["match"] == ""
    assert created["destination_group"] == str(group.pk)
    rule = NotificationRule.objects.get(name="from-authentik")
    assert (rule.enabled, rule.severity, rule.destination_group, rule.match) == (
        True,
        "alert",
        group,
        "",
    )
    assert list(rule.transports.all()) == [transport]

    with commit():
        record_event(action="login_failed", app="tests")
        record_event(action="system_exception", app="tests")
    assert not NotificationDelivery.objects.exists()

    response = admin.patch(
        f"{RULES}{rule.pk}/", {"match": 'action = "login_failed"'}, format="json"
    )
    assert response.status_code == 200, response.content
    with commit():
        record_event(action="login_failed", app="tests")
    assert sorted(
        NotificationDelivery.objects.filter(rule=rule).values_list("user__username", flat=True)
    ) == ["ana", "ben"]


def test_a_rule_whose_stored_query_broke_can_still_be_disabled_but_not_enabled(admin) -> None:
    rule = NotificationRule.objects.create(name="old", match='action = "login"')
    NotificationRule.objects.filter(pk=rule.pk).update(match="actoin = 1")
    url = f"{RULES}{rule.pk}/"
    assert admin.patch(url, {"enabled": False}, format="json").status_code == 200
    refused = admin.patch(url, {"enabled": True}, format="json")
    assert refused.status_code == 400
    assert "Unknown field: actoin" in refused.json()["match"][0]
    rule.refresh_from_db()
    assert rule.enabled is False


def test_a_rule_name_is_unique(admin) -> None:
    NotificationRule.objects.create(name="one", match='action = "login"')
    response = admin.post(RULES, {"name": "one", "match": 'action = "login"'}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_rule_filters(admin) -> None:
    group = Group.objects.create(name="Security")
    NotificationRule.objects.create(
        name="alpha", match='action = "login"', destination_group=group, severity="alert"
    )
    NotificationRule.objects.create(name="beta", match='action = "logout"', enabled=False)
    assert _names(admin, RULES, {"destination_group__name": "Security"}) == ["alpha"]
    assert _names(admin, RULES, {"name": "beta"}) == ["beta"]
    assert _names(admin, RULES, {"severity": "alert"}) == ["alpha"]
    assert _names(admin, RULES, {"enabled": "false"}) == ["beta"]
    assert _names(admin, RULES, {"search": "logout"}) == ["beta"]


# --- Deliveries -----------------------------------------------------------------------------------


def test_deliveries_are_listed_read_only(admin, admin_user, make_rule, commit) -> None:
    group = Group.objects.create(name="Security")
    group.users.add(admin_user)
    rule = make_rule(destination_group=group)
    with commit():
        event = record_event(action="login_failed", app="tests")
    body = admin.get(DELIVERIES).json()
    (row,) = body["results"]
    assert row["rule"] == str(rule.pk) and row["rule_name"] == rule.name
    assert row["event"] == str(event.pk) and row["event_action"] == "login_failed"
    assert (row["user"], row["username"]) == (admin_user.pk, "admin")
    assert (row["status"], row["attempts"], row["mode"]) == ("sent", 1, "local")
    assert row["transport"] is None and row["notification"] is not None
    assert admin.get(DELIVERIES, {"status": "failed"}).json()["results"] == []
    assert admin.get(DELIVERIES, {"event": str(event.pk)}).json()["pagination"]["count"] == 1
    assert admin.post(DELIVERIES, {}, format="json").status_code == 405
    assert admin.delete(f"{DELIVERIES}{row['pk']}/").status_code == 405


# --- Refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["nobody", "auditor"])
def test_users_without_the_permissions_are_refused(request, api_as, persona) -> None:
    client = api_as(request.getfixturevalue(persona))
    transport = NotificationTransport.objects.create(name="drawer")
    rule = NotificationRule.objects.create(name="r", match='action = "login"')
    for url in (
        TRANSPORTS,
        RULES,
        DELIVERIES,
        f"{TRANSPORTS}{transport.pk}/",
        f"{RULES}{rule.pk}/",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(TRANSPORTS, {"name": "x"}, format="json").status_code == 403
    assert client.post(RULES, {"name": "x", "match": 'action = "login"'}).status_code == 403
    assert client.patch(f"{RULES}{rule.pk}/", {"enabled": False}).status_code == 403
    assert client.delete(f"{TRANSPORTS}{transport.pk}/").status_code == 403
    assert client.post(f"{TRANSPORTS}{transport.pk}/test/").status_code == 403
    assert NotificationRule.objects.get().enabled is True
    assert NotificationTransport.objects.count() == 1
    assert not Notification.objects.exists()


def test_reading_transports_does_not_allow_testing_or_changing_them(api_as, nobody) -> None:
    client = api_as(grant(nobody, "notifications.view_notificationtransport"))
    transport = NotificationTransport.objects.create(name="drawer")
    assert client.get(TRANSPORTS).status_code == 200
    assert client.post(f"{TRANSPORTS}{transport.pk}/test/").status_code == 403
    assert client.patch(f"{TRANSPORTS}{transport.pk}/", {"name": "x"}).status_code == 403
    assert not Notification.objects.exists()


def test_a_user_with_only_the_rule_permissions_manages_rules_only(api_as, nobody) -> None:
    client = api_as(
        grant(
            nobody,
            "notifications.view_notificationrule",
            "notifications.add_notificationrule",
            "notifications.change_notificationrule",
        )
    )
    response = client.post(RULES, {"name": "r", "match": 'action = "login"'}, format="json")
    assert response.status_code == 201
    assert client.get(TRANSPORTS).status_code == 403
    assert client.get(DELIVERIES).status_code == 403


def test_anonymous_requests_are_refused(db) -> None:
    assert APIClient().get(RULES).status_code == 403
    assert APIClient().get(TRANSPORTS).status_code == 403
    assert APIClient().get(DELIVERIES).status_code == 403


def test_the_schema_describes_the_new_endpoints(admin_user) -> None:
    client = Client()
    client.force_login(admin_user)
    paths = json.loads(client.get("/api/v3/schema/", {"format": "json"}).content)["paths"]
    for path in (
        "/api/v3/events/transports/",
        "/api/v3/events/transports/{pk}/test/",
        "/api/v3/events/rules/",
        "/api/v3/events/rules/{pk}/",
        "/api/v3/events/deliveries/",
        "/api/v3/events/deliveries/{pk}/",
    ):
        assert path in paths, path
