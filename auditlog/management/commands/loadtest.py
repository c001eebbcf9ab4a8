"""``manage.py loadtest``: concurrent writers and readers against a running server, then a
check that nothing was lost.

Writers alternate between ingesting an event (``POST /api/v3/events/events/``) and changing a
user (``PATCH /api/v3/core/users/<pk>/``); readers alternate between event list pages and
searches. Afterwards the database is read directly: every event answered with a 201 must be
stored, and every user change answered with a 2xx must have its ``model_updated`` event.
Any error (a failed request, a non-2xx answer) or anything missing exits non-zero.

Without ``--base-url`` a gunicorn on a free loopback port serves this project with the same
settings (so the same ``DATABASE_URL``) for the duration of the run. With ``--base-url`` the
server given must use the database this command sees.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from auditlog.models import Event, EventAction
from directory.models import Token, User
from directory.services import create_api_token
from project.local_server import ServerDidNotStart, gunicorn

EVENTS = "/api/v3/events/events/"
USERS = "/api/v3/core/users/"
LOAD_APP = "loadtest"
LOAD_ACTION = "custom_loadtest"
TARGET_USERS = 8
REQUEST_TIMEOUT = 30
SEARCHES = (
    'action = "custom_loadtest" and context.writer = 1',
    'app = "loadtest"',
    "loadtest",
)


@dataclass
class Stats:
    """Outcome of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 3:
            self.first_errors.append(message)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


@dataclass
class Run:
    """What one run sent, and what the server confirmed."""

    run_id: str
    base_url: str
    headers: dict[str, str]
    targets: list[int]
    seconds: float = 1.0
    deadline: float = 0.0
    stats: dict[str, Stats] = field(default_factory=dict)
    written_events: list[str] = field(default_factory=list)  # pks answered with 201
    changed_names: dict[int, list[str]] = field(default_factory=dict)  # user pk -> names

    def kind(self, name: str) -> Stats:
        return self.stats.setdefault(name, Stats())


@dataclass
class Verdict:
    events_written: int
    events_stored: int
    changes_made: int
    changes_audited: int
    missing_events: list[str]
    unconfirmed_events: list[str]  # stored, but never answered with a 201
    unaudited_changes: list[str]

    @property
    def complete(self) -> bool:
        return not (self.missing_events or self.unconfirmed_events or self.unaudited_changes)


