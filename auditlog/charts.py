"""The volume chart's series: events per action over the whole period a search covers.

The chart shows what the list and the map show: every event the search and filters select,
from the first to the last, in buckets sized so the period fits in about a hundred bars
(an hour, six hours, a day or a week)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, QuerySet
from django.db.models.functions import TruncDay, TruncHour

from auditlog import compat
from auditlog.models import Event

# (bucket, the longest period it is used for)
BUCKETS = (
    (timedelta(hours=1), timedelta(days=4)),
    (timedelta(hours=6), timedelta(days=25)),
    (timedelta(days=1), timedelta(days=120)),
    (timedelta(days=7), timedelta.max),
)


def bucket_for(span: timedelta) -> timedelta:
    return next(bucket for bucket, longest in BUCKETS if span <= longest)


def _floor(moment: datetime, bucket: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket < timedelta(days=1):
        hours = int(bucket.total_seconds() // 3600)
        hour = moment.hour - moment.hour % hours
        return moment.replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def volume_series(queryset: QuerySet[Event]) -> dict[str, Any]:
    """``{"start", "bucket_seconds", "buckets", "rows": [{action, time, count}]}`` for every
    event of ``queryset``, newer releases' actions counted as the target's (like the API)."""
    bounds = queryset.aggregate(first=Min("created"), last=Max("created"))
    first, last = bounds["first"], bounds["last"]
    if first is None or last is None:
        return {"start": None, "end": None, "bucket_seconds": 3600, "buckets": 0, "rows": []}
    bucket = bucket_for(last - first)
    start = _floor(first, bucket)
    trunc = TruncHour if bucket < timedelta(days=1) else TruncDay
    grouped = (
        queryset.annotate(slot=trunc("created", tzinfo=UTC))
        .values("slot", "action")
        .annotate(count=Count("*"))
        .order_by()
    )
    counts: dict[tuple[datetime, str], int] = defaultdict(int)
    for row in grouped:
        index = (row["slot"].astimezone(UTC) - start) // bucket
        counts[(start + index * bucket, row["action"])] += row["count"]
    rows = [
        {"action": action, "time": time, "count": count}
        for (time, action), count in sorted(counts.items())
    ]
    return {
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": last.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "bucket_seconds": int(bucket.total_seconds()),
        "buckets": (last.astimezone(UTC) - start) // bucket + 1,
        "rows": [
            {**row, "time": row["time"].isoformat().replace("+00:00", "Z")}
            for row in compat.volume_for_client(rows)
        ],
    }
