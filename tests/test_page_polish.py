"""Small things a daily user meets: the site's icon, and the dashboard's column headers."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from auditlog.models import Event, EventAction
from directory.models import User

pytestmark = pytest.mark.django_db


def test_favicon_ico_is_the_products_icon_for_anyone() -> None:
    response = Client().get("/favicon.ico")  # signed out: browsers ask before anyone logs in
    assert response.status_code == 200
    assert response["Content-Type"] == "image/vnd.microsoft.icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert b"PNG" in response.content[:40]
    assert "max-age" in response["Cache-Control"]
    assert "img-src 'self'" in response["Content-Security-Policy"]
    assert Client().head("/favicon.ico").status_code == 200
    assert Client().post("/favicon.ico").status_code == 405


def test_pages_name_the_svg_icon_which_is_served(admin_user: User) -> None:
    client = Client()
    login = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/auditlog/favicon.svg" type="image/svg+xml">' in login
    client.force_login(admin_user)
    assert 'rel="icon" href="/static/auditlog/favicon.svg"' in client.get("/").content.decode()
    path = finders.find("auditlog/favicon.svg")
    assert path is not None
    with open(path, encoding="utf-8") as svg:
        assert svg.read().startswith("<svg")


def test_recent_events_on_the_dashboard_have_column_headers(admin_user: User) -> None:
    Event(action=EventAction.LOGIN, app="tests", user={"pk": 1, "username": "ana"}).save()
    client = Client()
    client.force_login(admin_user)
    html = client.get("/").content.decode()
    table = html[
        html.index("data-recent-events") : html.index("</table>", html.index("data-recent-events"))
    ]
    headers = re.findall(r'<th scope="col">([^<]+)</th>', table)
    assert headers == ["Action", "User", "Creation date", "Client IP"]
    first_row = table[table.index("<tbody>") :]
    assert first_row.count("<td") >= len(headers)
    assert "ana" in first_row
