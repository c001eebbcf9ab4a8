"""The search language: DjangoQL, extended for JSON fields, with a plain-text fallback.

One backend serves the event list API, the web admin, exports and notification rules, so a
query means the same thing everywhere:

* ``action = "login" and context.geo.country = "DE"``: DjangoQL, where the JSON fields
  (``user``, ``context``, ``brand``, ``attributes``) take dotted paths of any depth, compared by
  JSON type (strings, numbers, ``True``/``False``, ``None``);
* lists in parentheses or square brackets: ``user.username in ["ana", "akadmin"]``;
* ``created > "2026-01-01"`` with dates or ISO 8601 timestamps; ``created = "2026-01-01"``
  matches the whole day;
* country and continent names where the data holds ISO codes
  (``context.geo.country = "Germany"`` means ``"DE"``);
* text without any operator is a text match over the model's search fields, as authentik does;
  a malformed query is an error with its position (HTTP 400), never a silent mismatch.

The parser is built once per process.

Longer than 500 lines on purpose: the schema (fields, JSON paths, typed values, names of
countries and continents) and the backend that compiles it are one language, kept together.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import pycountry
from django.core.exceptions import EmptyResultSet
from django.db import connections, models
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from djangoql.ast import Expression, Logical, Name, Node
from djangoql.exceptions import DjangoQLError, DjangoQLSchemaError
from djangoql.parser import DjangoQLParser
from djangoql.queryset import build_filter
from djangoql.schema import DateTimeField as QLDateTimeField
from djangoql.schema import (
    DjangoQLField,
    DjangoQLSchema,
    StrField,
)

from auditlog.models import Event
from project.loglevels import TRACE

logger = logging.getLogger(__name__)

# Characters that only a query (never a plain word search) contains.
_QUERY_CHARACTERS = re.compile(r"[=~<>!()\[\]\"']")
_NEGATIONS = {"!=", "!~", "not in", "not startswith", "not endswith"}
CONTINENTS = {
    "africa": "AF",
    "antarctica": "AN",
    "asia": "AS",
    "europe": "EU",
    "north america": "NA",
    "oceania": "OC",
    "south america": "SA",
}


class SearchError(Exception):
    """A query that cannot be run, with where in the query the problem is."""

    def __init__(
        self, message: str, *, query: str = "", line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.query = query
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.column:
            return f"{self.message} (line {self.line or 1}, column {self.column})"
        return self.message


def search_error_body(exc: Exception) -> dict[str, Any]:
    """The JSON body of a 400 for a bad query."""
    if not isinstance(exc, SearchError):
        exc = _as_search_error(exc, "")
    return {
        "detail": f"Invalid search query: {exc}",
        "search": {
            "message": exc.message,
            "line": exc.line,
            "column": exc.column,
            "query": exc.query,
        },
    }


def _as_search_error(exc: Exception, query: str) -> SearchError:
    if isinstance(exc, SearchError):
        return exc
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    return SearchError(message, query=query, line=line, column=column)


# --- Parsing --------------------------------------------------------------------------------

_parser_lock = threading.Lock()


@cache
def _parser() -> DjangoQLParser:
    return DjangoQLParser()


def parse(query: str) -> Node:
    """Parse a query into a DjangoQL AST (square-bracket lists accepted)."""
    normalised = _brackets_to_parentheses(query)
    # ply's parser and lexer keep state while parsing; one parse at a time per process.
    with _parser_lock:
        try:
            return _parser().parse(normalised)
        except DjangoQLError as exc:
            error = _as_search_error(exc, query)
    if error.column is None:  # "Unexpected end of input": the problem is at the very end
        lines = query.splitlines() or [""]
        error.line, error.column = len(lines), len(lines[-1]) + 1
    raise error


def _brackets_to_parentheses(query: str) -> str:
    """``[a, b]`` → ``(a, b)`` outside string literals; the length is unchanged, so error
    columns still point into the original text."""
    out = []
    quote: str | None = None
    escaped = False
    for char in query:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "[":
            char = "("
        elif char == "]":
            char = ")"
        out.append(char)
    return "".join(out)


def looks_like_query(text: str) -> bool:
    return bool(_QUERY_CHARACTERS.search(text))


# --- Fields ---------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _negatable(q: Q, operator: str, null_condition: Q) -> Q:
    """Negated comparisons also match rows where the value is absent (``IS DISTINCT FROM``)."""
    if operator in _NEGATIONS:
        return ~q | null_condition
    return q


class JSONPathField(DjangoQLField):
    """``root.a.b`` inside a JSON field, compared by the JSON type of the value."""

    type = "unknown"
    nullable = True
    value_types = [str, int, float, Decimal, bool]
    value_types_description = "strings, numbers, True, False or None"

    def __init__(self, model: builtins.type[models.Model], root: str, path: list[str]) -> None:
        super().__init__(model=model, name=path[-1], nullable=True)
        self.root = root
        self.path = path

    @property
    def lookup(self) -> str:
        return "__".join([self.root, *self.path])

    def validate(self, value: Any) -> None:
        if value is not None and type(value) not in self.value_types:
            raise DjangoQLSchemaError(
                f'"{self.root}.{".".join(self.path)}" can be compared to '
                f"{self.value_types_description}, but not to {value!r}"
            )

    def get_lookup(self, path: list[str], operator: str, value: Any) -> Q:
        value = self._translate(operator, _json_value(value))
        lookup = self.lookup
        absent = Q(**{f"{lookup}__isnull": True})
        if value is None:
            if operator not in ("=", "!="):
                raise DjangoQLSchemaError(f'"{operator}" cannot be used with None')
            is_none = absent | Q(**{lookup: None})
            return ~is_none if operator == "!=" else is_none
        suffix, _ = self.get_operator(operator)
        if operator in ("~", "!~", "startswith", "not startswith", "endswith", "not endswith"):
            value = str(value)
        q = Q(**{f"{lookup}{suffix}": value})
        return _negatable(q, operator, absent)

    def _translate(self, operator: str, value: Any) -> Any:
        """Country and continent names to the ISO codes that ``geo`` stores."""
        if (
            len(self.path) < 2
            or self.path[-2] != "geo"
            or self.path[-1] not in ("country", "continent")
        ):
            return value
        convert = _country_code if self.path[-1] == "country" else _continent_code
        if isinstance(value, list):
            return [convert(item) if isinstance(item, str) else item for item in value]
        if isinstance(value, str) and operator in ("=", "!="):
            return convert(value)
        return value


def _country_code(value: str) -> str:
    if len(value) == 2:
        return value.upper()
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        try:
            matches = pycountry.countries.search_fuzzy(value) if len(value) > 3 else []
        except LookupError:
            matches = []
        raise DjangoQLSchemaError(
            f'Unknown country {value!r}: geo.country holds ISO codes such as "DE"'
            + (f' (did you mean "{matches[0].alpha_2}" for {matches[0].name}?)' if matches else "")
        ) from None


def _continent_code(value: str) -> str:
    if len(value) == 2:
        return value.upper()
    try:
        return CONTINENTS[value.strip().lower()]
    except KeyError:
        raise DjangoQLSchemaError(
            f'Unknown continent {value!r}: geo.continent holds codes such as "EU", "NA", "AS"'
        ) from None


class JSONRootField(DjangoQLField):
    """A JSON field itself: a relation to a synthetic model listing its known keys."""

    type = "relation"
    nullable = False

    def __init__(self, model: builtins.type[models.Model], name: str, relation: str) -> None:
        super().__init__(model=model, name=name)
        self.relation = relation


class TimestampField(QLDateTimeField):
    """Dates (``2026-01-01``), ``YYYY-MM-DD HH:MM[:SS]`` or ISO 8601 timestamps.

    ``=`` with a date matches the whole day.
    """

    value_types_description = 'dates ("2026-01-01") or timestamps ("2026-01-01T10:00:00Z")'

    @staticmethod
    def parse_datetime(value: str) -> datetime | None:  # type: ignore[override]
        if not value:
            return None
        text = value.strip().replace(" ", "T", 1) if len(value.strip()) > 10 else value.strip()
        parsed: datetime | None = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            if day is None:
                raise ValueError(value)
            parsed = datetime(day.year, day.month, day.day)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed

    def get_lookup(self, path: list[str], operator: str, value: Any) -> Q:
        search = "__".join([*path, self.get_lookup_name()])
        if operator in ("=", "!=") and isinstance(value, str) and _is_date_only(value):
            start = self.parse_datetime(value)
            assert start is not None
            q = Q(**{f"{search}__gte": start, f"{search}__lt": start + timedelta(days=1)})
            return ~q if operator == "!=" else q
        return super().get_lookup(path, operator, value)


def _is_date_only(value: str) -> bool:
    return parse_date(value.strip()) is not None and len(value.strip()) == 10


class UUIDSearchField(StrField):
    """A UUID: full values compare exactly (with or without dashes), ``~`` matches parts."""

    def validate(self, value: Any) -> None:
        super().validate(value)

    def get_lookup(self, path: list[str], operator: str, value: Any) -> Q:
        if operator in ("=", "!=", "in", "not in"):
            values = value if isinstance(value, list) else [value]
            for item in values:
                try:
                    uuid.UUID(str(item))
                except ValueError:
                    raise DjangoQLSchemaError(f"{item!r} is not a UUID") from None
        return super().get_lookup(path, operator, value)


class IPSearchField(StrField):
    """An IP address column: exact comparisons need a valid address."""

    def get_lookup(self, path: list[str], operator: str, value: Any) -> Q:
        import ipaddress

        if operator in ("=", "!=", "in", "not in"):
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item is None:
                    continue
                try:
                    ipaddress.ip_address(str(item))
                except ValueError:
                    raise DjangoQLSchemaError(f"{item!r} is not an IP address") from None
        return super().get_lookup(path, operator, value)


class ChoiceField(StrField):
    """A text column with choices; values or labels are accepted, options are suggested."""

    suggest_options = True

    def get_options(self, search: str) -> list[str]:
        search = search.lower()
        return [str(value) for value, _ in self._field_choices() if search in str(value).lower()]

    def get_lookup_value(self, value: Any) -> Any:
        choices = self._field_choices()
        by_label = {str(label).lower(): key for key, label in choices}
        if isinstance(value, list):
            return [by_label.get(str(item).lower(), item) for item in value]
        return by_label.get(str(value).lower(), value)


class SuggestingStrField(StrField):
    """A text column whose distinct values are suggested (bounded)."""

    suggest_options = True

    def get_options(self, search: str) -> Any:
        queryset = self.model.objects.order_by().values_list(self.name, flat=True)  # type: ignore[union-attr]
        if search:
            queryset = queryset.filter(**{f"{self.name}__icontains": search})
        return sorted(set(queryset.distinct()[:200]))


# --- Schemas --------------------------------------------------------------------------------

JSONShape = dict[str, Any]  # key -> "str" | "int" | "float" | "bool" | nested JSONShape


@dataclass(frozen=True)
class JSONSpec:
    """A JSON field's known structure, for validation-free paths and for completion."""

    shape: JSONShape