class Command(BaseCommand):
    help = "Load the API with concurrent writers and readers, then check that nothing was lost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--writers", type=int, default=4, help="Concurrent writers.")
        parser.add_argument("--readers", type=int, default=4, help="Concurrent readers.")
        parser.add_argument("--seconds", type=float, default=10, help="How long to load.")
        parser.add_argument(
            "--base-url",
            default="",
            help="A server using this database (default: start gunicorn on a free port).",
        )
        parser.add_argument(
            "--server-workers", type=int, default=4, help="Gunicorn workers (own server only)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["writers"] < 1 or options["readers"] < 0 or options["seconds"] <= 0:
            raise CommandError("Use --writers 1 or more, --readers 0 or more, --seconds > 0.")
        run_id = uuid.uuid4().hex[:12]
        admin, targets = _load_users()
        token = create_api_token(
            user=admin, identifier=f"loadtest-{run_id}", expires_in=timedelta(hours=2)
        )
        try:
            with _server(options["base_url"], options["server_workers"]) as base_url:
                run = Run(
                    run_id=run_id,
                    base_url=base_url.rstrip("/"),
                    headers={"Authorization": f"Bearer {token.key}"},
                    targets=targets,
                )
                self.stdout.write(
                    f"Load test {run_id}: {options['writers']} writers, {options['readers']} "
                    f"readers, {options['seconds']:g} s against {run.base_url}"
                )
                load = partial(
                    _load, run, options["writers"], options["readers"], options["seconds"]
                )
                # A thread of its own: the caller may already run an event loop (call_command).
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pool.submit(lambda: asyncio.run(load())).result()
        finally:
            Token.objects.filter(pk=token.pk).delete()
        verdict = verify(run)
        self.stdout.write(summary(run, verdict))
        errors = sum(stats.errors for stats in run.stats.values())
        if errors or not verdict.complete or not verdict.events_written:
            raise CommandError(
                f"Load test failed: {errors} errors, {len(verdict.missing_events)} events "
                f"missing, {len(verdict.unconfirmed_events)} stored without a 201, "
                f"{len(verdict.unaudited_changes)} changes without their event."
            )


# --- Users ----------------------------------------------------------------------------------


def _load_users() -> tuple[User, list[int]]:
    """The load test's administrator and the users its writers change (made once, reused)."""
    admin = User.objects.filter(username="loadtest-admin").first()
    if admin is None:
        admin = User.objects.create_superuser(
            "loadtest-admin", "loadtest@example.com", uuid.uuid4().hex
        )
    targets = []
    for index in range(TARGET_USERS):
        user, _ = User.objects.get_or_create(
            username=f"loadtest-target-{index}",
            defaults={"email": f"loadtest-{index}@example.com"},
        )
        targets.append(user.pk)
    return admin, targets


# --- The server -----------------------------------------------------------------------------


@contextmanager
def _server(base_url: str, workers: int) -> Iterator[str]:
    """The given server, or a gunicorn of this project on a free loopback port."""
    if base_url:
        yield base_url
        return
    log = Path(settings.DATA_DIR) / "loadtest-gunicorn.log"
    try:
        with gunicorn(env=os.environ.copy(), log=log, workers=workers) as url:
            yield url
    except ServerDidNotStart as exc:
        raise CommandError(f"gunicorn did not start: {exc}") from None


# --- The load -------------------------------------------------------------------------------


async def _load(run: Run, writers: int, readers: int, seconds: float) -> None:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=writers + readers)
    async with aiohttp.ClientSession(
        headers=run.headers, timeout=timeout, connector=connector
    ) as session:
        run.seconds = seconds
        run.deadline = time.monotonic() + seconds
        tasks = [_writer(session, run, number) for number in range(writers)]
        tasks += [_reader(session, run, number) for number in range(readers)]
        await asyncio.gather(*tasks)


async def _writer(session: aiohttp.ClientSession, run: Run, number: int) -> None:
    for sequence in count():
        if time.monotonic() >= run.deadline:
            return
        if sequence % 2 == 0:
            await _post_event(session, run, number, sequence)
        else:
            await _patch_user(session, run, number, sequence)


async def _post_event(session: aiohttp.ClientSession, run: Run, writer: int, seq: int) -> None:
    body = {
        "action": LOAD_ACTION,
        "app": LOAD_APP,
        "context": {"run": run.run_id, "writer": writer, "sequence": seq},
    }
    answer = await _request(session, run, "post_event", "POST", EVENTS, json=body, expect=201)
    if answer is not None:
        run.written_events.append(str(answer["pk"]))


async def _patch_user(session: aiohttp.ClientSession, run: Run, writer: int, seq: int) -> None:
    target = run.targets[(writer + seq) % len(run.targets)]
    name = f"load {run.run_id} {writer}-{seq}"
    answer = await _request(
        session, run, "patch_user", "PATCH", f"{USERS}{target}/", json={"name": name}, expect=200
    )
    if answer is not None:
        run.changed_names.setdefault(target, []).append(name)


async def _reader(session: aiohttp.ClientSession, run: Run, number: int) -> None:
    for sequence in count():
        if time.monotonic() >= run.deadline:
            return
        if sequence % 2 == 0:
            params = {"page": str(1 + sequence % 5), "page_size": "50"}
            await _request(session, run, "list_events", "GET", EVENTS, params=params)
        else:
            search = SEARCHES[(number + sequence) % len(SEARCHES)]
            params = {"search": search, "page_size": "50"}
            await _request(session, run, "search_events", "GET", EVENTS, params=params)


