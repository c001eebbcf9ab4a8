"""Screenshots of every page at 1280x800, and again at a phone's 390 px and in the dark theme,
so a person can look at them without starting the server. By default it builds a throw-away
site (its own SQLite file and demo data) and serves it on a free port; --base-url points it at
a running site instead."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple
from urllib.error import URLError
from urllib.request import urlopen

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.browser import VIEWPORT, launch
from project.local_server import free_port

PASSWORD = "screenshots-Password-1"  # noqa: S105 - a throw-away site's admin


class Command(BaseCommand):
    help = (
        "Save a screenshot of every page of the web admin into a folder: at 1280x800, at 390 px"
        " (-narrow) and in the dark theme (-dark)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default="screenshots", help="Folder for the PNG files.")
        parser.add_argument(
            "--events", type=int, default=4000, help="Demo events of the throw-away site."
        )
        parser.add_argument("--base-url", help="Use a running site instead of a throw-away one.")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default=PASSWORD)

    def handle(
        self,
        *args: Any,
        out: str,
        events: int,
        base_url: str | None,
        username: str,
        password: str,
        **options: Any,
    ) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise CommandError("Playwright is not installed (make install).") from None
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="screenshots-") as data_dir:
            server = None
            if base_url is None:
                base_url, server = self._start_site(Path(data_dir), events)
            try:
                with sync_playwright() as playwright:
                    browser = launch(playwright)
                    try:
                        saved = [
                            name
                            for variant in VARIANTS
                            for name in capture(
                                browser, base_url, folder, username, password, variant=variant
                            )
                        ]
                    finally:
                        browser.close()
            finally:
                if server is not None:
                    server.terminate()
                    server.wait(timeout=20)
        for name in saved:
            self.stdout.write(str(folder / name))

    def _start_site(self, data_dir: Path, events: int) -> tuple[str, subprocess.Popen[bytes]]:
        env = {
            **os.environ,
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
            "ADMIN_PASSWORD": PASSWORD,
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "DEBUG": "false",
            "LOG_FILES": "true",  # the process logs page shows the site's own lines
        }
        self.stderr.write(f"Building a throw-away site with {events} demo events…")
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        subprocess.run(  # noqa: S603 - our own manage.py
            [*manage, "bootstrap", "--demo-events", str(events)],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([*manage, "shell", "-c", SCENE], env=env, check=True, capture_output=True)  # noqa: S603
        port = free_port()
        server = subprocess.Popen(  # noqa: S603 - our own manage.py
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urlopen(base_url + "/login/", timeout=2)  # noqa: S310 - our own loopback server
                return base_url, server
            except (URLError, ConnectionError):
                time.sleep(0.2)
        server.terminate()
        raise CommandError("The throw-away site did not start.")


# A few things worth seeing: a changed email (diff), a notification, a token.
SCENE = """
from auditlog.context import acting_user
from auditlog.models import Event
from directory.models import User
from notifications.models import Notification
admin = User.objects.get(username="admin")
with acting_user(admin):
    ana = User.objects.get(username="ana")
    ana.email = "ana.silva@example.org"
    ana.save()
