"""``manage.py tail_events``: the event log in a terminal, like ``tail -f``.

Prints the events that match ``--search`` (DjangoQL, as on the list) committed in the last
``--since`` (default 10m), in commit order, then with ``--follow`` goes on printing new ones
as they are sealed (within a second). ``--format json`` writes one event per line as the API
lists it (JSON Lines). A bad search or duration ends with one line and status 1.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Min, QuerySet
from django.utils import timezone
from djangoql.exceptions import DjangoQLError

from auditlog.listing import EVENT_LISTING, ListingError
from auditlog.live.hub import HUB
from auditlog.models import Event, EventChainLink
from auditlog.positions import events_after, head_position
from auditlog.representation import event_json
from auditlog.search import SearchError, search_error_body
from project.durations import DurationFormatError, parse_duration
from project.renderers import FastJSONRenderer

SHORT = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
BATCH = 500
_render = FastJSONRenderer().render


def parse_since(raw: str) -> timedelta:
    """``10m``, ``1h30m``, ``2d`` or the project's ``minutes=10`` format."""
    text = raw.strip().lower()
    if text and SHORT.sub("", text).strip() == "":
        return timedelta(**{UNITS[unit]: float(amount) for amount, unit in SHORT.findall(text)})
    try:
        return parse_duration(text)
    except DurationFormatError:
        raise CommandError(
            f"--since {raw!r} is not a duration: use 30s, 10m, 2h, 1d (or minutes=10)."
        ) from None


class Command(BaseCommand):
    help = "Print matching events in commit order since a time; --follow prints new ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--search", default="", help='DjangoQL, e.g. action = "login"')
        parser.add_argument("--since", default="10m", help="how far back to start (10m, 2h, 1d)")
        parser.add_argument("--follow", "-f", action="store_true", help="then print new events")
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args: Any, search: str, since: str, follow: bool, **options: Any) -> None:
        self.json = options["format"] == "json"
        start = timezone.now() - parse_since(since)
        try:
            events = EVENT_LISTING.apply(Event.objects.all(), {"search": search} if search else {})
            events = events.filter(created__gte=start)
            position = self._start(events)
        except (SearchError, DjangoQLError) as exc:
            raise CommandError(search_error_body(exc)["detail"]) from None
        except ListingError as exc:
            raise CommandError(str(exc)) from None
        if follow:
            HUB.join()
        try:
            while True:
                page = events_after(events, position, BATCH)
                for item in page.items:
                    self._print(item.event)
                progressed = page.next_position > position
                position = max(position, page.next_position)
                if progressed and page.items:
                    continue
                if progressed and position < head_position():
                    continue  # a stretch of non-matching events: read on
                if not follow:
                    return
                HUB.wait(position, 5.0)
        except KeyboardInterrupt:
            return
        finally:
            if follow:
                HUB.leave()

    def _start(self, events: QuerySet[Event]) -> int:
        """The position just before the first sealed event of ``events``."""
        first = EventChainLink.objects.filter(
            event_uuid__in=events.order_by().values("event_uuid")
        ).aggregate(first=Min("sequence"))["first"]
        return head_position() if first is None else first - 1

    def _print(self, event: Event) -> None:
        if self.json:
            self.stdout.write(_render(event_json(event)).decode())
            return
        user = event.user or {}
        who = user.get("username") or (event.context or {}).get("username") or "-"
        created = timezone.localtime(event.created).strftime("%Y-%m-%d %H:%M:%S")
        message = (event.context or {}).get("message") or ""
        self.stdout.write(
            f"{created}  {event.action:<20} {who:<20} {event.client_ip or '-':<15} "
            f"{event.app}{'  ' + str(message) if message else ''}"
        )
