"""The Data Exports page in a real browser: a click on a row does only what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auditlog.models import Event, EventAction
from exports.models import DataExport, ExportStatus
from exports.services import delete_export, request_export
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_download_and_cells_of_an_export_row_request_no_new_export(page: Any, admin: Any) -> None:
    Event(action=EventAction.LOGIN_FAILED, app="tests", context={"username": "ana"}).save()
    request_export(user=admin, model=Event, query_params={}, export_format="csv")
    assert DataExport.objects.get().status == ExportStatus.COMPLETED
    log_in(page)
    page.goto("/exports/")
    posts: list[str] = []
    page.on("request", lambda request: request.method != "GET" and posts.append(request.url))
    row = page.locator(".export-row").first
    assert "Finished" in row.inner_text()
    for cell in row.locator("td:not(.toggle-col):not(.actions)").all():
        cell.click()
    with page.expect_download() as download_info:
        row.locator("a[data-download]").click()
    assert Path(download_info.value.path()).read_text().count("login_failed") == 1
    page.wait_for_timeout(500)  # a stray request and its toast would have come by now
    assert posts == []  # before the fix: POST /exports/<pk>&format=csv, a 404
    assert page.locator("[data-toast]").is_hidden()
    assert "could not be requested" not in page.content()
    assert DataExport.objects.count() == 1
    # The Export button of a list still requests an export.
    page.goto("/events/")
    page.click("button[data-export]")
    page.locator("[data-toast]", has_text="processed in the background").wait_for()
    assert DataExport.objects.count() == 2


def test_pages_load_with_an_icon_and_no_missing_file(page: Any, admin: Any) -> None:
    missing: list[str] = []
    page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
    log_in(page)
    page.goto("/")
    icon = page.evaluate(
        "fetch('/favicon.ico').then(r => r.status + ' ' + r.headers.get('content-type'))"
    )
    assert icon == "200 image/vnd.microsoft.icon"
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(href).status == 200
    headers = page.locator("[data-recent-events] thead th[scope=col]").all_inner_texts()
    assert headers == ["Action", "User", "Creation date", "Client IP"]
    assert missing == []


def test_the_drawers_download_link_of_a_deleted_export_says_so(page: Any, admin: Any) -> None:
    export = request_export(user=admin, model=Event, query_params={}, export_format="csv")
    delete_export(export=DataExport.objects.get(pk=export.pk))
    log_in(page)
    page.goto("/")
    page.click("[data-drawer-toggle]")
    link = page.locator("a[data-notification-link]", has_text="Download")
    link.wait_for()
    with page.expect_response(lambda response: "/download/" in response.url) as answer:
        link.click()
    assert answer.value.status == 404
    page.locator("text=This export was deleted").wait_for()
    page.click("text=Go to Data Exports")
    page.wait_for_url("**/exports/")
    assert "No data exports yet" in page.content()
