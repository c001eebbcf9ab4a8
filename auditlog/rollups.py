"""Hourly roll-ups of the events: counts per hour, action and place.

The volume chart and the map ask "how many events per hour and action" and "how many per
place"; over millions of events the answer from the events table costs a scan of their JSON.
:class:`~auditlog.models.EventRollup` keeps those counts for sealed events per hour, action
and place (the map's), :class:`~auditlog.models.EventVolume` per hour and action (the
chart's: summing the places' rows away cost as much as the events where places are many), so
the cost follows the number of hours and places instead. Both are kept together:

* the sealer adds each batch it seals (:func:`add`), in the sealing transaction: one writer,
  so no lock contention with the transactions that write events, and every path into the
  table counts (the chain's queue sees raw SQL and ``COPY`` too);
* retention and erasure subtract what they delete with the links (:func:`subtract` and
  :func:`unroll_sql`), in the deleting transaction; a month dropped whole takes its hours'
  roll-ups with it (:func:`forget_hours`);
* readers add the few events still waiting to be sealed (:func:`volume`, :func:`places`).

Only searches that the roll-ups can answer use them (:func:`answerable`: no search and no
filter but ``action``); every other search reads the events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import TruncHour

from auditlog.models import (
    Event,
    EventChainLink,
    EventChainPending,
    EventRollup,
    EventVolume,
    HourlyCount,
    six_hour_buckets,
)

# (hour, action, located, lat, long)
Key = tuple[datetime, str, bool, float, float]

# The query parameters a search may have and still be answered from the roll-ups.
ANSWERABLE = frozenset({"action", "history_days", "format", "ordering", "page", "page_size"})


def answerable(params: Mapping[str, Any]) -> bool:
    """Whether a request with these query parameters can read the roll-ups."""
    return all(name in ANSWERABLE for name, value in params.items() if value not in ("", None))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def place_of(context: Any) -> tuple[bool, float, float]:
    """``(located, lat, long)`` of an event's ``context.geo``."""
    geo = context.get("geo") if isinstance(context, dict) else None
    if isinstance(geo, dict):
        lat, long = _number(geo.get("lat")), _number(geo.get("long"))
        if lat is not None and long is not None:
            return True, lat, long
    return False, 0.0, 0.0


def key_of(created: datetime | str, action: str, context: Any) -> Key:
    """The roll-up an event counts in; ``created`` as a datetime or as ISO 8601 text in UTC
    (``2024-05-01T12:...Z``, as the sealer reads it)."""
    if isinstance(created, str):
        return (_hour_of_text(created[:13]), action, *place_of(context))
    hour = created.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return (hour, action, *place_of(context))


@lru_cache(maxsize=1024)
def _hour_of_text(hour: str) -> datetime:
    """``2024-05-01T12`` (UTC) as a datetime."""
    return datetime.fromisoformat(hour).replace(tzinfo=UTC)


def add(rows: Iterable[Mapping[str, Any]]) -> None:
    """Count events (mappings with ``created``, ``action`` and ``context``) in."""
    _apply(Counter(key_of(row["created"], row["action"], row["context"]) for row in rows))


def subtract(pks: Any) -> None:
    """Count the sealed events among ``pks`` out, before they are deleted (with their links;
    call it in the deleting transaction)."""
    sealed = Event.objects.filter(
        pk__in=EventChainLink.objects.filter(event_uuid__in=pks).values("event_uuid")
    )
    counts: Counter[Key] = Counter()
    for row in sealed.values("created", "action", "context__geo"):
        counts[key_of(row["created"], row["action"], {"geo": row["context__geo"]})] -= 1
    _apply(counts)


def forget_hours(start: datetime, end: datetime) -> int:
    """Delete the roll-ups of the hours from ``start`` to ``end`` (exclusive; whole hours):
    when every event created then is deleted at once (a month's partition dropped, in its
    transaction). A roll-up's ``hour`` is its events' ``created`` truncated to the hour (UTC),
    so these are exactly the roll-ups those events counted in (both the places' and the
    volume's). Returns how many rows."""
    deleted = 0
    for model in (EventRollup, EventVolume):
        hours = model.objects.filter(hour__gte=start, hour__lt=end)
        deleted += int(hours._raw_delete(connection.alias))
    return deleted


