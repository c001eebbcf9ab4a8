"""The management commands other issues and users rely on."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK
from directory.models import Token, TokenIntent, User
from tests.conftest import REPO

pytestmark = pytest.mark.django_db


def test_create_api_token_prints_only_the_new_key() -> None:
    user = User.objects.create_user("siem")
    out = StringIO()
    call_command("create_api_token", "siem", "--identifier", "elastic", stdout=out)
    key = out.getvalue().strip()
    token = Token.objects.get(identifier="elastic")
    assert key == token.key
    assert out.getvalue() == key + "\n"
    assert token.intent == TokenIntent.API
    assert token.user == user
    assert timedelta(days=364) < token.expires - timezone.now() <= timedelta(days=365)


def test_create_api_token_expiry_can_be_chosen_or_switched_off() -> None:
    User.objects.create_user("siem")
    call_command(
        "create_api_token", "siem", "--identifier", "week", "--expires-days", "7", stdout=StringIO()
    )
    call_command(
        "create_api_token",
        "siem",
        "--identifier",
        "forever",
        "--expires-days",
        "0",
        stdout=StringIO(),
    )
    week = Token.objects.get(identifier="week")
    assert timedelta(days=6) < week.expires - timezone.now() <= timedelta(days=7)
    assert Token.objects.get(identifier="forever").expiring is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ghost"], "User 'ghost' does not exist."),
        (
            ["siem", "--expires-days", "-1"],
            "--expires-days must be 0 (never) or a positive number of days.",
        ),
        (["siem", "--identifier", "taken"], "A token with the identifier 'taken' already exists."),
    ],
)
def test_create_api_token_refuses_bad_input(args: list[str], message: str) -> None:
    user = User.objects.create_user("siem")
    Token.objects.create(user=user, identifier="taken", intent=TokenIntent.API)
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("create_api_token", *args, stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_a_failing_command_exits_non_zero_with_one_readable_line() -> None:
    from django.conf import settings

    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(REPO / "var")}
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{database['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        )
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", "ghost"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["CommandError: User 'ghost' does not exist."]


def test_demo_data_fills_a_realistic_directory_and_events() -> None:
    out = StringIO()
    call_command("demo_data", "--events", "2000", "--seed", "7", stdout=out, stderr=StringIO())
    assert (
        Event.objects.filter(
            app__in=[
                "auditlog.signals",
                "auditlog.capture",
                "authentik.providers.oauth2.views.authorize",
            ]
        ).count()
        >= 1500
    )
    demo = Event.objects.exclude(action__in=[EventAction.MODEL_CREATED]).filter(
        created__lt=timezone.now() - timedelta(minutes=1)
    )
    assert demo.count() > 1800
    assert {"ana", "akadmin"} <= set(User.objects.values_list("username", flat=True))
    # Spread over the last 30 days.
    oldest = demo.order_by("created").first().created
    assert (
        timezone.now() - timedelta(days=30, minutes=1)
        <= oldest
        < timezone.now() - timedelta(days=25)
    )
    # Logins from many countries, located by the bundled city database.
    countries = set(
        Event.objects.filter(action=EventAction.LOGIN).values_list(
            "context__geo__country", flat=True
        )
    )
    assert len(countries - {None}) >= 20
    # Failed logins with the password masked; model changes with diffs.
    failed = Event.objects.filter(action=EventAction.LOGIN_FAILED).first()
    assert failed.context["password"] == MASK
    assert Event.objects.filter(action=EventAction.MODEL_UPDATED, context__has_key="diff").exists()
    assert Event.objects.filter(context__authorized_application__name="My app").exists()
    assert "2000 events" in out.getvalue()


def test_demo_data_is_deterministic_for_a_seed() -> None:
    call_command("demo_data", "--events", "50", "--seed", "3", stdout=StringIO(), stderr=StringIO())
    first = sorted(Event.objects.filter(action=EventAction.LOGIN).values_list("pk", flat=True))
    Event.objects.all().delete()
    call_command("demo_data", "--events", "50", "--seed", "3", stdout=StringIO(), stderr=StringIO())
    second = sorted(Event.objects.filter(action=EventAction.LOGIN).values_list("pk", flat=True))
    assert first == second and first


def test_demo_data_refuses_a_negative_count() -> None:
    with pytest.raises(CommandError, match=r"--events must be zero or more\."):
        call_command("demo_data", "--events", "-5", stdout=StringIO())
