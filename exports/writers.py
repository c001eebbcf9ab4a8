"""CSV and JSON Lines files of the event and user lists, written fast.

Running a DRF serializer per row is far too slow for millions of rows, so the rows are read
with ``values_list`` from a server-side cursor and formatted here. The columns come from the
representation modules the API serializers are built from too: the CSV has the columns and
labels of ``EVENT_CSV_COLUMNS`` / ``USER_CSV_COLUMNS``, a JSONL line the fields of
``EVENT_FIELDS`` / ``USER_FIELDS`` (the list API's shape). Every field needs a formatter below,
else the export refuses to start, so a field added to the API cannot silently go missing from
(or appear wrongly in) the files.

Formatting follows the API: datetimes as DRF prints them (ISO 8601, ``Z`` for UTC), UUIDs
with dashes, JSON objects as JSON text (``{}`` for none). CSV cells are all quoted; ``None`` is
an empty cell, booleans are ``true``/``false``, and a text cell that a spreadsheet would run as
a formula gets a leading apostrophe. Only those fields are read, so password hashes and token
keys cannot reach a file.

Two ways to format, with the same result: Python formats the values of each row (any
database), or, for events on PostgreSQL in UTC, SQL expressions make each CSV line or JSON
object in the database, so that Python only writes lines out (several times faster).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import islice
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from types import SimpleNamespace
from typing import IO, Any, ClassVar, TypeVar, cast
from uuid import UUID

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import F, Func, QuerySet, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from auditlog.representation import EVENT_CSV_COLUMNS, EVENT_FIELDS
from directory.models import Group, User
from directory.representation import (
    USER_CSV_COLUMNS,
    USER_FIELDS,
    include_flag,
    join_group_names,
    partial_group,
    user_roles,
    user_roles_obj,
)

Row = tuple[Any, ...]
T = TypeVar("T")
Render = Callable[[Row], str]

UTC_NAMES = ("UTC", "Etc/UTC")
CSV_LINE_END = "\r\n"  # RFC 4180
# First characters that make a spreadsheet evaluate a cell (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# The model's own properties, applied to the values read (no model instance per row).
_avatar = cast(Callable[[Any], str], vars(User)["avatar"].fget)
_uid = cast(Callable[[Any], str], vars(User)["uid"].fget)


# --- Values ---------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """A cell that starts like a formula is prefixed with ``'`` so that it stays text."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_cell(value: Any) -> str:
    """Any JSON value as a CSV cell (constant columns, and the tests' reference)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return neutralise(compact_json(value))
    return neutralise(str(value))


def datetime_text(tz: tzinfo) -> Callable[[datetime], str]:
    """What DRF's ``DateTimeField`` prints (``iso-8601``) in the current time zone."""

    def render(value: datetime) -> str:
        if timezone.is_naive(value):
            value = timezone.make_aware(value, tz)
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return render


@dataclass(frozen=True)
class Kind:
    """How a non-null value of one type becomes a CSV cell and a JSON value."""

    csv: Callable[[Any], str]
    json: Callable[[Any], str]
    text: bool = False  # free text: formulas are neutralised in CSV

    def csv_cell(self, value: Any) -> str:
        if value is None:
            return ""
        cell = self.csv(value)
        return neutralise(cell) if self.text else cell

    def json_value(self, value: Any) -> str:
        return "null" if value is None else self.json(value)


