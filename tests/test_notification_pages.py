"""The Notification Rules and Transports pages."""

from __future__ import annotations

import pytest
from django.test import Client

from auditlog.models import Event
from auditlog.sanitize import MASK
from directory.models import Brand, Group
from notifications.models import (
    DeliveryStatus,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
    TransportMode,
)
from tests.conftest import grant

pytestmark = pytest.mark.django_db

SECRET_HOOK = "https://hooks.example.com/services/T000/B000/super-secret-path"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def transport(db) -> NotificationTransport:
    return NotificationTransport.objects.create(
        name="ops-hook", mode=TransportMode.WEBHOOK, webhook_url=SECRET_HOOK
    )


def test_the_pages_need_their_permissions(nobody, transport) -> None:
    rule = NotificationRule.objects.create(name="r", match='action = "login"')
    urls = {
        "/events/rules/": "notifications.view_notificationrule",
        "/events/rules/new/": "notifications.add_notificationrule",
        f"/events/rules/{rule.pk}/": "notifications.change_notificationrule",
        "/events/transports/": "notifications.view_notificationtransport",
        "/events/transports/new/": "notifications.add_notificationtransport",
        f"/events/transports/{transport.pk}/": "notifications.change_notificationtransport",
    }
    for url, permission in urls.items():
        assert Client().get(url).status_code == 302, url
        assert client_for(nobody).get(url).status_code == 403, url
        assert client_for(grant(nobody, permission)).get(url).status_code == 200, url
    assert client_for(nobody).post(f"/events/rules/{rule.pk}/delete/").status_code == 403
    assert NotificationRule.objects.filter(pk=rule.pk).exists()


def test_the_rule_list_shows_the_shipped_defaults_and_links_to_their_events(admin_user) -> None:
    html = client_for(admin_user).get("/events/rules/").content.decode()
    assert "default-notify-exception" in html
    assert "Matching events" in html
    assert "/events/?search=" in html


def test_a_rule_with_a_bad_match_is_refused_with_the_position(admin_user) -> None:
    response = client_for(admin_user).post(
        "/events/rules/new/",
        {"name": "bad", "enabled": "on", "severity": "alert", "match": 'actoin = "login"'},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown field: actoin" in html
    assert "column 1" in html
    assert not NotificationRule.objects.filter(name="bad").exists()


def test_creating_a_rule_through_the_page(admin_user, transport) -> None:
    group = Group.objects.create(name="Security")
    response = client_for(admin_user).post(
        "/events/rules/new/",
        {
            "name": "failed-abroad",
            "enabled": "on",
            "severity": "warning",
            "match": 'action = "login_failed" and context.geo.country != "DE"',
            "destination_group": str(group.pk),
            "transports": [str(transport.pk)],
        },
    )
    assert response.status_code == 302
    rule = NotificationRule.objects.get(name="failed-abroad")
    assert rule.destination_group == group
    assert list(rule.transports.all()) == [transport]
    assert Event.objects.filter(
        action="model_created",
        context__model__name="failed-abroad",
        context__model__model_name="notificationrule",
    ).exists()


def test_the_webhook_url_is_masked_and_kept_when_the_mask_is_sent_back(
    admin_user, transport
) -> None:
    client = client_for(admin_user)
    listing = client.get("/events/transports/").content.decode()
    assert "super-secret-path" not in listing
    page = client.get(f"/events/transports/{transport.pk}/").content.decode()
    assert "super-secret-path" not in page
    assert f"https://hooks.example.com/{MASK}" in page
    response = client.post(
        f"/events/transports/{transport.pk}/",
        {
            "name": "ops-hook-renamed",
            "mode": "webhook",
            "webhook_url": f"https://hooks.example.com/{MASK}",
            "email_subject_prefix": "x",
        },
    )
    assert response.status_code == 302
    transport.refresh_from_db()
    assert transport.name == "ops-hook-renamed"
    assert transport.webhook_url == SECRET_HOOK


def test_a_webhook_transport_needs_a_url(admin_user) -> None:
    response = client_for(admin_user).post(
        "/events/transports/new/",
        {"name": "hook", "mode": "webhook", "webhook_url": "", "email_subject_prefix": ""},
    )
    assert response.status_code == 400
    assert "A webhook URL is required" in response.content.decode()
    response = client_for(admin_user).post(
        "/events/transports/new/",
        {"name": "hook", "mode": "webhook", "webhook_url": "ftp://x", "email_subject_prefix": ""},
    )
    assert response.status_code == 400


def test_failed_deliveries_are_visible(admin_user, transport) -> None:
    NotificationDelivery.objects.create(
        user=admin_user,
        transport=transport,
        transport_name="ops-hook",
        rule_name="failed-abroad",
        mode=TransportMode.WEBHOOK,
        body="x",
        status=DeliveryStatus.FAILED,
        attempts=6,
        last_error="HTTP 500 from https://hooks.example.com",
    )
    html = client_for(admin_user).get("/events/transports/").content.decode()
    assert "Recent deliveries" in html
    assert "HTTP 500 from https://hooks.example.com" in html
    assert "Failed" in html


def test_the_fields_of_the_other_modes_neither_fail_nor_change_the_transport(
    admin_user, transport
) -> None:
    # A browser without script sends every field; those of the other modes are ignored.
    client = client_for(admin_user)
    response = client.post(
        "/events/transports/new/",
        {
            "name": "mail",
            "mode": "email",
            "webhook_url": "ftp://not-a-webhook",
            "webhook_body_template": "{{ unclosed",
            "email_subject_prefix": "[Audit] ",
        },
    )
    assert response.status_code == 302
    mail = NotificationTransport.objects.get(name="mail")
    assert (mail.webhook_url, mail.webhook_body_template) == ("", "")
    assert mail.email_subject_prefix == "[Audit] "
    response = client.post(
        f"/events/transports/{transport.pk}/",
        {"name": "ops-hook", "mode": "webhook", "webhook_url": MASK, "email_subject_prefix": "x"},
    )
    assert response.status_code == 302
    transport.refresh_from_db()
    assert transport.webhook_url == SECRET_HOOK
    assert transport.email_subject_prefix == "authentik Notification: "  # kept, not "x"
    # The chosen mode's fields are still validated.
    response = client.post(
        "/events/transports/new/",
        {"name": "hook", "mode": "webhook", "webhook_url": "ftp://x", "email_subject_prefix": ""},
    )
    assert response.status_code == 400
    assert "Enter a valid http:// or https:// URL." in response.content.decode()


def test_a_new_transport_prefixes_email_subjects_with_the_brand_name(admin_user) -> None:
    Brand.objects.update_or_create(default=True, defaults={"name": "Acme Audit"})
    page = client_for(admin_user).get("/events/transports/new/").content.decode()
    assert 'value="Acme Audit Notification: "' in page
    assert "authentik Notification" not in page
    assert 'data-mode-fields="webhook webhook_slack"' in page
    assert 'data-mode-fields="email"' in page
