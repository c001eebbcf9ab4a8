"""Shared fixtures: the three personas (an administrator, an auditor who may only read, and a
user with no rights), API clients that authenticate like real clients, and test data."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from auditlog import enrich
from auditlog.models import forget_retention
from auditlog.suggestions import forget_introspection
from directory import brands
from directory.models import Group, Token, TokenIntent, User
from directory.services import create_api_token
from project import celery_app

REPO = Path(__file__).resolve().parent.parent
AUDITOR_PERMISSIONS = (
    "auditlog.view_event",
    "directory.view_user",
    "directory.view_group",
    "directory.view_brand",
)


def geoip_dir() -> Path | None:
    """MaxMind's test databases (known answers), shipped next to the repository."""
    for candidate in (
        os.environ.get("GEOIP_TEST_DIR"),
        REPO.parent / "shared" / "geoip",
        Path("/work/shared/geoip"),
    ):
        if candidate and (Path(candidate) / "GeoIP2-City-Test.mmdb").exists():
            return Path(candidate)
    return None


@pytest.fixture(autouse=True, scope="session")
def _eager_celery() -> None:
    """Tasks run in-process in tests, except where a test starts a real worker.

    Celery's guard against waiting on a result inside a task is one flag for the whole process,
    which an eager task running in another thread (a live server's request sealing its events)
    raises for a moment: a test that waits on an eager result says
    ``.get(disable_sync_subtasks=False)``, since it is not inside a task."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # PBKDF2's deliberate slowness is not what these tests measure.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    brands.forget_brands()
    forget_retention()
    enrich._lookup_city.cache_clear()
    enrich._lookup_asn.cache_clear()
    forget_introspection()
    yield
    brands.forget_brands()
    forget_retention()


@pytest.fixture(autouse=True)
def _reads_off(settings: Any) -> None:
    """Reads of the trail are recorded as events (auditlog/reads.py), which would change every
    exact event count in the suite; the tests of reads turn them back on (``reads_on``)."""
    settings.AUDIT_READS = False


@pytest.fixture
def reads_on(settings: Any) -> Iterator[None]:
    """Reads recorded, with an empty cache (no window left open by another test)."""
    from django.core.cache import cache

    settings.AUDIT_READS = True
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def geoip_dbs(settings: Any) -> Path:
    """Point the enrichment at MaxMind's test databases."""
    directory = geoip_dir()
    if directory is None:
        pytest.skip("MaxMind's test databases are not available (set GEOIP_TEST_DIR)")
    settings.GEOIP_CITY_DB = str(directory / "GeoIP2-City-Test.mmdb")
    settings.GEOIP_ASN_DB = str(directory / "GeoLite2-ASN-Test.mmdb")
    enrich._lookup_city.cache_clear()
    enrich._lookup_asn.cache_clear()
    return directory


def grant(user: User, *names: str) -> User:
    """Give ``user`` the ``app_label.codename`` permissions directly."""
    for name in names:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # Django caches permissions per instance; hand back a fresh one.
    return User.objects.get(pk=user.pk)


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("admin", "admin@example.com", "correct-horse-battery-1")


@pytest.fixture
def auditor(db: None) -> User:
    user = User.objects.create_user("auditor", "auditor@example.com", "auditor-password-1")
    group = Group.objects.create(name="Test auditors")
    for name in AUDITOR_PERMISSIONS:
        app_label, codename = name.split(".", 1)
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    group.users.add(user)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def nobody(db: None) -> User:
    return User.objects.create_user("nobody", "nobody@example.com", "nobody-password-1")


@pytest.fixture
def make_token(db: None) -> Callable[..., str]:
    def make(user: User, intent: str = TokenIntent.API, **kwargs: Any) -> str:
        if intent == TokenIntent.API and not kwargs:
            return create_api_token(user=user).key
        return Token.objects.create(
            user=user,
            intent=intent,
            identifier=f"{user.username}-{intent}-{Token.objects.count()}",
            **kwargs,
        ).key

    return make


@pytest.fixture
def api_as(make_token: Callable[..., str]) -> Callable[[User | None], APIClient]:
    """An API client that sends ``Authorization: Bearer <key>`` for the given user."""

    def client_for(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user)}")
        return client

    return client_for


@pytest.fixture(params=["triggers", "signals"])
def capture_path(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run a capture test on each capture path the database has: PostgreSQL's triggers and
    the signals (PostgreSQL with AUDIT_DB_CAPTURE off, and SQLite, where they are the only
    path)."""
    from django.db import connection

    if request.param == "triggers" and connection.vendor != "postgresql":
        pytest.skip("database-side capture is PostgreSQL's")
    settings.AUDIT_DB_CAPTURE = request.param == "triggers"
    return str(request.param)
