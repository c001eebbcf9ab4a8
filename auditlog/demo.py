"""Realistic demo data: a small directory and N events spread over the last 30 days.

The events look like what authentik records: logins from many countries (real public addresses
the city database knows, so maps and geo search work), failed logins, logouts, application
authorisations, model changes with diffs, and the occasional exception. Everything is
deterministic for a given seed.

Longer than 500 lines on purpose: most of it is the data (names, places, applications, the
shapes of each kind of event) that makes the demo look like a real installation.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from typing import Any

from django.db import transaction
from django.utils import timezone

from auditlog.bulk import BATCH_SIZE, EventRow
from auditlog.context import audit_ignore
from auditlog.enrich import city_db, city_to_dict
from auditlog.models import EventAction, current_retention
from auditlog.sanitize import MASK, get_user, model_to_dict
from auditlog.services import EventItem, record_events
from directory.models import Brand, Group, Token, TokenIntent, User, UserType
from directory.roles import ensure_default_groups

FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Elif",
    "Farah",
    "Giulia",
    "Hiro",
    "Ines",
    "Jonas",
    "Kwame",
    "Lena",
    "Mateo",
    "Nadia",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoë",
    "Amara",
    "Bruno",
    "Carla",
    "Diego",
)
LAST_NAMES = (
    "Silva",
    "Müller",
    "Kowalski",
    "Okafor",
    "Tanaka",
    "Haddad",
    "Rossi",
    "Novak",
    "Larsen",
    "García",
    "Nguyen",
    "Schmidt",
    "Dubois",
    "Ivanova",
    "Patel",
    "Johansson",
    "Costa",
    "Kim",
)
GROUPS = ("Engineering", "Sales", "Support", "Finance", "Contractors", "On-call")
APPLICATIONS = (
    "My app",
    "GitLab",
    "Grafana",
    "Nextcloud",
    "Jira",
    "Vault",
    "Kibana",
    "Wiki.js",
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/127.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "python-requests/2.32.3",
    "Elastic-Filebeat/8.15.0 (linux; amd64)",
)
FAILED_USERNAMES = ("admin", "root", "test", "administrator", "guest", "user1")
# Addresses from the MaxMind test databases: known answers when a test database is configured.
KNOWN_ADDRESSES = ("2.125.160.216", "81.2.69.142", "67.43.156.0", "89.160.20.112", "216.160.83.56")
PRIVATE_ADDRESSES = ("10.0.0.1", "10.0.4.17", "192.168.1.20", "172.16.8.3")
FLOW_PATH = "/api/v3/flows/executor/default-authentication-flow/"

# (action, weight): roughly what a busy identity provider's log looks like.
ACTION_WEIGHTS = (
    (EventAction.LOGIN, 34),
    (EventAction.LOGIN_FAILED, 9),
    (EventAction.LOGOUT, 14),
    (EventAction.AUTHORIZE_APPLICATION, 16),
    (EventAction.MODEL_UPDATED, 7),
    (EventAction.MODEL_CREATED, 3),
    (EventAction.MODEL_DELETED, 1),
    (EventAction.PASSWORD_SET, 2),
    (EventAction.USER_WRITE, 2),
    (EventAction.SECRET_VIEW, 1),
    (EventAction.EMAIL_SENT, 3),
    (EventAction.POLICY_EXECUTION, 4),
    (EventAction.SUSPICIOUS_REQUEST, 1),
    (EventAction.SYSTEM_EXCEPTION, 1),
    (EventAction.CONFIGURATION_ERROR, 1),
    (EventAction.SYSTEM_TASK_EXECUTION, 1),
)


@dataclass
class DemoDirectory:
    users: list[User]
    groups: list[Group]
    tokens: list[Token]
    brands: list[dict[str, Any]]
    applications: list[dict[str, Any]]
    addresses: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)


@dataclass
class DemoSummary:
    users: int
    groups: int
    events: int
    countries: int


def load_demo_data(
    *, events: int, seed: int = 42, progress: Callable[[int], object] | None = None
) -> DemoSummary:
    """Create the demo directory (idempotent) and write ``events`` demo events."""
    # One generator per phase, so what exists already does not shift the events' randomness.
    directory = build_directory(random.Random(seed))
    directory.addresses = sample_addresses(random.Random(seed + 1))
    written = record_demo_events(
        generate_events(random.Random(seed + 2), directory, events), progress=progress
    )
    countries = {geo["country"] for _, geo in directory.addresses if geo and geo.get("country")}
    return DemoSummary(
        users=len(directory.users),
        groups=len(directory.groups),
        events=written,
        countries=len(countries),
    )


def record_demo_events(
    rows: Iterable[EventRow], *, progress: Callable[[int], object] | None = None
) -> int:
    """Record ``rows`` through the recording service as an import (pk, created and expires
    kept; a pk stored already is skipped), one transaction per batch; return how many were
    written."""
    written = 0
    iterator = iter(rows)
    while batch := list(islice(iterator, BATCH_SIZE)):
        written += len(record_events([_as_item(row) for row in batch], keep_identity=True))
        if progress is not None:
            progress(len(batch))
    return written


def _as_item(row: EventRow) -> EventItem:
    return {
        "pk": row.event_uuid,
        "user": row.user,
        "action": row.action,
        "app": row.app,
        "context": row.context,
        "client_ip": row.client_ip,
        "created": row.created,
        "brand": row.brand,
        "expires": row.expires,
    }


def build_directory(rng: random.Random) -> DemoDirectory:
    """Users, groups, tokens and brands the demo events refer to (created once)."""
    with transaction.atomic():
        ensure_default_groups()
        default = Brand.objects.default() or Brand.objects.create(
            domain="default", name="Default brand", default=True
        )
        brands = [
            default,
            Brand.objects.get_or_create(domain="acme.example.com", defaults={"name": "Acme Corp"})[
                0
            ],
            Brand.objects.get_or_create(domain="my.example.com", defaults={"name": "my brand"})[0],
        ]
        people: list[tuple[str, str]] = [
            ("akadmin", "authentik Default Admin"),
            ("ana", "Ana Silva"),
        ]
        for first in FIRST_NAMES:
            last = rng.choice(LAST_NAMES)
            people.append((f"{first.lower()}.{last.lower()}", f"{first} {last}"))
        users = []
        for index, (username, name) in enumerate(people):
            user_type = UserType.INTERNAL
            if index % 11 == 10:
                user_type = UserType.EXTERNAL
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "name": name,
                    "email": f"{username}@example.com",
                    "type": user_type,
                    "attributes": {"department": rng.choice(GROUPS)},
                },
            )
            if created:
                user.set_unusable_password()
                with audit_ignore():
                    user.save(update_fields=["password"])
            users.append(user)
        service, _ = User.objects.get_or_create(
            username="siem-collector",
            defaults={"name": "SIEM collector", "type": UserType.SERVICE_ACCOUNT},
        )
        users.append(service)
        groups = []
        for name in GROUPS:
            members = rng.sample(users[:-1], k=min(8, len(users) - 1))
            group, created = Group.objects.get_or_create(
                name=name, defaults={"attributes": {"notes": f"{name} team"}}
            )
            if created:
                group.users.add(*members)
            groups.append(group)
        token, _ = Token.objects.get_or_create(
            identifier="siem-collector-api",
            defaults={"user": service, "intent": TokenIntent.API, "description": "Elastic Agent"},
        )
    applications = [
        {
            "pk": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            "app": "authentik_core",
            "name": name,
            "model_name": "application",
        }
        for name in APPLICATIONS
    ]
    return DemoDirectory(
        users=users,
        groups=groups,
        tokens=[token],
        brands=[model_to_dict(brand) for brand in brands],
        applications=applications,
    )


def sample_addresses(
    rng: random.Random, wanted: int = 400, per_country: int = 12, attempts: int = 60_000
) -> list[tuple[str, dict[str, Any] | None]]:
    """Public IPv4 addresses the configured city database places in a city, spread over as
    many countries as it finds; plus a few private addresses (no geo)."""
    reader = city_db.reader()
    found: list[tuple[str, dict[str, Any] | None]] = []
    per: dict[str, int] = {}
    candidates = list(KNOWN_ADDRESSES) + [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(attempts)
    ]
    if reader is not None:
        for ip in candidates:
            if len(found) >= wanted:
                break
            try:
                geo: dict[str, Any] = dict(city_to_dict(reader.city(ip)))
            except Exception:  # noqa: S112 - unknown, private or reserved: try the next one
                continue
            country = geo.get("country")
            if not country or geo.get("lat") is None or per.get(country, 0) >= per_country:
                continue
            per[country] = per.get(country, 0) + 1
            found.append((ip, geo))
    if not found:
        found = [(ip, None) for ip in KNOWN_ADDRESSES]
    found.extend((ip, None) for ip in PRIVATE_ADDRESSES)
    return found


def generate_events(
    rng: random.Random, directory: DemoDirectory, count: int, days: int = 30
) -> Iterator[EventRow]:
    """``count`` unsaved events with creation times spread over the last ``days`` days, oldest
    first, as a real log is written (the table's physical order follows time, which is what
    makes a time-bounded query read only the recent part of it)."""
    now = timezone.now()
    start, step = now - timedelta(days=days), timedelta(days=days) / max(count, 1)
    retention = current_retention()
    actions = [action for action, _ in ACTION_WEIGHTS]
    weights = [weight for _, weight in ACTION_WEIGHTS]
    user_dicts = [get_user(user) for user in directory.users]
    anonymous = get_user(User.objects.anonymous())
    home = [rng.choice(directory.addresses) for _ in directory.users]  # each user's usual place
    builders = _builders(rng, directory, user_dicts, anonymous, home)
    for index in range(count):
        action = rng.choices(actions, weights)[0]
        created = start + step * (index + rng.random())
        user, context, client_ip, app = builders[action]()
        yield EventRow(
            event_uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
            user=user,
            action=action,
            app=app,
            # Written with times in the past: said so, as the chain's backdating check asks
            # of every import (auditlog.chain.links.imported).
            context={**context, "imported": {"source": "demo"}},
            client_ip=client_ip,
            created=created,
            brand=rng.choices(directory.brands, (90, 7, 3))[0],
            expires=created + retention,
        )


def _builders(
    rng: random.Random,
    directory: DemoDirectory,
    user_dicts: list[dict[str, Any]],
    anonymous: dict[str, Any],
    home: list[tuple[str, dict[str, Any] | None]],
) -> dict[str, Callable[[], tuple[dict[str, Any], dict[str, Any], str | None, str]]]:
    def someone() -> tuple[int, dict[str, Any]]:
        index = min(int(rng.paretovariate(1.2)) - 1, len(user_dicts) - 1)
        return index, user_dicts[index]

    def place(index: int) -> tuple[str, dict[str, Any] | None]:
        # Mostly from home, sometimes travelling.
        return home[index] if rng.random() < 0.8 else rng.choice(directory.addresses)

    def http(method: str, path: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "args": args or {},
            "path": path,
            "method": method,
            "user_agent": rng.choice(USER_AGENTS),
            "request_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        }

    def with_geo(context: dict[str, Any], geo: dict[str, Any] | None) -> dict[str, Any]:
        if geo:
            context["geo"] = geo
        return context

    def login() -> Any:
        index, user = someone()
        ip, geo = place(index)
        method = rng.choices(["password", "webauthn", "token"], (80, 15, 5))[0]
        context = {
            "auth_method": method,
            "auth_method_args": {},
            "http_request": http("POST", FLOW_PATH, {"next": "/"}),
        }
        return user, with_geo(context, geo), ip, "auditlog.signals"

    def login_failed() -> Any:
        if rng.random() < 0.4:
            username, user = rng.choice(FAILED_USERNAMES), anonymous
            ip, geo = rng.choice(directory.addresses)
        else:
            index, user = someone()
            username = user["username"]
            ip, geo = place(index)
        context = {
            "username": username,
            "password": MASK,
            "http_request": http("POST", FLOW_PATH, {"next": "/"}),
        }
        return user, with_geo(context, geo), ip, "auditlog.signals"

    def logout() -> Any:
        index, user = someone()
        ip, geo = place(index)
        return (
            user,
            with_geo({"http_request": http("GET", "/flows/-/default/invalidation/")}, geo),
            ip,
            "auditlog.signals",
        )

    def authorize() -> Any:
        index, user = someone()
        ip, geo = place(index)
        application = rng.choice(directory.applications)
        context = {
            "authorized_application": application,
            "flow": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            "scopes": "openid email profile",
            "http_request": http(
                "GET", "/application/o/authorize/", {"client_id": application["pk"][:16]}
            ),
        }
        return user, with_geo(context, geo), ip, "authentik.providers.oauth2.views.authorize"

    def admin_request() -> tuple[dict[str, Any], dict[str, Any], str | None]:
        admin = user_dicts[0]
        ip, geo = home[0]
        return admin, with_geo({}, geo), ip

    def model_updated() -> Any:
        user, context, ip = admin_request()
        target = rng.choice(directory.users[:-1])
        if rng.random() < 0.3:
            group = rng.choice(directory.groups)
            context.update(
                model=model_to_dict(group),
                diff={
                    "users": {
                        rng.choice(["add", "remove"]): [target.pk],
                        "names": {str(target.pk): target.username},
                    }
                },
            )
        else:
            field_name = rng.choice(["email", "name", "is_active", "attributes"])
            previous, new = {
                "email": (target.email, f"{target.username}@example.org"),
                "name": (target.name, target.name.upper()),
                "is_active": (True, False),
                # Never Sales -> Sales: a no-op is not a change.
                "attributes": (
                    {"department": "Sales"},
                    {"department": rng.choice([g for g in GROUPS if g != "Sales"])},
                ),
            }[field_name]
            context.update(
                model=model_to_dict(target),
                diff={field_name: {"previous_value": previous, "new_value": new}},
            )
        context["http_request"] = http("PATCH", f"/api/v3/core/users/{target.pk}/")
        return user, context, ip, "auditlog.capture"

    def model_created() -> Any:
        user, context, ip = admin_request()
        identifier = f"token-{rng.randrange(10**6)}"
        reference = {
            "pk": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            "app": "directory",
            "model_name": "token",
            "name": identifier,
        }
        context.update(
            model=reference,
            diff={
                "identifier": {"previous_value": None, "new_value": identifier},
                "intent": {"previous_value": None, "new_value": "api"},
                "key": {"previous_value": None, "new_value": MASK},
                "user": {"previous_value": None, "new_value": rng.choice(directory.users).pk},
            },
            http_request=http("POST", "/api/v3/core/tokens/"),
        )
        return user, context, ip, "auditlog.capture"

    def model_deleted() -> Any:
        user, context, ip = admin_request()
        identifier = f"token-{rng.randrange(10**6)}"
        context.update(
            model={
                "pk": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                "app": "directory",
                "model_name": "token",
                "name": identifier,
            },
            model_state={"identifier": identifier, "intent": "api", "key": MASK},
            http_request=http("DELETE", f"/api/v3/core/tokens/{identifier}/"),
        )
        return user, context, ip, "auditlog.capture"

    def password_set() -> Any:
        index, user = someone()
        ip, geo = place(index)
        target = directory.users[index]
        return (
            user,
            with_geo(
                {"subject_uuid": target.uuid.hex, "http_request": http("POST", "/if/user/")}, geo
            ),
            ip,
            "auditlog.capture",
        )

    def user_write() -> Any:
        index, user = someone()
        ip, geo = place(index)
        context = {
            "name": directory.users[index].name,
            "email": user["email"],
            "created": False,
            "username": user["username"],
            "attributes": {"settings": {"locale": rng.choice(["", "en", "de", "fr"])}},
        }
        return user, with_geo(context, geo), ip, "authentik.events.signals"

    def secret_view() -> Any:
        user, context, ip = admin_request()
        context.update(
            secret=model_to_dict(directory.tokens[0]),
            http_request=http(
                "GET", f"/api/v3/core/tokens/{directory.tokens[0].identifier}/view_key/"
            ),
        )
        return user, context, ip, "directory.api"

    def email_sent() -> Any:
        _, user = someone()
        context = {
            "message": "Email to " + user["email"] + " sent",
            "subject": "authentik: Password recovery",
            "body": "<p>Reset your password…</p>",
            "from_email": "noreply@example.com",
            "to_email": [user["email"]],
        }
        return {}, context, None, "authentik.stages.email.tasks"

    def policy_execution() -> Any:
        _, user = someone()
        context = {
            "result": {"passing": rng.random() < 0.9, "messages": []},
            "binding": {
                "pk": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                "app": "authentik_policies",
                "name": "Binding to default-password-policy",
                "model_name": "policybinding",
            },
            "message": "Policy Execution",
            "request": {"obj": rng.choice(directory.applications), "user": user},
        }
        return user, context, None, "authentik.policies.process"

    def suspicious() -> Any:
        ip, geo = rng.choice(directory.addresses)
        context = {
            "message": "Invalid HTTP_HOST header: 'evil.example.net'.",
            "http_request": http("GET", "/"),
        }
        return anonymous, with_geo(context, geo), ip, "auditlog.middleware"

    def system_exception() -> Any:
        _, user = someone()
        context = {
            "message": "database connection lost",
            "exception": [
                {
                    "exc_type": "OperationalError",
                    "exc_value": "database connection lost",
                    "frames": [],
                }
            ],
            "http_request": http("GET", "/api/v3/events/events/"),
        }
        return user, context, None, "auditlog.middleware"

    def configuration_error() -> Any:
        return (
            {},
            {"message": "SMTP server refused the connection", "transport": "email"},
            None,
            "auditlog.tasks",
        )

    def task_execution() -> Any:
        return (
            {},
            {"message": "Expired 1204 Events", "task": "delete_expired_events"},
            None,
            "auditlog.tasks",
        )

    return {
        EventAction.LOGIN: login,
        EventAction.LOGIN_FAILED: login_failed,
        EventAction.LOGOUT: logout,
        EventAction.AUTHORIZE_APPLICATION: authorize,
        EventAction.MODEL_UPDATED: model_updated,
        EventAction.MODEL_CREATED: model_created,
        EventAction.MODEL_DELETED: model_deleted,
        EventAction.PASSWORD_SET: password_set,
        EventAction.USER_WRITE: user_write,
        EventAction.SECRET_VIEW: secret_view,
        EventAction.EMAIL_SENT: email_sent,
        EventAction.POLICY_EXECUTION: policy_execution,
        EventAction.SUSPICIOUS_REQUEST: suspicious,
        EventAction.SYSTEM_EXCEPTION: system_exception,
        EventAction.CONFIGURATION_ERROR: configuration_error,
        EventAction.SYSTEM_TASK_EXECUTION: task_execution,
    }


def demo_directory_exists() -> bool:
    return User.objects.filter(username="siem-collector").exists()
