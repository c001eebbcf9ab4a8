"""The performance table: every figure next to its baseline, measured in the same run.

    make bench                      # or: .venv/bin/python bench/run.py
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/auditlog_bench  (the default)
    --events N                      # how many events to load (default 1,000,000;
                                    # make bench BENCH_EVENTS=N)
    --only load,save,list,...       # a subset of the measures (for development)
    --reuse                         # keep the database a run before loaded (migrated to the
                                    # current code) and measure on its events: for read
                                    # measures after a change, without loading again

The database named in BENCH_DATABASE_URL is dropped and created afresh. The table is printed
and written to bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/auditlog_bench"
MEASURES = (
    "load",
    "ingest",
    "seal",
    "disk",
    "save",
    "update",
    "list",
    "big_page",
    "deep",
    "crawl",
    "parse",
    "export",
    "aggregates",
    "retention",
    "partition_retention",
)


@dataclass
class Row:
    measure: str
    ours: str
    baseline: str
    ratio: str
    target: str
    met: bool | None
    note: str = ""


@dataclass
class Report:
    events: int
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        mark = {True: "met", False: "NOT MET", None: "-"}[row.met]
        print(
            f"  {row.measure}: {row.ours} vs {row.baseline} ({row.ratio}) target {row.target}: {mark}",
            flush=True,
        )

    def markdown(self) -> str:
        lines = [
            "# Benchmark results",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {self.events:,} events · PostgreSQL "
            f"{_server_version()} · Python {platform.python_version()} · {os.cpu_count()} cores · "
            f"{time.monotonic() - self.started:.0f} s in all",
            "",
            "Every ratio compares two figures measured side by side in this run.",
            "",
            "| measure | ours | baseline (same run) | ratio | target | met |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            mark = {True: "yes", False: "**no**", None: "-"}[row.met]
            lines.append(
                f"| {row.measure} | {row.ours} | {row.baseline} | {row.ratio} | {row.target} | {mark} |"
            )
        notes = [row for row in self.rows if row.note]
        if notes:
            lines += ["", "Notes:", ""]
            lines += [f"- **{row.measure}**: {row.note}" for row in notes]
        return "\n".join(lines) + "\n"


def _server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0]).split()[0]


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def p50_ms(function: Callable[[], Any], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    return median(timed(function) for _ in range(repeat)) * 1000


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} rows/s"


def fresh_database(url: str) -> None:
    """Drop and create the benchmark database (the URL's database name)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str, data_dir: Path) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("migrate", run_syncdb=True, verbosity=0)  # then the peers' tables


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(MEASURES))
    parser.add_argument("--out", default=str(REPO / "bench" / "results.md"))
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench: BENCH_DATABASE_URL must point at PostgreSQL (postgres://...).")
    wanted = [name for name in args.only.split(",") if name]
    unknown = set(wanted) - set(MEASURES)
    if unknown:
        sys.exit(
            f"bench: unknown measures {', '.join(sorted(unknown))}; choose from {', '.join(MEASURES)}."
        )
    if args.reuse:
        print(f"bench: reusing database {url.rsplit('/', 1)[1]}", flush=True)
    else:
        print(f"bench: fresh database {url.rsplit('/', 1)[1]}, {args.events:,} events", flush=True)
        fresh_database(url)
    with tempfile.TemporaryDirectory(prefix="bench-") as data_dir:
        setup_django(url, Path(data_dir))
        from bench import measures, partition_retention, scale

        report = Report(events=args.events)
        context = measures.Context(events=args.events, data_dir=Path(data_dir))
        if args.reuse:
            measures.reuse(context)
            report.events = context.events
        else:
            measures.prepare(context, report, load_timed="load" in wanted)
        for name in wanted:
            if name == "load":
                continue
            print(f"bench: {name}", flush=True)
            module = next(
                (m for m in (scale, partition_retention) if hasattr(m, f"measure_{name}")),
                measures,
            )
            getattr(module, f"measure_{name}")(context, report)
    Path(args.out).write_text(report.markdown())
    print()
    print(report.markdown())


if __name__ == "__main__":
    main()
