"""``manage.py streams list|pause|resume|replay NAME [--from-time T | --from-position N]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams import services
from streams.api.views import parse_replay
from streams.models import Destination


class Command(BaseCommand):
    help = (
        "SIEM stream destinations: list them with their health, pause or resume one, or "
        "replay one from a time (--from-time, ISO 8601) or a chain position (--from-position)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "pause", "resume", "replay"])
        parser.add_argument("name", nargs="?")
        parser.add_argument("--from-time", default=None)
        parser.add_argument("--from-position", default=None)

    def handle(self, *args: Any, action: str, name: str | None, **options: Any) -> None:
        if action == "list":
            self._list()
            return
        if not name:
            raise CommandError(f"streams {action} needs the destination's NAME.")
        destination = Destination.objects.filter(name=name).first()
        if destination is None:
            known = ", ".join(Destination.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No stream destination named {name!r} (known: {known}).")
        if action == "pause":
            services.pause(destination)
            self.stdout.write(f"{name}: paused")
        elif action == "resume":
            services.resume(destination)
            self.stdout.write(f"{name}: resumed")
        else:
            try:
                from_time, from_position = parse_replay(
                    options["from_time"], options["from_position"]
                )
            except ValueError as exc:
                raise CommandError(
                    str(exc)
                    .replace("from_time", "--from-time")
                    .replace("from_position", "--from-position")
                ) from None
            position = services.replay(
                destination, from_time=from_time, from_position=from_position
            )
            self.stdout.write(f"{name}: replays from position {position + 1}")

    def _list(self) -> None:
        for destination in Destination.objects.order_by("name"):
            health = services.health(destination)
            state = "paused" if destination.paused else "running"
            error = f" error: {destination.last_error}" if destination.last_error else ""
            self.stdout.write(
                f"{destination.name}\t{destination.transport}\t{destination.format}\t{state}\t"
                f"position {health.position}/{health.head}\tlag {health.lag_events} events "
                f"{health.lag_seconds:.0f}s\tsent {destination.events_sent}{error}"
            )