class SearchSchema(DjangoQLSchema):
    """A DjangoQL schema whose JSON fields accept any dotted path."""

    fields: tuple[str, ...] = ()
    json_fields: dict[str, JSONSpec] = {}
    field_classes: dict[str, type[DjangoQLField]] = {}
    text_search_fields: tuple[str, ...] = ()

    @classmethod
    def model_class(cls) -> type[models.Model]:
        raise NotImplementedError

    def __init__(self, model: type[models.Model]) -> None:
        super().__init__(model)
        # Completion labels of JSON keys and the paths they stand for (filled by introspection).
        self.label_paths: dict[str, list[str]] = {}

    def get_fields(self, model: type[models.Model]) -> list[str]:
        if model is self.current_model:
            return list(self.fields)
        return []

    def get_field_instance(
        self, model: type[models.Model], field_name: str
    ) -> DjangoQLField | None:
        if field_name in self.json_fields:
            return JSONRootField(model, field_name, self.json_label(field_name))
        if field_name in self.field_classes:
            field = model._meta.get_field(field_name)
            nullable = getattr(field, "null", True)
            return self.field_classes[field_name](model=model, name=field_name, nullable=nullable)
        return super().get_field_instance(model, field_name)

    def json_label(self, field_name: str, *path: str) -> str:
        return "_".join([self.model_label(self.current_model), field_name, *path])

    def resolve_name(self, name: Name) -> Any:
        root, *path = name.parts
        if root in self.json_fields:
            if not path:
                raise DjangoQLSchemaError(
                    f'"{root}" is a JSON field: compare one of its keys, e.g. {root}.'
                    f"{next(iter(self.json_fields[root].shape), 'key')}"
                )
            return JSONPathField(self.current_model, root, path)
        return super().resolve_name(name)

    def introspection(self, extra_shapes: dict[str, JSONShape] | None = None) -> dict[str, Any]:
        """The DjangoQL completion widget's introspection, with the JSON keys as relations."""
        models_out: dict[str, dict[str, Any]] = {}
        label = self.model_label(self.current_model)
        own: dict[str, Any] = {}
        for name, field in self.models[label].items():
            entry: dict[str, Any] = {
                "type": field.type,
                "nullable": field.nullable,
                "options": None,
            }
            if isinstance(field, JSONRootField):
                entry["relation"] = field.relation
            elif field.suggest_options:
                entry["options"] = True if field.async_options else list(field.get_options(""))
            own[name] = entry
        models_out[label] = own
        for root, spec in self.json_fields.items():
            shape = _merge_shapes(spec.shape, (extra_shapes or {}).get(root, {}))
            self._introspect_shape(models_out, self.json_label(root), shape, [root])
        return {"current_model": label, "models": models_out}

    def _introspect_shape(
        self, out: dict[str, Any], label: str, shape: JSONShape, path: list[str]
    ) -> None:
        self.label_paths[label] = path
        entries: dict[str, Any] = {}
        for key, kind in sorted(shape.items()):
            if isinstance(kind, dict):
                child = f"{label}_{key}"
                entries[key] = {
                    "type": "relation",
                    "nullable": True,
                    "options": None,
                    "relation": child,
                }
                self._introspect_shape(out, child, kind, [*path, key])
            else:
                options = True if kind == "str" else None
                entries[key] = {"type": kind, "nullable": True, "options": options}
        out[label] = entries

    def json_path_for_label(self, label: str) -> list[str] | None:
        """``auditlog.event_context_geo`` → ``["context", "geo"]`` (for value suggestions)."""
        return self.label_paths.get(label)