event = Event.objects.filter(action="login_failed").first()
Notification.objects.create(
    user=admin, body="Failed login for ana from an unusual country", severity="alert", event=event
)
Notification.objects.create(
    user=admin, body="Event export generated successfully", hyperlink="/events/",
    hyperlink_label="Download",
)
"""


class Variant(NamedTuple):
    suffix: str  # of the file names: "02-overview-dark.png"
    viewport: dict[str, int]
    color_scheme: str


PHONE = {"width": 390, "height": 844}
VARIANTS = [
    Variant("", VIEWPORT, "light"),
    Variant("-narrow", PHONE, "light"),
    Variant("-dark", VIEWPORT, "dark"),
]


def capture(
    browser: Any,
    base_url: str,
    folder: Path,
    username: str,
    password: str,
    *,
    variant: Variant = VARIANTS[0],
) -> list[str]:
    """Log in, visit each page, save one PNG per page; return the file names."""
    context = browser.new_context(viewport=variant.viewport, color_scheme=variant.color_scheme)
    try:
        return _capture(context.new_page(), base_url, folder, username, password, variant.suffix)
    finally:
        context.close()


def _capture(
    page: Any, base_url: str, folder: Path, username: str, password: str, suffix: str
) -> list[str]:
    saved: list[str] = []

    def shot(name: str) -> None:
        page.screenshot(path=str(folder / f"{name}{suffix}.png"))
        saved.append(f"{name}{suffix}.png")

    def visit(path: str, name: str, wait_for: str | None = None) -> None:
        page.goto(base_url + path)
        if wait_for:
            page.wait_for_selector(wait_for, timeout=15000)
        wait_until_drawn(page)
        shot(name)

    page.goto(base_url + "/login/")
    shot("01-login")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    wait_until_drawn(page)
    shot("02-overview")
    visit("/events/", "03-event-log")
    page.click(".event-row .expand")
    page.wait_for_selector(".detail-row .event-info")
    shot("04-event-log-expanded-row")
    page.click("textarea[data-djangoql]")
    page.keyboard.type("context.geo.")
    page.wait_for_selector(".djangoql-completion li")
    shot("05-search-autocomplete")
    visit(
        "/events/?search=action%20%3D%20%22login%22%20and%20",
        "06-malformed-search",
        "[data-search-error]",
    )
    visit("/events/?search=context.geo.country%20%3D%20%22Germany%22", "07-search-results")

    def first_pk(path: str, **params: str) -> Any:
        # The browser's session cookie also authenticates these API calls.
        return page.request.get(base_url + path, params=params).json()["results"][0]["pk"]

    updated = first_pk("/api/v3/events/events/", search="context.diff.email != None", page_size="1")
    visit(f"/events/{updated}/", "08-event-detail-with-changes", "[data-changes]")
    visit("/directory/users/", "09-users")
    ana = first_pk("/api/v3/core/users/", username="ana")
    visit(f"/directory/users/{ana}/", "10-user-detail-history")
    visit("/directory/groups/", "11-groups")
    visit("/directory/tokens/", "12-tokens")
    page.fill("#id_identifier", f"elastic-agent{suffix}")
    page.click("[data-token-form] button[type=submit]")
    page.wait_for_selector("[data-new-key]")
    shot("13-token-created")
    visit("/system/brands/", "14-brands")
    visit("/system/settings/", "15-settings")
    visit("/", "16-notification-drawer")
    page.click("[data-drawer-toggle]")
    page.wait_for_selector("[data-notifications]")
    shot("16-notification-drawer")
    visit("/events/?search=action%20%3D%20%22login_failed%22", "21-export-requested")
    page.click("[data-export]")
    page.wait_for_selector("[data-toast]:not([hidden])")
    shot("21-export-requested")
    visit("/exports/", "22-data-exports")
    for path, name in EXTRA_PAGES:
        visit(path, name)
    return sorted(set(saved))


# What a page draws by script after it loads; each sets data-ready once drawn, or shows its
# error in a .map-message box instead.
DRAWN_BY_SCRIPT = ("[data-volume-chart]", "[data-event-map]")
FAILED_TO_DRAW = ".map-message"
ALL_READY = """([selector, expected]) =>
    document.querySelectorAll(selector + "[data-ready]").length === expected"""


def wait_until_drawn(page: Any, timeout: float = 15000) -> None:
    """Return once the page's charts and map are drawn and its network is quiet; a chart that
    failed (replaced by its error message) or never finished raises instead, so no screenshot
    is saved with an empty chart."""
    for selector in DRAWN_BY_SCRIPT:
        expected = page.locator(selector).count()
        if expected:
            page.wait_for_function(ALL_READY, arg=[selector, expected], timeout=timeout)
    page.wait_for_load_state("networkidle", timeout=timeout)
    failed = page.locator(FAILED_TO_DRAW)
    if failed.count():
        raise CommandError(f"{page.url} could not draw: {failed.first.inner_text()}")


# Further pages, captured as they are.
EXTRA_PAGES: list[tuple[str, str]] = [
    ("/events/rules/", "17-notification-rules"),
    ("/events/rules/new/", "18-notification-rule-form"),
    ("/events/transports/", "19-notification-transports"),
    ("/events/search-help/", "20-search-help"),
    ("/system/logs/", "21-process-logs"),
    ("/searches/", "23-saved-searches"),
]