def _apply(counts: Mapping[Key, int]) -> None:
    rows = [(*key, count) for key, count in counts.items() if count]
    if not rows:
        return
    volume: Counter[tuple[datetime, str]] = Counter()
    for hour, action, *_place, count in rows:
        volume[(hour, action)] += count
    _upsert(EventRollup, ("hour", "action", "located", "lat", "long"), rows)
    _upsert(EventVolume, ("hour", "action"), [(*key, count) for key, count in volume.items()])


_TYPES = {"hour": "timestamptz", "action": "varchar", "located": "boolean"}


def _upsert(model: type[HourlyCount], key: tuple[str, ...], rows: list[Any]) -> None:
    """Add ``rows`` (the ``key`` columns, then a count) to the counts of ``model``."""
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join((*key, "count"))
    upsert = f"""ON CONFLICT ({", ".join(key)})
        DO UPDATE SET count = r.count + excluded.count"""
    if connection.vendor == "postgresql":
        # One statement of one array per column: a statement per key (hundreds per sealed
        # batch) was a large share of the sealer's time. The keys are unique (a Counter's),
        # as one INSERT ... ON CONFLICT DO UPDATE requires.
        arrays = ", ".join(f"%s::{_TYPES.get(name, 'float8')}[]" for name in key)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {table} AS r ({columns})
                SELECT * FROM unnest({arrays}, %s::bigint[]) {upsert}""",  # noqa: S608 - names only
                [list(column) for column in zip(*rows, strict=True)],
            )
        return
    placeholders = ", ".join(["%s"] * (len(key) + 1))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} AS r ({columns}) VALUES ({placeholders}) {upsert}",  # noqa: S608 - names only
            rows,
        )


def unroll_sql(gone: str, unlinked: str) -> str:
    """Common table expressions (PostgreSQL) for a statement that deletes events: they count
    out the events of CTE ``gone`` (returning ``event_uuid, created, action, lat, long``, see
    :data:`GONE_COLUMNS`) whose links CTE ``unlinked`` (returning ``event_uuid``) deleted,
    from both roll-ups (the volume's summed from the places' changes: one pass over the events)."""
    table = connection.ops.quote_name(EventRollup._meta.db_table)
    volume = connection.ops.quote_name(EventVolume._meta.db_table)
    return f"""
    rollup_changes AS MATERIALIZED (
        SELECT date_trunc('hour', g.created AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
            g.action, located, CASE WHEN located THEN g.lat ELSE 0 END AS lat,
            CASE WHEN located THEN g.long ELSE 0 END AS long, -count(*) AS change
        FROM (
            SELECT *, (lat IS NOT NULL AND long IS NOT NULL) AS located FROM {gone}
        ) AS g JOIN {unlinked} AS u ON u.event_uuid = g.event_uuid
        GROUP BY 1, 2, 3, 4, 5
    ), rollup_unrolled AS (
        INSERT INTO {table} AS r (hour, action, located, lat, long, count)
        SELECT * FROM rollup_changes
        ON CONFLICT (hour, action, located, lat, long)
        DO UPDATE SET count = r.count + excluded.count
    ), volume_unrolled AS (
        INSERT INTO {volume} AS r (hour, action, count)
        SELECT hour, action, sum(change) FROM rollup_changes GROUP BY 1, 2
        ON CONFLICT (hour, action) DO UPDATE SET count = r.count + excluded.count
    )"""  # noqa: S608 - only table and CTE names are interpolated


# What a deleting statement's ``RETURNING`` gives :func:`unroll_sql` (PostgreSQL).
GONE_COLUMNS = """event_uuid, created, action,
    CASE WHEN jsonb_typeof(context->'geo'->'lat') = 'number'
        THEN (context->'geo'->>'lat')::float8 END AS lat,
    CASE WHEN jsonb_typeof(context->'geo'->'long') = 'number'
        THEN (context->'geo'->>'long')::float8 END AS long"""


def counted(params: Mapping[str, Any]) -> QuerySet[EventRollup]:
    """The places' roll-ups that the event list's ``action``/``actions`` filters in
    ``params`` select (the filters' own conditions, applied to the roll-ups' ``action``), for
    an :func:`answerable` request whose filters were validated on the events."""
    return cast("QuerySet[EventRollup]", _filtered(params, EventRollup))


def counted_volume(params: Mapping[str, Any]) -> QuerySet[EventVolume]:
    """The volume's roll-ups that the filters in ``params`` select (as :func:`counted`)."""
    return cast("QuerySet[EventVolume]", _filtered(params, EventVolume))


def _filtered(params: Mapping[str, Any], model: type[HourlyCount]) -> QuerySet[Any]:
    from auditlog.listing import EVENT_LISTING

    assert EVENT_LISTING.filterset is not None
    counted = model._default_manager.filter(count__gt=0)
    return EVENT_LISTING.filterset(data=params, queryset=counted).qs


def _unsealed(events: QuerySet[Event]) -> QuerySet[Event]:
    """The ``events`` still waiting to be sealed, found from the queue's keys: the queue is
    read first, so the events are looked up by key. As a subquery, the planner (whose figure
    for the queue may date from a backlog since sealed) can hash every event in range instead:
    600 ms at 125,000 events for a queue of a few rows."""
    queue = EventChainPending.objects.values_list("event_uuid", flat=True)
    if connection.vendor != "postgresql":
        return events.order_by().filter(pk__in=queue)
    keys = RawSQL("SELECT unnest(%s::uuid[])", [list(queue)])
    return events.order_by().filter(pk__in=keys)


def volume(
    *, since: datetime, rollups: QuerySet[EventVolume], events: QuerySet[Event]
) -> list[dict[str, Any]]:
    """Events per action in 6-hour buckets (00, 06, 12, 18 UTC) since ``since``, ordered by
    time then action (as :meth:`EventQuerySet.volume <auditlog.models.EventQuerySet.volume>`
    answers): the ``rollups`` (see :func:`counted_volume`) and the ``events`` of the same
    search still waiting to be sealed."""
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = rollups.filter(hour__gte=hour).order_by()
    if connection.vendor == "postgresql":
        # The database folds the hours into buckets: over 30 days, decoding every hour's row
        # in Python was most of the request (thousands of rows for a few hundred buckets).
        column = f"{connection.ops.quote_name(EventVolume._meta.db_table)}.hour"
        bucket = RawSQL(f"to_timestamp(floor(extract(epoch FROM {column}) / 21600) * 21600)", [])  # noqa: S611 - the table name only
        buckets = hours.annotate(bucket=bucket).values("bucket", "action")
        rows = [
            {"hour": row["bucket"], "action": row["action"], "count": row["total"]}
            for row in buckets.annotate(total=Sum("count"))
        ]
    else:
        rows = [
            {"hour": row["hour"], "action": row["action"], "count": row["count"]}
            for row in hours.values("hour", "action", "count")
        ]
    waiting = (
        _unsealed(events)
        .filter(created__gte=since)
        .annotate(hour=TruncHour("created", tzinfo=UTC))
        .values("hour", "action")
        .annotate(count=Count("*"))
    )
    return [row for row in six_hour_buckets([*rows, *waiting]) if row["count"] > 0]


def places(
    *, rollups: QuerySet[EventRollup], events: QuerySet[Event], limit: int = 5000
) -> list[dict[str, Any]]:
    """Located places with their event counts, the busiest ``limit`` first (``rollups`` and
    ``events`` as for :func:`volume`)."""
    counts: Counter[tuple[float, float]] = Counter()
    for row in (
        rollups.filter(located=True).values("lat", "long").annotate(total=Sum("count")).order_by()
    ):
        counts[(row["lat"], row["long"])] += row["total"]
    lat = KeyTransform("lat", KeyTransform("geo", "context"))
    long = KeyTransform("long", KeyTransform("geo", "context"))
    for row in (
        _unsealed(events)
        .filter(~Q(context__geo__lat=None), ~Q(context__geo__long=None))
        .annotate(lat=lat, long=long)
        .values("lat", "long")
        .annotate(total=Count("*"))
        .order_by()
    ):
        located, y, x = place_of({"geo": {"lat": row["lat"], "long": row["long"]}})
        if located:
            counts[(y, x)] += row["total"]
    return [
        {"lat": y, "long": x, "count": count}
        for (y, x), count in counts.most_common(limit)
        if count > 0
    ]