def _merge_shapes(base: JSONShape, extra: JSONShape) -> JSONShape:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_shapes(merged[key], value)
        elif key not in merged:
            merged[key] = value
    return merged


def shape_of(documents: Iterable[Any], *, max_depth: int = 4, max_keys: int = 300) -> JSONShape:
    """The key structure found in some JSON documents (for completion of unknown keys)."""
    shape: JSONShape = {}
    count = 0

    def visit(document: Any, into: JSONShape, depth: int) -> None:
        nonlocal count
        if not isinstance(document, dict) or depth > max_depth:
            return
        for key, value in document.items():
            if (
                count >= max_keys
                or not isinstance(key, str)
                or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)
            ):
                continue
            if isinstance(value, dict):
                child = into.get(key)
                if not isinstance(child, dict):
                    child = into[key] = {}
                    count += 1
                visit(value, child, depth + 1)
            elif key not in into:
                into[key] = _kind(value)
                count += 1

    for document in documents:
        visit(document, shape, 1)
    return shape


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


# --- Applying a search ----------------------------------------------------------------------


def apply_search(
    queryset: QuerySet[Any], search: str, schema_class: type[SearchSchema]
) -> QuerySet[Any]:
    """Filter ``queryset`` by ``search`` (DjangoQL, or plain text when it has no operator)."""
    search = search.replace("\x00", "").strip()
    if not search:
        return queryset
    if not looks_like_query(search):
        found = text_search(queryset, search, schema_class.text_search_fields)
    else:
        found = queryset.filter(compile_query(search, schema_class))
    if logger.isEnabledFor(TRACE):
        logger.log(TRACE, "search %r", search, extra={"sql": _sql(found)})
    return found


