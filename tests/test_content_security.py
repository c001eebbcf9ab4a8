"""Everything the product serves comes from the product: every page sends the strict 'self'
Content-Security-Policy (the API docs included), and no page's HTML or style sheet points a
browser at another site for scripts, styles, fonts or images.

The pages are found by crawling: from the overview, the login page and the API docs, every
same-site link, script, style sheet and image is followed (one example of each URL shape)."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client

from auditlog.demo import load_demo_data
from project.middleware import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db

SEEDS = ["/", "/login/", "/api/v3/schema/swagger/", "/api/v3/schema/redoc/", "/no-such-page/"]
# Links a crawl must not follow: they change state, or leave the site on purpose.
SKIP = re.compile(r"^/(logout/|.*/delete/)")
EXTERNAL = re.compile(r"^(https?:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""", re.IGNORECASE)


class Resources(HTMLParser):
    """The URLs a page makes a browser load (scripts, styles, fonts, images, frames) and the
    URLs it links to."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.linked: list[str] = []
        self.inline_styles: list[str] = []
        self.inline_scripts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in {"script", "img", "iframe", "source", "embed", "audio", "video"}:
            if values.get("src"):
                self.loaded.append(values["src"])
        elif tag == "link" and values.get("href"):
            self.loaded.append(values["href"])  # style sheets, icons, fonts, preconnects alike
        elif tag == "a" and values.get("href"):
            self.linked.append(values["href"])
        elif tag == "form" and values.get("action"):
            self.linked.append(values["action"])
        if values.get("style"):
            self.inline_styles.append(values["style"])
        self._in = None
        if tag == "style":
            self._in = "style"
        elif tag == "script" and not values.get("src") and values.get("type") != "application/json":
            self._in = "script"  # code, not data (json_script's data blocks are not run)

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.inline_styles.append(data)
        elif self._in == "script" and data.strip():
            self.inline_scripts.append(data)


@dataclass(frozen=True)
class Fetched:
    status: int
    content_type: str
    policy: str | None
    text: str


def fetch(client: Client, path: str) -> Fetched:
    response: Any = client.get(path)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return Fetched(
        status=response.status_code,
        content_type=response.get("Content-Type", ""),
        policy=response.get("Content-Security-Policy"),
        text=body.decode(errors="replace"),
    )


def shape(path: str) -> str:
    """One crawl per kind of page: ids and numbers are the same page to us."""
    return re.sub(r"/[0-9a-f-]{8,}|/\d+", "/<id>", path)


def crawl(client: Client, seeds: list[str], limit: int = 250) -> dict[str, Fetched]:
    """GET every same-site page and file reachable from ``seeds``; return the responses by
    path (query strings dropped, except Swagger UI's ?script)."""
    queue = deque(seeds)
    seen_shapes: set[str] = set()
    responses: dict[str, Fetched] = {}
    while queue and len(responses) < limit:
        url = queue.popleft()
        parts = urlsplit(url)
        path = parts.path + ("?script" if parts.query == "script=" else "")
        if parts.netloc not in {"", "testserver"} or SKIP.match(parts.path):
            continue
        if shape(path) in seen_shapes:
            continue
        seen_shapes.add(shape(path))
        response = responses[path] = fetch(client, path)
        if response.content_type.startswith("text/html"):
            found = Resources()
            found.feed(response.text)
            for target in [*found.loaded, *found.linked]:
                if not EXTERNAL.match(target) and not target.startswith(("#", "mailto:", "data:")):
                    queue.append(urljoin(path, target))
        elif response.content_type.startswith("text/css"):
            for target in CSS_URL.findall(response.text):
                if not EXTERNAL.match(target) and not target.startswith("data:"):
                    queue.append(urljoin(path, target))
    return responses


@pytest.fixture
def site(admin_user: Any) -> dict[str, Fetched]:
    load_demo_data(events=60, seed=3)
    client = Client()
    client.force_login(admin_user)
    pages = crawl(client, SEEDS)
    pages.update(crawl(Client(), ["/login/"]))  # the login page as an anonymous visitor sees it
    return pages


def test_the_crawl_reaches_the_pages_and_files_that_matter(site: dict[str, Fetched]) -> None:
    for path in [
        "/",
        "/events/",
        "/login/",
        "/directory/users/",
        "/exports/",
        "/system/settings/",
        "/api/v3/schema/swagger/",
        "/api/v3/schema/swagger/?script",
        "/api/v3/schema/redoc/",
        "/api/v3/schema/redoc/redoc.standalone.js",
        "/no-such-page/",
    ]:
        assert path in site, f"{path} was not reached"
    assert site["/no-such-page/"].status == 404
    html = [path for path, page in site.items() if page.content_type.startswith("text/html")]
    assert len(html) >= 15, html
    assert any(path.startswith("/static/") and path.endswith(".css") for path in site)


def test_every_response_sends_the_strict_policy(site: dict[str, Fetched]) -> None:
    for path, response in site.items():
        policy = response.policy
        assert policy, f"{path} sends no Content-Security-Policy"
        if path == "/api/v3/schema/redoc/":
            assert policy == CONTENT_SECURITY_POLICY.replace(
                "worker-src 'self'", "worker-src 'self' blob:"
            )
        else:
            assert policy == CONTENT_SECURITY_POLICY, path
        assert "http" not in policy and "*" not in policy and "unsafe-eval" not in policy
        assert "script-src 'self';" in policy, path


def test_no_page_loads_anything_from_another_site(site: dict[str, Fetched]) -> None:
    for path, response in site.items():
        if response.content_type.startswith("text/html"):
            found = Resources()
            found.feed(response.text)
            external = [url for url in found.loaded if EXTERNAL.match(url)]
            assert not external, f"{path} loads {external}"
            for style in found.inline_styles:
                assert not [url for url in CSS_URL.findall(style) if EXTERNAL.match(url)], path
            assert not found.inline_scripts, f"{path} has an inline script the policy blocks"
        elif response.content_type.startswith("text/css"):
            urls = CSS_URL.findall(response.text)
            assert not [url for url in urls if EXTERNAL.match(url)], f"{path} loads {urls}"


def test_the_redoc_bundle_has_no_cdn_address_left() -> None:
    response = Client().get("/api/v3/schema/redoc/redoc.standalone.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b"Redoc" in response.content
    assert b"cdn.redoc.ly" not in response.content
    assert b"fonts.googleapis.com" not in response.content


def test_the_api_docs_stay_behind_the_login() -> None:
    for path in ["/api/v3/schema/swagger/", "/api/v3/schema/redoc/", "/api/v3/schema/"]:
        assert Client().get(path).status_code in {401, 403}
