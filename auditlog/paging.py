"""Paging a table of millions of rows with page numbers, fast.

:class:`LargeTablePaginator` keeps Django Paginator's semantics (1-based pages, start and end
indexes) while avoiding what makes page numbers slow on a big table:

* ``count`` is exact when that is cheap (a ``COUNT`` bounded by ``EXACT_COUNT_LIMIT``) and
  otherwise the planner's estimate (PostgreSQL), so no request scans a million rows to count
  them;
* whether there is a next page is never taken from an estimate: each page fetches one row more
  than it shows, so ``next`` is exact and a client paging until ``next == 0`` neither stops early
  nor runs past the end; when a page reaches the end, the count becomes exact;
* a page far from the start is fetched in two steps on PostgreSQL, keys first (an index-only
  walk past the offset) then the rows for those keys, instead of reading every skipped row;
* a filter of a few values (``action=login``, ``username``: an OR the queryset knows as its
  alternatives, ``EventQuerySet.matching_any``) is walked one value at a time, each walk in the
  list's order on that value's index, and the walks merged: the planner itself would either
  sort every matching row or walk the newest events until a page matches, which is slow when
  the newest are all others.

The object list may be a queryset of model instances or a ``values_list`` whose first column
is the primary key (the event list's fast pages).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.cache import cache
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

# Tables up to this many rows (the planner's figure) are counted exactly; larger ones are
# estimated, unless the page itself shows where the results end.
EXACT_COUNT_LIMIT = 50_000
# From this offset on, pages are fetched keys-first.
DEFERRED_JOIN_OFFSET = 5_000
# How long a deep page remembers where the next one starts (a crawl asks page after page).
CRAWL_SECONDS = 600
# The order whose pages can continue from a row (the index on (created, pk)).
NEWEST_FIRST = ("-created", "-event_uuid")
OLDEST_FIRST = ("created", "event_uuid")
# A filter of more values than this is not walked value by value: so many values match often
# enough that one walk of the newest events finds a page soon.
MAX_WALKS = 8
# No table is this long: a larger offset is a page past the end (and would overflow SQL).
MAX_OFFSET = 2**53


class CountedPage(Page):  # type: ignore[type-arg]
    """A page that knows from the rows themselves whether another page follows."""

    def __init__(self, object_list: Any, number: int, paginator: Paginator, *, more: bool) -> None:
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more


class LargeTablePaginator(Paginator):
    def __init__(self, object_list: Any, per_page: int, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.count_is_estimate = False

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        table_rows = table_estimate(queryset)
        if table_rows is None or table_rows <= EXACT_COUNT_LIMIT:
            return queryset.count()  # a small table, or no planner to ask (SQLite)
        self.count_is_estimate = True
        if not queryset.query.where:  # the whole table: its estimate is the answer
            return table_rows
        return max(planner_estimate(queryset) or 0, 1)

    def validate_number(self, number: Any) -> int:
        """Pages from 1 on. The upper bound is not checked against a possibly estimated count:
        a page past the real end is found empty when fetched."""
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            value = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if value < 1:
            raise EmptyPage("That page number is less than 1")
        return value

    def page(self, number: Any) -> CountedPage:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if bottom > MAX_OFFSET:
            raise EmptyPage("That page contains no results")
        rows = self._rows(bottom, self.per_page + 1)
        more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        if not rows and number > 1:
            raise EmptyPage("That page contains no results")
        if not more:
            self._settle_count(bottom + len(rows))  # the end is in sight: the count is exact
        elif self.count < bottom + len(rows) + 1:
            self._settle_count(bottom + len(rows) + 1)  # at least one more row exists
        return CountedPage(rows, number, self, more=more)

    def _settle_count(self, count: int) -> None:
        self.__dict__["count"] = count
        self.__dict__.pop("num_pages", None)
        self.count_is_estimate = False

    def _rows(self, offset: int, limit: int) -> list[Any]:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return list(queryset[offset : offset + limit])
        if offset < DEFERRED_JOIN_OFFSET:
            walks = walks_of(queryset)
            if not walks:
                return list(queryset[offset : offset + limit])
            return rows_for_keys(queryset, merged_keys(queryset, walks, offset, limit))
        if connections[queryset.db].vendor != "postgresql":
            return list(queryset[offset : offset + limit])
        return rows_for_keys(queryset, crawl_keys(queryset, offset, limit, self.per_page))


Key = tuple[Any, Any]  # (pk, created), or (pk, None) for a list not in a time order


def rows_for_keys(queryset: QuerySet[Any], keys: list[Key]) -> list[Any]:
    """The rows of ``keys``, in their order. The time range of the keys (of events) bounds
    the query, so that on a partitioned table only the partitions holding them are read."""
    if not keys:
        return []
    rows = queryset.filter(pk__in=[pk for pk, _ in keys])
    times = [created for _, created in keys]
    if None not in times:
        rows = rows.filter(created__range=(min(times), max(times)))
    # Model instances, or tuples with the primary key first (a values_list page).
    tuples = bool(getattr(rows, "_fields", None))
    by_key = {row[0] if tuples else row.pk: row for row in rows}
    return [by_key[pk] for pk, _ in keys if pk in by_key]


def walks_of(queryset: QuerySet[Any]) -> tuple[Any, ...]:
    """The alternatives to walk one by one for ``queryset``'s pages (see the module's text),
    or none: the queryset is not in a time order, or not known as a few alternatives. Each
    has ``walk(queryset)``: its rows of ``queryset``, in the same order
    (``auditlog.models.Alternative``)."""
    if queryset.query.is_sliced or tuple(queryset.query.order_by) not in (
        NEWEST_FIRST,
        OLDEST_FIRST,
    ):
        return ()
    known = getattr(queryset, "alternatives", None)
    alternatives: tuple[Any, ...] = known() if known is not None else ()
    return alternatives if 1 < len(alternatives) <= MAX_WALKS else ()


def merged_keys(
    queryset: QuerySet[Any], walks: tuple[Any, ...], offset: int, limit: int
) -> list[Key]:
    """The keys of ``limit`` rows from ``offset`` of ``queryset`` (in a time order), walking
    each alternative of ``walks`` apart. Every row of the queryset matches one of them, and a
    row among the first ``offset + limit`` of the whole is among the first ``offset + limit``
    of each walk it matches, so that many rows of each walk, merged, hold the page. Where the
    database takes ordered, limited parts in a UNION (PostgreSQL), the walks are one query."""
    base = queryset.for_walks()  # type: ignore[attr-defined]
    parts = [walk.walk(base).values_list("pk", "created")[: offset + limit] for walk in walks]
    order = tuple(queryset.query.order_by)
    connection = connections[queryset.db]
    if not connection.features.supports_slicing_ordering_in_compound:
        found = dict(row for part in parts for row in part)
        # Python orders UUIDs as the databases do (by their 128-bit value).
        ordered = sorted(
            found.items(), key=lambda key: (key[1], key[0]), reverse=order == NEWEST_FIRST
        )
        return ordered[offset : offset + limit]
    # One query: the walks, their rows once each (a row may match two), in the list's order.
    merged = parts[0].union(*parts[1:]).order_by(*order)[offset : offset + limit]
    if base.query.where or connection.vendor != "postgresql":
        return list(merged)
    # Nothing but the alternatives filters the rows: each walk's first rows are its page, so
    # an ordered walk is the cheapest plan whatever the planner expects of the rows'
    # conditions (it reads JSON keys as independent, and may sort every match instead).
    with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        return list(merged)


def _crawl_key(queryset: QuerySet[Any], offset: int) -> str:
    sql, params = queryset.values_list("pk").query.sql_with_params()
    digest = hashlib.sha256(f"{sql}|{params!r}|{offset}".encode()).hexdigest()
    return f"paging:crawl:{digest}"


def crawl_keys(queryset: QuerySet[Any], offset: int, limit: int, per_page: int) -> list[Key]:
    """The keys of ``limit`` rows from ``offset`` of a newest-first queryset.

    A crawl asks page after page. Each deep page remembers where the next one starts (the
    ``created`` and pk of its last row, in the cache for :data:`CRAWL_SECONDS`), so the next
    page continues from there with an index range (no walk past the offset): every page of a
    crawl costs the same however deep. Without that mark (a page asked out of order, or after
    it expired) the keys come from an index-only walk past the offset. A crawl continued from
    the mark is not shifted by events written meanwhile (they are newer than every row shown);
    pages asked by number alone are, as with any offset."""
    if tuple(queryset.query.order_by) != NEWEST_FIRST:  # any list, in any order
        return [(pk, None) for pk in queryset.values_list("pk", flat=True)[offset : offset + limit]]
    mark = cache.get(_crawl_key(queryset, offset))
    if mark is not None:
        created, pk = mark
        after = queryset.filter(created__lte=created).filter(
            Q(created__lt=created) | Q(created=created, pk__lt=pk)
        )
        walks = walks_of(after)
        if walks:
            rows = merged_keys(after, walks, 0, limit)
        else:
            rows = list(after.values_list("pk", "created")[:limit])
    else:
        rows = list(queryset.values_list("pk", "created")[offset : offset + limit])
    if len(rows) > per_page:  # another page follows: where it starts
        last_pk, last_created = rows[per_page - 1]
        cache.set(_crawl_key(queryset, offset + per_page), (last_created, last_pk), CRAWL_SECONDS)
    return rows


def table_estimate(queryset: QuerySet[Any]) -> int | None:
    """The planner's row count of the queryset's table (PostgreSQL's ``reltuples``)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [queryset.model._meta.db_table],
        )
        found = cursor.fetchone()
    return max(int(found[0]), 0) if found else None


def planner_estimate(queryset: QuerySet[Any]) -> int | None:
    """How many rows PostgreSQL's planner expects ``queryset`` to return (None elsewhere)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