def _sql(queryset: QuerySet[Any]) -> str:
    """The SQL of ``queryset`` (parameters inlined), as ``LOG_LEVEL=trace`` shows it."""
    try:
        return str(queryset.query)
    except EmptyResultSet:
        return "(nothing can match: no query is run)"


def compile_query(search: str, schema_class: type[SearchSchema]) -> Q:
    """Parse, validate and compile a DjangoQL query to a ``Q``; errors carry positions."""
    ast = parse(search)
    schema = schema_for(schema_class)
    try:
        schema.validate(ast)
        return build_filter(ast, schema)
    except (DjangoQLSchemaError, ValueError) as exc:
        error = _as_search_error(exc, search)
        if error.column is None:
            error.line, error.column = _position_of_problem(search, ast, exc)
        raise error from None


def text_search(queryset: QuerySet[Any], text: str, fields: Iterable[str]) -> QuerySet[Any]:
    """authentik's fallback: every term must appear (case-insensitively) in one of the fields.

    A term matches the text a user reads, on every database: "chloé" finds ``chloé.larsen``
    inside a JSON document and inside a plain column, whatever the case of its letters.
    """
    on_sqlite = connections[queryset.db].vendor == "sqlite"
    json_fields = {
        field
        for field in fields
        if isinstance(queryset.model._meta.get_field(field), models.JSONField)
    }
    fields = list(fields)
    for term in (part for part in re.split(r"[\s,]+", text) if part):
        condition = Q()
        for field in fields:
            if on_sqlite:
                condition |= _sqlite_term(field, term, field in json_fields)
            else:
                condition |= Q(**{f"{field}__icontains": term})
        queryset = queryset.filter(condition)
    return queryset


