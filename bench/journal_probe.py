"""What a capture *journal* would cost, beside no capture, in one run (PostgreSQL, pgbench).

Issue "No change escapes the record" asks for an audited ``save()`` and a 1,000-row
``update()`` at no more than 1.2 times their uncaptured twins. The capture triggers of today
write the finished event (twelve indexes, the month's partition, the chain's queue) inside the
change's statement, which costs about as much as the change (README, Performance,
Database-side capture). The other design keeps the change's transaction just as safe but writes
less in it: the trigger appends the raw change (the rows before and after, and the request
context) to an unindexed journal, and the sealer turns journal rows into events afterwards.
This probe measures that append at the SQL level, with no application around it, so that the
decision rests on a figure:

* ``plain``: ``UPDATE`` of one user-shaped row (or of 1,000), no trigger: the floor;
* ``journal, row images``: a statement-level trigger appends ``(context, op, old, new)`` with
  the rows as the table's own composite type (no conversion), one journal row per changed row;
* ``journal, JSON``: the same with ``to_jsonb()`` of each row, secrets left out by name.

Each statement carries the request context in the same query string, as the application's
execute wrapper does (``SELECT set_config(...) ; UPDATE ...``). The designs are measured in
turns (``--rounds``), each for ``--seconds``, by pgbench with one client; the table written
is ``bench/journal-probe-results.md``. The scratch database (``--database``) is dropped and made
afresh.

    .venv/bin/python bench/journal_probe.py [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import fresh_database

ROWS = 10_000
CONTEXT = (
    '{"user": {"pk": 1, "username": "akadmin", "email": "admin@example.com"}, '
    '"client_ip": "81.2.69.142", "brand": {"name": "Default"}, "context": {"http_request": '
    '{"method": "PATCH", "path": "/api/v3/core/users/1/", "request_id": "0123456789abcdef"}, '
    '"geo": {"country": "GB", "city": "London", "lat": 51.5, "long": -0.1}}}'
)
SCHEMA = f"""
CREATE TABLE person (
    id serial PRIMARY KEY, username text UNIQUE NOT NULL, name text, email text,
    password text, is_active boolean, last_login timestamptz, attributes jsonb, path text,
    type text, uuid uuid
);
INSERT INTO person (username, name, email, password, is_active, last_login, attributes, path,
                    type, uuid)
SELECT 'user' || g, 'Name ' || g, 'user' || g || '@example.com',
       'pbkdf2_sha256$600000$salt$hash', true, now(), '{{"settings": {{"locale": "en"}}}}',
       'users', 'internal', gen_random_uuid()
FROM generate_series(1, {ROWS}) AS g;
"""


def journal_sql(table: str, column_type: str, image: str) -> str:
    """A copy of ``person`` named ``table`` whose statement trigger appends each changed row's
    images before and after (``image``: SQL over the row alias ``r``, of ``column_type``) with
    the context to the unindexed journal ``journal_<table>``."""
    journal = f"journal_{table}"
    old, new = image.format(r="o"), image.format(r="n")
    return f"""
CREATE TABLE {table} (LIKE person INCLUDING ALL);
INSERT INTO {table} SELECT * FROM person;
CREATE TABLE {journal} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT statement_timestamp(),
    context text, op "char" NOT NULL, old {column_type}, new {column_type}
);
CREATE FUNCTION {journal}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO {journal} (context, op, old, new)
    SELECT current_setting('auditlog.context', true), 'u', {old}, {new}
    FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o IS DISTINCT FROM n;
    RETURN NULL;
END $$;
CREATE TRIGGER journal AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {journal}();
"""


PLAIN = "person"
# design: (table, the journal's column type, a row's image)
JOURNALS = {
    "journal, row images": ("person_images", "person_images", "ROW({r}.*)::person_images"),
    "journal, JSON": ("person_json", "jsonb", "to_jsonb({r}) - 'password'"),
}
DESIGNS = {"plain": PLAIN} | {design: table for design, (table, _, _) in JOURNALS.items()}
SIZES = {"one row": 1, "1,000 rows": 1000}


@dataclass
class Result:
    design: str
    size: str
    latencies: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)


def script(table: str, rows: int) -> str:
    context = ""  # no capture: nothing handed over
    if table != PLAIN:
        context = f"SELECT set_config('auditlog.context', '{CONTEXT}', true) \\; "
    return (
        f"\\set id random(1, {ROWS - rows + 1})\n"
        f"{context}UPDATE {table} SET name = md5(random()::text) "
        f"WHERE id >= :id AND id < :id + {rows};\n"
    )


def pgbench(url: str, text: str, seconds: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write(text)
        file.flush()
        done = subprocess.run(
            ["pgbench", "-n", "-c1", f"-T{seconds}", "-f", file.name, url],
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"latency average = ([0-9.]+) ms", done.stdout)
    if found is None:
        raise SystemExit(f"journal probe: pgbench printed no latency: {done.stderr.strip()}")
    return float(found.group(1))


def prepare(url: str) -> None:
    """The scratch database afresh, with the plain table and each journal's copy."""
    fresh_database(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SCHEMA)
        for table, column_type, image in JOURNALS.values():
            connection.execute(journal_sql(table, column_type, image))
        connection.execute("VACUUM ANALYZE")


def table(results: list[Result], rounds: int, seconds: int, server: str) -> str:
    lines = [
        "# Capture journal probe",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · PostgreSQL {server} · pgbench, one client · "
        f"{rounds} rounds of {seconds} s per design, in turns · median of the rounds' mean "
        f"latency · `bench/journal_probe.py`",
        "",
        "| change | design | latency | beside plain |",
        "|---|---|---|---|",
    ]
    plain = {r.size: r.median for r in results if r.design == "plain"}
    for result in results:
        lines.append(
            f"| {result.size} | {result.design} | {result.median:.3f} ms | "
            f"{result.median / plain[result.size]:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/journal_probe")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).with_name("journal-probe-results.md")))
    args = parser.parse_args()
    prepare(args.database)
    with psycopg.connect(args.database) as connection:
        server = str(connection.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
    results = [Result(d, s, []) for s in SIZES for d in DESIGNS]
    for round_ in range(args.rounds):
        for result in results:
            text = script(DESIGNS[result.design], SIZES[result.size])
            result.latencies.append(pgbench(args.database, text, args.seconds))
            print(
                f"round {round_ + 1}: {result.size}, {result.design}: "
                f"{result.latencies[-1]:.3f} ms",
                flush=True,
            )
    output = table(results, args.rounds, args.seconds, server)
    Path(args.out).write_text(output)
    print(output)


if __name__ == "__main__":
    main()