async def _request(
    session: aiohttp.ClientSession,
    run: Run,
    kind: str,
    method: str,
    path: str,
    *,
    expect: int = 200,
    **kwargs: Any,
) -> Any:
    """Send one request; record its latency, or an error for anything but ``expect``.

    A page past the end (404 on a list) is an answer, not an error.
    """
    stats = run.kind(kind)
    started = time.monotonic()
    try:
        async with session.request(method, run.base_url + path, **kwargs) as response:
            text = await response.text()
            elapsed = time.monotonic() - started
            if response.status == expect or (method == "GET" and response.status == 404):
                stats.latencies.append(elapsed)
                return await response.json() if response.status == expect else None
            stats.fail(f"{method} {path}: {response.status} {text[:200]}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        stats.fail(f"{method} {path}: {type(exc).__name__}: {exc}")
    return None


# --- Checking -------------------------------------------------------------------------------


def verify(run: Run) -> Verdict:
    """Compare what the server confirmed with what the database holds."""
    written = set(run.written_events)
    stored = {
        str(pk)
        for pk in Event.objects.filter(
            action=LOAD_ACTION, app=LOAD_APP, context__run=run.run_id
        ).values_list("event_uuid", flat=True)
    }
    audited = _audited_names(list(run.changed_names))
    unaudited = [
        f"user {pk}: {name}"
        for pk, names in run.changed_names.items()
        for name in names
        if name not in audited.get(pk, set())
    ]
    changes = sum(len(names) for names in run.changed_names.values())
    return Verdict(
        events_written=len(written),
        events_stored=len(stored),
        changes_made=changes,
        changes_audited=changes - len(unaudited),
        missing_events=sorted(written - stored),
        unconfirmed_events=sorted(stored - written),
        unaudited_changes=unaudited,
    )


def _audited_names(user_pks: list[int]) -> dict[int, set[str]]:
    """The names each user was given, according to its ``model_updated`` events."""
    audited: dict[int, set[str]] = {}
    rows = Event.objects.filter(
        action=EventAction.MODEL_UPDATED,
        context__model__model_name="user",
        context__model__pk__in=user_pks,
    ).values_list("context", flat=True)
    for context in rows:
        change = (context.get("diff") or {}).get("name") or {}
        if "new_value" in change:
            audited.setdefault(int(context["model"]["pk"]), set()).add(str(change["new_value"]))
    return audited


def summary(run: Run, verdict: Verdict) -> str:
    lines = [
        "",
        f"{'kind':<15}{'requests':>10}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}",
    ]
    for kind in ("post_event", "patch_user", "list_events", "search_events"):
        stats = run.kind(kind)
        lines.append(
            f"{kind:<15}{stats.requests:>10}{stats.errors:>8}"
            f"{stats.percentile(0.50):>10.1f}{stats.percentile(0.95):>10.1f}"
        )
    requests = sum(stats.requests for stats in run.stats.values())
    lines += [
        f"{'all':<15}{requests:>10}{sum(s.errors for s in run.stats.values()):>8}"
        f"   ({requests / run.seconds:.0f} requests/s)",
        "",
        f"events written (201): {verdict.events_written}   stored: {verdict.events_stored}   "
        f"missing: {len(verdict.missing_events)}   unconfirmed: "
        f"{len(verdict.unconfirmed_events)}",
        f"user changes (200): {verdict.changes_made}   with their model_updated event: "
        f"{verdict.changes_audited}   missing: {len(verdict.unaudited_changes)}",
    ]
    for kind, stats in run.stats.items():
        lines += [f"error ({kind}): {message}" for message in stats.first_errors]
    lines += [f"missing event: {pk}" for pk in verdict.missing_events[:5]]
    lines += [f"unaudited change: {change}" for change in verdict.unaudited_changes[:5]]
    return "\n".join(lines) + "\n"