def _sqlite_term(field: str, term: str, is_json: bool) -> Q:
    """The condition for ``term`` in ``field`` on SQLite, which differs from PostgreSQL twice.

    SQLite keeps a JSON document as the text Django's encoder wrote, where every non-ASCII
    character (and ``"``, ``\\``, control characters) is a ``\\uXXXX``-style escape, so the
    term is looked for in that written form (a bare backslash then finds a backslash, not the
    escapes). And SQLite's LIKE folds the case of ASCII letters only, so a term with other
    letters goes through REGEXP (Python's ``re``, which Django registers on SQLite and which
    folds Unicode case), leaving the common ASCII term on the faster LIKE.
    """
    if term.isascii():
        return Q(**{f"{field}__icontains": json.dumps(term)[1:-1] if is_json else term})
    return Q(**{f"{field}__iregex": _unicode_pattern(term, is_json)})


def _unicode_pattern(term: str, is_json: bool) -> str:
    """A regular expression for ``term`` (used case-insensitively) where each non-ASCII
    character also matches its JSON escape, the escape of its other case included."""
    parts: list[str] = []
    for character in term:
        if character.isascii():
            parts.append(re.escape(json.dumps(character)[1:-1] if is_json else character))
            continue
        forms = {character}
        if is_json:
            for variant in (character, character.lower(), character.upper()):
                forms.add(json.dumps(variant)[1:-1])
        parts.append("(?:" + "|".join(re.escape(form) for form in sorted(forms)) + ")")
    return "".join(parts)


_schemas: dict[type[SearchSchema], SearchSchema] = {}


def schema_for(schema_class: type[SearchSchema]) -> SearchSchema:
    """One introspected schema per class and process."""
    schema = _schemas.get(schema_class)
    if schema is None:
        schema = _schemas.setdefault(schema_class, schema_class(schema_class.model_class()))
    return schema


def _position_of_problem(query: str, ast: Node, exc: Exception) -> tuple[int | None, int | None]:
    """Best effort: where the name the error is about starts, else where the first name does."""
    names = list(_names(ast))
    message = str(exc)
    unknown = re.search(r"Unknown field: ([A-Za-z_]\w*)", message)
    quoted = set(re.findall(r'"([^"]+)"', message))
    candidates = (
        [name for name in names if unknown.group(1) in name.split(".")]
        if unknown
        else [name for name in names if name in quoted or name.split(".")[-1] in quoted]
        or [name for name in names if name in message]
    )
    for name in [*candidates, *names]:
        index = query.find(name)
        if index >= 0:
            return 1 + query.count("\n", 0, index), index - (query.rfind("\n", 0, index) + 1) + 1
    return None, None


def _names(node: Node) -> Iterable[str]:
    if isinstance(node, Expression):
        if isinstance(node.operator, Logical):
            yield from _names(node.left)
            yield from _names(node.right)
        elif isinstance(node.left, Name):
            yield node.left.value


# --- The event schema -----------------------------------------------------------------------

MODEL_REFERENCE: JSONShape = {"pk": "str", "app": "str", "name": "str", "model_name": "str"}
USER_SHAPE: JSONShape = {"pk": "int", "username": "str", "email": "str", "is_anonymous": "bool"}


def _event_model() -> type[models.Model]:
    return Event


class EventSearchSchema(SearchSchema):
    fields = (
        "action",
        "app",
        "brand",
        "client_ip",
        "context",
        "created",
        "event_uuid",
        "expires",
        "user",
    )
    json_fields = {
        "user": JSONSpec(
            {**USER_SHAPE, "on_behalf_of": USER_SHAPE, "authenticated_as": USER_SHAPE}
        ),
        "brand": JSONSpec(MODEL_REFERENCE),
        "context": JSONSpec(
            {
                "http_request": {
                    "args": {},
                    "path": "str",
                    "method": "str",
                    "request_id": "str",
                    "user_agent": "str",
                },
                "geo": {
                    "continent": "str",
                    "country": "str",
                    "lat": "float",
                    "long": "float",
                    "city": "str",
                },
                "asn": {"asn": "int", "as_org": "str", "network": "str"},
                "model": MODEL_REFERENCE,
                "authorized_application": MODEL_REFERENCE,
                "diff": {},
                "username": "str",
                "message": "str",
                "auth_method": "str",
            }
        ),
    }
    field_classes = {
        "action": ChoiceField,
        "app": SuggestingStrField,
        "client_ip": IPSearchField,
        "created": TimestampField,
        "expires": TimestampField,
        "event_uuid": UUIDSearchField,
    }
    text_search_fields = ("event_uuid", "user", "action", "app", "context", "client_ip")

    @classmethod
    def model_class(cls) -> type[models.Model]:
        return _event_model()