def _string(render: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: '"' + render(value) + '"'


TEXT = Kind(csv=str, json=lambda value: encode_basestring(str(value)), text=True)
NUMBER = Kind(csv=str, json=lambda value: str(int(value)))
UUID_KIND = Kind(csv=str, json=_string(str))
BOOLEAN = Kind(
    csv=lambda value: "true" if value else "false", json=lambda value: "true" if value else "false"
)
RAW_JSON = Kind(csv=str, json=str, text=True)  # already JSON text


# --- Rendered by PostgreSQL -----------------------------------------------------------------
# These mirror the Python formatting above; the tests compare the files of both with the list
# API. Each takes its expression once (a repeated one would repeat its SQL parameters).


class Neutralised(Func):
    """The text with a ``'`` before a leading formula character."""

    template = r"regexp_replace(%(expressions)s, E'^([-=+@\\t\\r])', E'''\\1')"
    output_field = TextField()


class IsoUTC(Func):
    """A timestamp as DRF prints it in UTC: microseconds only when there are any."""

    template = (
        "replace(to_char(%(expressions)s AT TIME ZONE 'UTC', "
        """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '.000000Z', 'Z')"""
    )
    output_field = TextField()


class JSONObjectValue(Func):
    """A jsonb column as ``JSONObjectField`` shows it: ``{}`` rather than nothing."""

    template = "coalesce(nullif(%(expressions)s, 'null'::jsonb), '{}'::jsonb)"


class AsText(Func):
    template = "(%(expressions)s)::text"
    output_field = TextField()


class Host(Func):
    """An inet address as text without its mask, as the API shows it."""

    function = "host"
    output_field = TextField()


class CSVLine(Func):
    """One CSV line as ``csv.writer(quoting=QUOTE_ALL)`` writes it (without the line end):
    every cell quoted, quotes doubled, NULL as an empty cell."""

    template = "concat_ws(',', %(expressions)s)"
    output_field = TextField()

    def __init__(self, *cells: Any) -> None:
        super().__init__(*(CSVQuoted(cell) for cell in cells))


class CSVQuoted(Func):
    template = """'"' || replace(coalesce(%(expressions)s, ''), '"', '""') || '"'"""
    output_field = TextField()


class JSONLine(Func):
    """One JSON object with the keys in the given order (``json`` keeps it, ``jsonb`` not)."""

    template = "json_build_object(%(expressions)s)::text"
    output_field = TextField()


# --- Fields ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One value read per row: a field or annotation of the queryset, or an expression."""

    alias: str
    expression: Any = None


@dataclass(frozen=True)
class Field:
    """One output field: which row values it reads, how they combine, how it is written."""

    sources: tuple[str, ...]
    kind: Kind
    combine: Callable[..., Any] | None = None  # several sources, or a derived value

    def compile(self, index: dict[str, int], as_json: bool) -> Render:
        write = self.kind.json_value if as_json else self.kind.csv_cell
        positions = [index[alias] for alias in self.sources]
        combine = self.combine
        if combine is None:
            (at,) = positions
            return lambda row: write(row[at])
        if not positions:
            constant = write(combine())
            return lambda row: constant
        return lambda row: write(combine(*[row[at] for at in positions]))


def constant(value: Any) -> Field:
    """A value that is the same in every row (computed once)."""
    return Field((), Kind(csv=csv_cell, json=compact_json), combine=lambda: value)


class Layout:
    """The files of one model: what is read per row and how each field is written, for the
    list's query parameters ``params`` (``include_groups=false`` leaves ``groups_obj`` out)."""

    csv_columns: ClassVar[Mapping[str, str]]  # field name: header label
    json_fields: ClassVar[Sequence[str]]

    def __init__(self, params: Mapping[str, Any], vendor: str) -> None:
        self.params = params
        self.vendor = vendor
        render = datetime_text(timezone.get_current_timezone())
        self.datetime = Kind(csv=render, json=_string(render))
        self.sources: dict[str, Source] = {}

    # Described by each model's layout.
    def fields(self, as_json: bool) -> dict[str, Field]:
        raise NotImplementedError

    def sql_fields(self, as_json: bool) -> dict[str, Any] | None:
        """PostgreSQL expressions giving each field's final CSV text or JSON value, or
        ``None`` when the layout has none."""
        return None

    def enrich(self, rows: Sequence[Row]) -> Sequence[Row]:
        """Add the values that are no column of the row (users: their groups)."""
        return rows

    # Helpers for the layouts.
    def read(self, alias: str, expression: Any = None) -> str:
        self.sources.setdefault(alias, Source(alias, expression))
        return alias

    def field(self, alias: str, kind: Kind, expression: Any = None) -> Field:
        return Field((self.read(alias, expression),), kind)

    def json_object(self, name: str) -> Field:
        """A JSON field as JSON text (``{}`` when empty, as ``JSONObjectField`` shows it).

        PostgreSQL renders jsonb as text itself, much faster than parsing and dumping each
        value in Python.
        """
        if self.vendor == "postgresql":
            alias = self.read(f"_export_{name}_text", Cast(F(name), TextField()))
            return Field((alias,), RAW_JSON, lambda text: text if text and text != "null" else "{}")
        return Field(
            (self.read(name),), RAW_JSON, lambda value: compact_json({} if value is None else value)
        )

    # Putting it together.
    def labels(self) -> list[str]:
        """The CSV header: the columns' labels."""
        return list(self.csv_columns.values())

    def renders(self, as_json: bool) -> list[tuple[str, Render]]:
        """``(field name, render)`` in the representation's field order."""
        fields = self._in_order(self.fields(as_json), as_json)
        index = self.index()
        return [(name, field.compile(index, as_json)) for name, field in fields]

    def rendered_by_database(self, queryset: QuerySet[Any], as_json: bool) -> QuerySet[Any] | None:
        """On PostgreSQL in UTC, the CSV lines or JSON lines (strings) as the database renders
        them; otherwise ``None``, and Python formats the rows."""
        if self.vendor != "postgresql" or timezone.get_current_timezone_name() not in UTC_NAMES:
            return None
        sql_fields = self.sql_fields(as_json)
        if sql_fields is None:
            return None
        fields = self._in_order(sql_fields, as_json)
        queryset = queryset.prefetch_related(None)
        if not as_json:
            return queryset.values_list(CSVLine(*(cell for _, cell in fields)), flat=True)
        pairs = [part for name, expression in fields for part in (Value(name), expression)]
        return queryset.values_list(JSONLine(*pairs), flat=True)

    def _in_order(self, fields: dict[str, Any], as_json: bool) -> list[tuple[str, Any]]:
        """The formatters in the representation's field order; every field needs exactly one."""
        names = list(self.json_fields if as_json else self.csv_columns)
        missing, extra = set(names) - set(fields), set(fields) - set(names)
        if missing or extra:
            shape = "JSON fields" if as_json else "CSV columns"
            raise ImproperlyConfigured(
                f"{type(self).__name__} does not match its {shape}: "
                f"no formatter for {sorted(missing)}, formatters for unknown {sorted(extra)}"
            )
        return [(name, fields[name]) for name in names]

    def index(self) -> dict[str, int]:
        return {alias: at for at, alias in enumerate(self.sources)}

    def select(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The sources as tuples, in the queryset's order (call after :meth:`renders`)."""
        expressions = {s.alias: s.expression for s in self.sources.values() if s.expression}
        return queryset.prefetch_related(None).annotate(**expressions).values_list(*self.sources)


class EventLayout(Layout):
    csv_columns = EVENT_CSV_COLUMNS
    json_fields = EVENT_FIELDS

    def fields(self, as_json: bool) -> dict[str, Field]:
        fields = {
            "pk": self.field("event_uuid", UUID_KIND),
            "action": self.field("action", TEXT),
            "app": self.field("app", TEXT),
            "context": self.json_object("context"),
            "client_ip": self.field("client_ip", TEXT),
            "created": self.field("created", self.datetime),
            "expires": self.field("expires", self.datetime),
            "brand": self.json_object("brand"),
        }
        if as_json:
            fields["user"] = self.json_object("user")
        else:
            # Ingested events carry whatever user JSON their sender wrote: all of it is text.
            fields["user_pk"] = self.field("_export_user_pk", TEXT, KT("user__pk"))
            fields["username"] = self.field("_export_username", TEXT, KT("user__username"))
            fields["email"] = self.field("_export_email", TEXT, KT("user__email"))
        return fields

    def sql_fields(self, as_json: bool) -> dict[str, Any] | None:
        if as_json:
            return {
                "pk": AsText(F("event_uuid")),
                "user": JSONObjectValue("user"),
                "action": F("action"),
                "app": F("app"),
                "context": JSONObjectValue("context"),
                "client_ip": F("client_ip"),
                "created": IsoUTC("created"),
                "expires": IsoUTC("expires"),
                "brand": JSONObjectValue("brand"),
            }
        return {
            "pk": AsText(F("event_uuid")),
            "action": Neutralised(F("action")),
            "app": Neutralised(F("app")),
            "context": Neutralised(AsText(JSONObjectValue("context"))),
            "client_ip": Host("client_ip"),
            "created": IsoUTC("created"),
            "expires": IsoUTC("expires"),
            "brand": Neutralised(AsText(JSONObjectValue("brand"))),
            "user_pk": Neutralised(KT("user__pk")),
            "username": Neutralised(KT("user__username")),
            "email": Neutralised(KT("user__email")),
        }


@dataclass(frozen=True)
class GroupValues:
    name: str
    pk: str  # JSON string
    obj: str  # JSON of directory.representation.partial_group


class UserLayout(Layout):
    csv_columns = USER_CSV_COLUMNS
    json_fields = USER_FIELDS
    GROUPS = "_export_groups"  # appended to each row by enrich()

    def __init__(self, params: Mapping[str, Any], vendor: str) -> None:
        super().__init__(params, vendor)
        self._groups: dict[UUID, GroupValues] = {}

    def fields(self, as_json: bool) -> dict[str, Field]:
        include_roles = include_flag(self.params, "include_roles")
        fields = {
            "pk": self.field("id", NUMBER),
            "username": self.field("username", TEXT),
            "name": self.field("name", TEXT),
            "is_active": self.field("is_active", BOOLEAN),
            "last_login": self.field("last_login", self.datetime),
            # Roles do not depend on the user (yet).
            "roles": constant(user_roles(None)),
            "roles_obj": constant(user_roles_obj(None, include=include_roles)),
            "email": self.field("email", TEXT),
            "avatar": Field((self.read("name"), self.read("username")), TEXT, _avatar_of),
            "attributes": self.json_object("attributes"),
            "uid": Field((self.read("uuid"), self.read("id")), TEXT, _uid_of),
            "path": self.field("path", TEXT),
            "type": self.field("type", TEXT),
            "uuid": self.field("uuid", UUID_KIND),
            "password_change_date": self.field("password_change_date", self.datetime),
            "date_joined": self.field("date_joined", self.datetime),
            "last_updated": self.field("last_updated", self.datetime),
        }
        groups = (self.GROUPS,)
        if not as_json:
            fields["groups"] = Field(groups, TEXT, lambda gs: join_group_names(g.name for g in gs))
            return fields
        listed = Kind(csv=str, json=str)
        fields["is_superuser"] = self.field("_is_superuser", BOOLEAN)
        fields["groups"] = Field(groups, listed, lambda gs: _json_list(g.pk for g in gs))
        if include_flag(self.params, "include_groups"):
            fields["groups_obj"] = Field(groups, listed, lambda gs: _json_list(g.obj for g in gs))
        else:
            fields["groups_obj"] = constant(None)
        return fields

    def index(self) -> dict[str, int]:
        index = super().index()
        index[self.GROUPS] = len(index)
        return index

    def enrich(self, rows: Sequence[Row]) -> Sequence[Row]:
        at = super().index()["id"]
        groups = self._groups_of([row[at] for row in rows])
        return [(*row, groups.get(row[at], ())) for row in rows]

    def _groups_of(self, user_ids: list[int]) -> dict[int, list[GroupValues]]:
        """Each user's groups ordered by name (as the list API prefetches them)."""
        pairs = list(
            Group.users.through.objects.filter(user_id__in=user_ids).values_list(
                "user_id", "group_id"
            )
        )
        missing = {group_id for _, group_id in pairs} - self._groups.keys()
        for group in Group.objects.filter(pk__in=missing):
            self._groups[group.pk] = GroupValues(
                name=group.name,
                pk=f'"{group.pk}"',
                obj=compact_json(partial_group(group)),
            )
        result: dict[int, list[GroupValues]] = defaultdict(list)
        for user_id, group_id in pairs:
            result[user_id].append(self._groups[group_id])
        for groups in result.values():
            groups.sort(key=lambda group: group.name)
        return result


def _json_list(items: Iterable[str]) -> str:
    return "[" + ",".join(items) + "]"


def _avatar_of(name: str, username: str) -> str:
    return _avatar(SimpleNamespace(name=name, username=username))


def _uid_of(uuid: UUID, pk: int) -> str:
    return _uid(SimpleNamespace(uuid=uuid, pk=pk))


LAYOUTS: dict[str, type[Layout]] = {"auditlog.event": EventLayout, "directory.user": UserLayout}


# --- Files ----------------------------------------------------------------------------------


def _chunks(rows: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def copy_lines(lines: QuerySet[Any], stream: IO[str], line_end: str, chunk_size: int) -> int:
    """Write the lines of a one-text-column queryset (rendered by PostgreSQL) at ``COPY``
    speed: ``COPY (query) TO STDOUT`` streams them without a cursor round trip per chunk or
    a Python object per row. Return the number of lines.

    COPY's text format ends each row with a newline and escapes backslash, newline, carriage
    return, tab, backspace, form feed and vertical tab inside it, as Python's bytes escapes
    do; ``codecs.escape_decode`` undoes exactly those. The row ends become ``line_end``
    before decoding (as an escape, so they are told apart from newlines in the data).
    """
    if lines.query.distinct:  # the ORDER BY columns are then selected too: not one column
        count = 0
        for chunk in _chunks(lines.iterator(chunk_size=chunk_size), chunk_size):
            stream.write(line_end.join(chunk) + line_end)
            count += len(chunk)
        return count
    sql, params = lines.query.sql_with_params()
    ending = line_end.encode().replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    stream.flush()
    out = stream.buffer  # type: ignore[attr-defined]
    count = 0
    with connections[lines.db].cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor
        with raw.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
            pending: list[bytes] = []
            for row in copy:  # one row per message
                pending.append(bytes(row))
                if len(pending) >= chunk_size:
                    count += _write_copied(out, pending, ending, line_end.encode())
                    pending = []
            count += _write_copied(out, pending, ending, line_end.encode())
    return count


def _write_copied(out: IO[bytes], rows: list[bytes], ending: bytes, line_end: bytes) -> int:
    if rows:
        text = b"".join(rows)
        if b"\\" in text:  # something was escaped (rare: JSON text seldom has a backslash)
            # typeshed says str; for bytes in, CPython gives bytes out.
            text = cast(bytes, codecs.escape_decode(text.replace(b"\n", ending))[0])
        else:
            text = text.replace(b"\n", line_end)
        out.write(text)
    return len(rows)


def write_csv(layout: Layout, queryset: QuerySet[Any], stream: IO[str], chunk_size: int) -> int:
    """Write the header and one line per row, reading ``chunk_size`` rows at a time from a
    server-side cursor; return the number of rows."""
    writer = csv.writer(stream, quoting=csv.QUOTE_ALL, lineterminator=CSV_LINE_END)
    writer.writerow(layout.labels())
    count = 0
    rendered = layout.rendered_by_database(queryset, as_json=False)
    if rendered is not None:
        return copy_lines(rendered, stream, CSV_LINE_END, chunk_size)
    renders = [render for _, render in layout.renders(as_json=False)]
    for chunk in _chunks(layout.select(queryset).iterator(chunk_size=chunk_size), chunk_size):
        writer.writerows([[render(row) for render in renders] for row in layout.enrich(chunk)])
        count += len(chunk)
    return count


def write_jsonl(layout: Layout, queryset: QuerySet[Any], stream: IO[str], chunk_size: int) -> int:
    """Write one JSON object per line, in the list API's shape; return the number of rows."""
    count = 0
    rendered = layout.rendered_by_database(queryset, as_json=True)
    if rendered is not None:
        return copy_lines(rendered, stream, "\n", chunk_size)
    pairs = [(encode_basestring(name) + ":", render) for name, render in layout.renders(True)]
    for chunk in _chunks(layout.select(queryset).iterator(chunk_size=chunk_size), chunk_size):
        stream.write(
            "".join(
                "{" + ",".join([key + render(row) for key, render in pairs]) + "}\n"
                for row in layout.enrich(chunk)
            )
        )
        count += len(chunk)
    return count
