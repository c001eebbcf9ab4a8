"""``manage.py logs``: the process log files in a terminal, filtered like System > Logs."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from logs.files import (
    LineDict,
    LogQuery,
    LogQueryError,
    parse_level_filter,
    parse_process,
    parse_since,
    read_lines,
)
from logs.views import FIXED

POLL_SECONDS = 1.0


class Command(BaseCommand):
    help = (
        "Show the process log lines (web, worker, scheduler) from the log files, oldest first; "
        "secrets are masked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="only lines newer than this: 15m, 1h, 2d or a time")
        parser.add_argument("--level", help="at least this level: trace debug info warning error")
        parser.add_argument("--request-id", help="only the lines of this request (or task) id")
        parser.add_argument("--process", help="only this process: web, worker or scheduler")
        parser.add_argument("--logger", help="only this logger and its children")
        parser.add_argument("--limit", type=int, default=200, help="at most this many lines")
        parser.add_argument("--follow", action="store_true", help="keep printing new lines")
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            query = LogQuery(
                level=parse_level_filter(options["level"]) if options["level"] else None,
                process=parse_process(options["process"]) if options["process"] else None,
                logger=options["logger"] or None,
                request_id=options["request_id"] or None,
                since=parse_since(options["since"]) if options["since"] else None,
            )
        except LogQueryError as exc:
            raise CommandError(str(exc)) from None
        if options["limit"] < 1:
            raise CommandError("limit: must be at least 1.")
        render = _json if options["format"] == "json" else _text
        lines = read_lines(query, limit=options["limit"])
        for line in lines:
            self.stdout.write(render(line))
        self.stdout.flush()
        after = lines[-1]["timestamp"] if lines else None
        try:
            while options["follow"]:
                time.sleep(POLL_SECONDS)
                new = read_lines(
                    LogQuery(**{**query.__dict__, "since": None, "after": after}),
                    limit=options["limit"],
                )
                for line in new:
                    self.stdout.write(render(line))
                self.stdout.flush()
                after = new[-1]["timestamp"] if new else after
        except KeyboardInterrupt:  # Ctrl-C is how --follow ends
            return


def _json(line: LineDict) -> str:
    return json.dumps(line, default=str)


def _text(line: LineDict) -> str:
    rest = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in line.items()
        if key not in FIXED
    )
    head = (
        f"{line.get('timestamp', '')} {str(line.get('level', '')).upper():<7} "
        f"[{line.get('process', '')}] {line.get('logger', '')}: {line.get('event', '')}"
    )
    return f"{head} {rest}".rstrip()
