"""Reads from a real streaming replica: a primary and a hot standby started by the test
(initdb, pg_basebackup, a second postgres process on a loopback port), and a real gunicorn
configured with ``DATABASE_REPLICA_URLS``.

Replay on the standby is paused to make its lag visible: a user who did not write then reads
the replica's older state (proof that the list is served by the replica), the writer sees
their own write at once (pinned to the primary), everyone reads the primary once the lag
passes the bound, and when the replica is down.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.faults.test_database_restart import manage
from tests.servers import Cluster, running_gunicorn, streaming_replica, throwaway_postgres

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="replicas are a PostgreSQL feature: tested in the PostgreSQL run",
)

MAX_LAG = 4.0
SETUP = """
import json
from directory.models import User
from directory.services import create_api_token
keys = {}
for name in ("writer", "reader"):
    user = User.objects.create_superuser(f"replica-{name}", f"{name}@example.com", "x-Pass-123456")
    keys[name] = create_api_token(user=user).key
print(json.dumps(keys))
"""
EVENTS = "/api/v3/events/events/"


@pytest.fixture
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    try:
        with throwaway_postgres() as primary, streaming_replica(primary) as replica:
            yield primary, replica
    except LookupError as exc:
        pytest.skip(f"PostgreSQL's server programs are needed ({exc})")


def _sql(cluster: Cluster, query: str) -> object:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def _caught_up(primary: Cluster, replica: Cluster, timeout: float = 30) -> None:
    """Write on the primary and wait until the replica has replayed it."""
    _sql(primary, "SELECT txid_current()")  # a fresh commit: the replay timestamp moves
    target = _sql(primary, "SELECT pg_current_wal_insert_lsn()::text")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replayed = _sql(replica, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
        if replayed:
            return
        time.sleep(0.05)
    raise AssertionError("the replica did not catch up")


def _found(session: requests.Session, base: str, marker: str) -> int:
    answer = session.get(f"{base}{EVENTS}", params={"search": marker}, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return int(answer.json()["pagination"]["count"])


def test_lists_read_the_replica_writers_see_their_writes_and_lag_or_failure_fall_back(
    pair: tuple[Cluster, Cluster], tmp_path: Path
) -> None:
    primary, replica = pair
    assert _sql(replica, "SELECT pg_is_in_recovery()") is True
    url = primary.url
    manage(url, tmp_path, "migrate", "--no-input", "-v", "0")
    keys = json.loads(manage(url, tmp_path, "shell", "-c", SETUP).strip().splitlines()[-1])
    writer, reader = requests.Session(), requests.Session()
    writer.headers["Authorization"] = f"Bearer {keys['writer']}"
    reader.headers["Authorization"] = f"Bearer {keys['reader']}"
    replica_url = replica.url
    env = {
        "DATABASE_REPLICA_URLS": replica_url,
        "DATABASE_REPLICA_MAX_LAG": f"seconds={MAX_LAG:g}",
        "DB_CONN_MAX_AGE": "0",
    }
    with running_gunicorn(url, tmp_path, workers=1, extra_env=env) as base:
        # Replay paused: the replica keeps the state before the write.
        _caught_up(primary, replica)
        _sql(replica, "SELECT pg_wal_replay_pause()")
        marker = f"replica-{time.time_ns()}"
        body = {"action": "custom_replica", "app": "tests", "context": {"marker": marker}}
        written = time.monotonic()
        created = writer.post(f"{base}{EVENTS}", json=body, timeout=30)
        assert created.status_code == 201, created.text[:300]

        assert _found(writer, base, marker) == 1, "the writer must see their write at once"
        assert _found(reader, base, marker) == 0, "the reader's list must come from the replica"
        assert time.monotonic() - written < MAX_LAG, "too slow to tell replica from primary"

        # Past the bound the lagging replica is left out: everyone reads the primary.
        time.sleep(max(0.0, MAX_LAG + 1.5 - (time.monotonic() - written)))
        assert _found(reader, base, marker) == 1

        # Caught up again, the replica serves reads (and has the event).
        _sql(replica, "SELECT pg_wal_replay_resume()")
        _caught_up(primary, replica)
        time.sleep(1.2)  # the health of each replica is asked at most every second
        assert _found(reader, base, marker) == 1

        # The replica down: reads fall back to the primary; writes never needed it.
        replica.stop("immediate")
        time.sleep(1.2)
        assert _found(reader, base, marker) == 1
        again = writer.post(f"{base}{EVENTS}", json=body, timeout=30)
        assert again.status_code == 201
        assert _found(reader, base, marker) == 2
