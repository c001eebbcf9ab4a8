"""Events and the system settings that govern them (notifications live in ``notifications``).

Longer than 500 lines on purpose: this is the app's whole schema (the event with its QuerySet,
the settings row, and the three tables of the chain, which Django wants in one models module).
"""

from __future__ import annotations

import ipaddress
import logging
import operator
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from threading import Lock
from typing import Any
from uuid import uuid4

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, models
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import TruncHour
from django.db.models.sql.where import AND
from django.utils import timezone

from auditlog.sanitize import model_to_dict, redact_event
from directory.brands import default_brand
from directory.models import User
from project.durations import DurationFormatError, parse_duration

logger = logging.getLogger(__name__)


class EventAction(models.TextChoices):
    """Every kind of event: exactly the action enum of the authentik release the API targets
    (``auditlog/compat.py`` says which, and how the target moves). The value is stored; the
    label is the title-cased member name."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    USER_WRITE = "user_write"
    USER_OFFBOARDED = "user_offboarded"
    SUSPICIOUS_REQUEST = "suspicious_request"
    PASSWORD_SET = "password_set"  # noqa: S105 - an action name, not a password
    SECRET_VIEW = "secret_view"  # noqa: S105
    SECRET_ROTATE = "secret_rotate"  # noqa: S105
    INVITE_USED = "invitation_used"
    AUTHORIZE_APPLICATION = "authorize_application"
    SOURCE_LINKED = "source_linked"
    IMPERSONATION_STARTED = "impersonation_started"
    IMPERSONATION_ENDED = "impersonation_ended"
    FLOW_EXECUTION = "flow_execution"
    POLICY_EXECUTION = "policy_execution"
    POLICY_EXCEPTION = "policy_exception"
    PROPERTY_MAPPING_EXCEPTION = "property_mapping_exception"
    SYSTEM_TASK_EXECUTION = "system_task_execution"
    SYSTEM_TASK_EXCEPTION = "system_task_exception"
    SYSTEM_EXCEPTION = "system_exception"
    CONFIGURATION_ERROR = "configuration_error"
    CONFIGURATION_WARNING = "configuration_warning"
    MODEL_CREATED = "model_created"
    MODEL_UPDATED = "model_updated"
    MODEL_DELETED = "model_deleted"
    EMAIL_SENT = "email_sent"
    UPDATE_AVAILABLE = "update_available"
    EXPORT_READY = "export_ready"
    REVIEW_INITIATED = "review_initiated"
    REVIEW_OVERDUE = "review_overdue"
    REVIEW_ATTESTED = "review_attested"
    REVIEW_COMPLETED = "review_completed"
    ACCESS_REQUEST_CREATED = "access_request_created"
    ACCESS_REQUEST_APPROVED = "access_request_approved"
    ACCESS_REQUEST_DENIED = "access_request_denied"
    ACCESS_REQUEST_REVOKED = "access_request_revoked"
    CUSTOM_PREFIX = "custom_"


# The authentik release the API targets, and the actions of newer releases with the target's
# action for the same thing: auditlog/compat.py explains both and how the target moves (they
# live here, beside EventAction, so that this module imports nothing above it).
TARGET_RELEASE = "2026.8"
NEWER_ACTIONS: dict[str, str] = {
    "user_created": "model_created",
    "login_blocked": "login_failed",
}

# Enum.values builds a new list on every access; these are asked on every ingested event.
ACTION_VALUES = frozenset(EventAction.values)


def is_valid_action(value: str) -> bool:
    """A known action, or a custom one (``custom_`` followed by a name)."""
    if value in ACTION_VALUES:
        return True
    suffix = value.removeprefix(EventAction.CUSTOM_PREFIX)
    return suffix != value and all(c.isalnum() or c in "_-." for c in suffix)


def action_problem(value: str) -> str | None:
    """Why an event may not have the action ``value`` (``None``: it may)."""
    if is_valid_action(value):
        return None
    if value in NEWER_ACTIONS:
        return (
            f"{value!r} is an action of authentik releases newer than {TARGET_RELEASE}, "
            f"which this API targets; send {NEWER_ACTIONS[value]!r} instead."
        )
    return f"{value!r} is not a known action; use one of actions/ or custom_<name>."


def canonical_ip(value: Any) -> str:
    """An IP address in its canonical text; ``ValueError`` saying so when it is not one."""
    try:
        return str(ipaddress.ip_address(value))
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a valid IP address.") from None


# --- Retention ------------------------------------------------------------------------------


def validate_retention(value: str) -> None:
    if not value:
        return
    try:
        parse_duration(value)
    except DurationFormatError as exc:
        raise ValidationError(str(exc)) from None


class SystemSettings(models.Model):
    """Settings an administrator changes at run time (one row)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    event_retention = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_retention],
        help_text=(
            "How long events are kept, e.g. 'days=365' or 'weeks=3;hours=1'. Empty: use the "
            "EVENT_RETENTION environment variable."
        ),
    )
    gdpr_compliance = models.BooleanField(
        "GDPR compliance",
        default=True,
        help_text=(
            "When a user is deleted, also delete the events by them (user.pk) and about them "
            "(context.subject_uuid)."
        ),
    )

    class Meta:
        verbose_name = "system settings"
        verbose_name_plural = "system settings"

    def __str__(self) -> str:
        return "System settings"

    @classmethod
    def load(cls) -> SystemSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj

    @property
    def retention(self) -> timedelta:
        if self.event_retention:
            return parse_duration(self.event_retention)
        return settings.EVENT_RETENTION


_RETENTION_TTL_SECONDS = 30.0
_retention_lock = Lock()
_cached_retention: tuple[float, timedelta] | None = None


def current_retention() -> timedelta:
    """The retention in force (the system settings, else ``EVENT_RETENTION``); cached for a
    few seconds per process because every new event asks for it."""
    global _cached_retention
    now = time.monotonic()
    cached = _cached_retention
    if cached is not None and now - cached[0] < _RETENTION_TTL_SECONDS:
        return cached[1]
    try:
        row = SystemSettings.objects.filter(pk=1).only("event_retention").first()
    except DatabaseError:  # before the first migration
        row = None
    retention = row.retention if row is not None else settings.EVENT_RETENTION
    with _retention_lock:
        _cached_retention = (now, retention)
    return retention


def forget_retention() -> None:
    """Drop the cached retention; called when the system settings change."""
    global _cached_retention
    with _retention_lock:
        _cached_retention = None


def default_event_expiry() -> datetime:
    return timezone.now() + current_retention()


def default_event_brand() -> dict[str, Any]:
    brand = default_brand()
    return model_to_dict(brand) if brand is not None else {}


# --- Events ---------------------------------------------------------------------------------


class CreationTimeField(models.DateTimeField):
    """Like ``auto_now_add``: the time of the first save, whatever was set before.

    Bulk loaders that must keep a historical time (demo data) set ``_keep_created`` on the
    instance.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        if add and not getattr(model_instance, "_keep_created", False):
            value = timezone.now()
            setattr(model_instance, self.attname, value)
            return value
        return super().pre_save(model_instance, add)


class EventJSONField(models.JSONField):
    """A JSONField that decodes with orjson (several times faster than the standard library;
    listing events is mostly decoding their JSON). Anything orjson refuses, such as an integer
    beyond 64 bits, falls back to Django's own decoding, so values are the same."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, str) and self.decoder is None:
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        return super().from_db_value(value, expression, connection)

    def deconstruct(self) -> Any:
        # The column is a plain JSONField's: migrations need not know the difference.
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs


def six_hour_buckets(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Hourly counts (rows of ``hour, action, count``) folded into 6-hour buckets (00, 06, 12,
    18 UTC), ordered by time then action."""
    buckets: dict[tuple[datetime, str], int] = defaultdict(int)
    for row in rows:
        hour = row["hour"].astimezone(UTC)
        buckets[(hour.replace(hour=hour.hour - hour.hour % 6), row["action"])] += row["count"]
    return [
        {"action": action, "time": time, "count": count}
        for (time, action), count in sorted(buckets.items())
    ]


@dataclass(frozen=True)
class Alternative:
    """One way a row may match a filter of several values: its ``key`` (a lookup path such as
    ``action`` or ``user__username``, served by an index on the key then the time) equal to
    ``value``, and ``also``; or, without a key, ``also`` alone."""

    also: Q = field(default_factory=Q)
    key: str | None = None
    value: Any = None

    @classmethod
    def equal(cls, key: str, value: Any, also: Q | None = None) -> Alternative:
        return cls(also=also or Q(), key=key, value=value)

    def condition(self) -> Q:
        if self.key is None:
            return self.also
        return Q(**{self.key: self.value}) & self.also

    @staticmethod
    def any_of(alternatives: Iterable[Alternative]) -> Q:
        """The condition of rows matching any of ``alternatives`` (their OR)."""
        return reduce(operator.or_, (each.condition() for each in alternatives))

    def walk(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The rows of ``queryset`` (in a time order) that match this alternative, in its order.

        On PostgreSQL the key is compared as a range of one value and leads the order, so that
        only the index on (key, created, pk) gives the order, walked from the newest (oldest)
        of this value: with an equality the planner drops the key from the order, and may
        choose to walk the newest events of all instead, filtering them, which it expects to
        be short for a common value but is long when the newest events are all others."""
        if self.key is None or connections[queryset.db].vendor != "postgresql":
            return queryset.filter(self.condition())
        order = tuple(str(term) for term in queryset.query.order_by)
        newest_first = bool(order) and order[0].startswith("-")
        ranged = Q(**{f"{self.key}__gte": self.value, f"{self.key}__lte": self.value})
        # The index holds the key ascending, the time descending: newest first reads it
        # forwards, oldest first backwards.
        key_order = self.key if newest_first else f"-{self.key}"
        return queryset.filter(ranged & self.also).order_by(key_order, *order)


class EventQuerySet(models.QuerySet["Event"]):
    # Alternatives one of which every row of the queryset matches (set by ``matching_any``):
    # paging (``auditlog.paging``) walks each one's index in the list's order and merges the
    # walks, instead of walking the newest events and filtering them. The planner cannot
    # merge the ordered walks of an OR itself: it either sorts every matching row or walks
    # the newest events until a page matches, which is slow when the newest are all others.
    _alternatives: tuple[Alternative, ...] = ()
    _alternatives_node: Any = None

    def matching_any(self, *alternatives: Alternative, where: Q | None = None) -> EventQuerySet:
        """Rows matching any of ``alternatives`` (an OR), which paging may walk one by one.
        ``where``, when given, is the condition filtered by instead of the OR: it must select
        the same rows (``action IN (...)`` for an OR of actions)."""
        clone = self.filter(where if where is not None else Alternative.any_of(alternatives))
        if not clone._alternatives or len(alternatives) < len(clone._alternatives):
            # Either is correct (every row matches one of each); fewer walks are cheaper.
            clone._alternatives = alternatives
            # The OR just added: a walk of one alternative leaves it out (it is implied, and
            # with it the planner would expect the walk to find fewer rows than it does).
            where_node = clone.query.where
            clone._alternatives_node = (
                where_node.children[-1]
                if where_node.connector == AND and not where_node.negated
                else None
            )
        return clone

    def alternatives(self) -> tuple[Alternative, ...]:
        """Alternatives one of which every row matches (empty: unknown, the whole queryset)."""
        return self._alternatives

    def for_walks(self) -> EventQuerySet:
        """This queryset without the condition of its alternatives (their OR), for walking
        them one by one: each walk's own condition implies it."""
        clone = self._chain()  # type: ignore[attr-defined]
        node = self._alternatives_node
        children = clone.query.where.children
        if node is not None and clone.query.where.connector == AND:
            for index, child in enumerate(children):
                if child == node:
                    del children[index]
                    break
        return clone  # type: ignore[no-any-return]

    def _clone(self) -> EventQuerySet:
        # Filtering keeps every row within the alternatives; so does any other step but
        # combining with other querysets, which the methods below forget them for.
        clone = super()._clone()  # type: ignore[misc]
        clone._alternatives = self._alternatives
        clone._alternatives_node = self._alternatives_node
        return clone

    def _forget_alternatives(self, combined: Any, *others: Any) -> Any:
        if combined is not self and all(combined is not other for other in others):
            combined._alternatives = ()
            combined._alternatives_node = None
        return combined

    def __or__(self, other: Any) -> Any:
        return self._forget_alternatives(super().__or__(other), other)

    def __xor__(self, other: Any) -> Any:
        return self._forget_alternatives(super().__xor__(other), other)  # type: ignore[misc]

    def _combinator_query(self, combinator: str, *other_qs: Any, all: bool = False) -> Any:
        combined = super()._combinator_query(  # type: ignore[misc]
            combinator, *other_qs, all=all
        )
        combined._alternatives = ()
        combined._alternatives_node = None
        return combined

    def latest_first(self) -> EventQuerySet:
        """The default, stable order: newest first, the pk breaking ties."""
        return self.order_by("-created", "-event_uuid")

    def expired(self, now: datetime | None = None) -> EventQuerySet:
        return self.filter(expiring=True, expires__lte=now or timezone.now())

    def for_model(self, instance: models.Model) -> EventQuerySet:
        """The change history of one object (model events whose ``context.model`` is it)."""
        reference = model_to_dict(instance)
        return self.filter(
            action__startswith="model_",
            context__model__app=reference["app"],
            context__model__model_name=reference["model_name"],
            context__model__pk=reference["pk"],
        )

    def volume(self, *, since: datetime) -> list[dict[str, Any]]:
        """Events per action in 6-hour buckets (00, 06, 12, 18 UTC) since ``since``, ordered by
        time then action. The database groups by hour; the buckets are folded here."""
        rows = (
            self.filter(created__gte=since)
            .annotate(hour=TruncHour("created", tzinfo=UTC))
            .values("hour", "action")
            .annotate(count=Count("*"))  # not count(pk): the index has no pk to read
            .order_by()
        )
        return six_hour_buckets(rows)

    def stats(self, steps: dict[str, timedelta], *, now: datetime | None = None) -> dict[str, Any]:
        """Distinct users, and event counts within each step, in one query."""
        now = now or timezone.now()
        counts = {
            slug: Count("pk", filter=Q(created__gte=now - step)) for slug, step in steps.items()
        }
        result = self.aggregate(
            _unique_users=Count(KeyTransform("pk", "user"), distinct=True), **counts
        )
        unique_users = result.pop("_unique_users")
        return {"unique_users": unique_users, "count_step": result}

    def top_applications(self, *, action: str, top_n: int) -> list[dict[str, Any]]:
        """The most used applications (``context.authorized_application``) for ``action``."""
        rows = (
            self.filter(action=action, context__authorized_application__isnull=False)
            .annotate(application=KeyTransform("authorized_application", "context"))
            .values("application")
            .annotate(
                counted_events=Count("pk"),
                unique_users=Count(KeyTransform("pk", "user"), distinct=True),
            )
            .order_by("-counted_events")[:top_n]
        )
        return [
            {
                "application": row["application"],
                "counted_events": row["counted_events"],
                "unique_users": row["unique_users"],
            }
            for row in rows
        ]

    def geo_points(self, *, limit: int = 5000) -> list[dict[str, Any]]:
        """Where events happened: one row per located place with its event count, computed
        over the whole queryset (not a page) and bounded to the ``limit`` busiest places."""
        lat = KeyTransform("lat", KeyTransform("geo", "context"))
        long = KeyTransform("long", KeyTransform("geo", "context"))
        rows = (
            self.filter(context__geo__lat__isnull=False, context__geo__long__isnull=False)
            .annotate(lat=lat, long=long)
            .values("lat", "long")
            .annotate(count=Count("pk"))
            .order_by("-count")[:limit]
        )
        return [
            {"lat": row["lat"], "long": row["long"], "count": row["count"]}
            for row in rows
            if isinstance(row["lat"], int | float) and isinstance(row["long"], int | float)
        ]

    def by_username(self, username: str) -> EventQuerySet:
        """Events by the user, about the user (``context.username``) or changing the user."""
        alternatives = [
            Alternative.equal("user__username", username),
            Alternative.equal("context__username", username),
        ]
        user = User.objects.filter(username=username).only("pk").first()
        if user is not None:
            changed = Q(
                context__model__app=User._meta.app_label,
                context__model__model_name=User._meta.model_name,
            )
            alternatives.append(Alternative.equal("context__model__pk", user.pk, changed))
        return self.matching_any(*alternatives)


# The newest first, the pk breaking ties: the time part of the indexes that list events.
NEWEST_FIRST_KEYS = (models.F("created").desc(), models.F("event_uuid").desc())


class Event(models.Model):
    """One thing that happened. Append-only: nothing edits an event once it is written.

    Each insert also queues the event for the tamper-evident chain (a database trigger fills
    :class:`EventChainPending`; its place in the chain is an :class:`EventChainLink`), so the
    table is only ever inserted into and, by retention, deleted from.
    """

    event_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    user = EventJSONField(default=dict, blank=True)
    action = models.TextField(choices=EventAction.choices)
    app = models.TextField()
    context = EventJSONField(default=dict, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created = CreationTimeField()
    brand = EventJSONField(default=default_event_brand, blank=True)
    expires = models.DateTimeField(default=default_event_expiry)
    expiring = models.BooleanField(default=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        verbose_name = "Event"
        verbose_name_plural = "Events"
        # Every index is paid for by every write, so each one here serves a query: authentik's
        # single-column indexes on created, expires and expiring are covered by the composite
        # ones, the one on the whole user document by the user.pk and user.username ones, and
        # the text_pattern_ops twins Django adds to indexed text columns served nothing.
        indexes = [
            # Each filter's value with the time: "the newest events of this action (of this
            # user...)" is one ordered walk, and a filter of several values one walk each,
            # merged (EventQuerySet.matching_any).
            models.Index(
                models.F("action"),
                *NEWEST_FIRST_KEYS,
                name="auditlog_ev_action_t_idx",
            ),
            # Custom actions (few, if any) by time: the action filter's substring match on them.
            models.Index(
                fields=["-created", "-event_uuid"],
                include=["action"],
                condition=Q(action__startswith=EventAction.CUSTOM_PREFIX),
                name="auditlog_ev_custom_idx",
            ),
            models.Index(fields=["app"], name="auditlog_ev_app_idx"),
            models.Index(fields=["client_ip"], name="auditlog_ev_client_ip_idx"),
            # Retention: expiring events past their time.
            models.Index(fields=["expiring", "expires"], name="auditlog_ev_expiring_idx"),
            models.Index(
                KeyTransform("authorized_application", "context"), name="authentik_e_ctx_app__idx"
            ),
            models.Index(KeyTransform("pk", "user"), name="authentik_e_user_pk__idx"),
            # The newest first (the default order, page 1 and deep pages), with the action so
            # that the volume chart's count per hour and action reads the index alone.
            models.Index(
                fields=["-created", "-event_uuid"],
                include=["action"],
                name="auditlog_ev_latest_idx",
            ),
            # The filters and JSON paths people search most (also gives the planner their
            # statistics, so that it knows when walking the newest events is cheaper).
            models.Index(
                KeyTransform("username", "user"),
                *NEWEST_FIRST_KEYS,
                name="auditlog_ev_user_name_t_idx",
            ),
            models.Index(
                KeyTransform("username", "context"),
                *NEWEST_FIRST_KEYS,
                name="auditlog_ev_ctx_uname_t_idx",
            ),
            models.Index(
                KeyTransform("pk", KeyTransform("model", "context")),
                *NEWEST_FIRST_KEYS,
                name="auditlog_ev_ctx_mpk_t_idx",
            ),
            # With the time, so that "the newest events from DE" is one ordered index walk.
            models.Index(
                KeyTransform("country", KeyTransform("geo", "context")),
                *NEWEST_FIRST_KEYS,
                name="auditlog_ev_ctx_country_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Event action={self.action} user={self.user} context={self.context}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Last line of defence for a row saved past the recording service (which redacted
        # it already, and says so): whatever reached the JSON is redacted before it is stored.
        if not self.__dict__.pop("_redacted", False):
            self.user, self.context, brand = redact_event(
                user=self.user or {}, context=self.context or {}, brand=self.brand
            )
            self.brand = brand if brand is not None else self.brand
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            logger.debug(
                "Created Event",
                extra={"action": self.action, "client_ip": self.client_ip, "user": self.user},
            )

    # --- Presentation ---------------------------------------------------------------------------

    @property
    def summary(self) -> str:
        if "message" in self.context:
            return str(self.context["message"])
        return f"{self.action}: {self.context}"

    @property
    def hyperlink(self) -> str | None:
        return self.context.get("hyperlink")

    @property
    def hyperlink_label(self) -> str | None:
        return self.context.get("hyperlink_label")

    @property
    def action_label(self) -> str:
        try:
            return EventAction(self.action).label
        except ValueError:
            return self.action

    @property
    def is_model_event(self) -> bool:
        return self.action in (
            EventAction.MODEL_CREATED,
            EventAction.MODEL_UPDATED,
            EventAction.MODEL_DELETED,
        )


# --- Tamper evidence ------------------------------------------------------------------------


class ChainRecordKind(models.TextChoices):
    CHECKPOINT = "checkpoint"
    PRUNE = "prune"


class ChainCheckpoint(models.Model):
    """A signed statement about the event chain (written only by ``auditlog.chain``).

    ``checkpoint``: the sealed event at ``sequence`` had ``chain_hash``. ``prune``: retention
    removed the ``count`` events from ``first_sequence`` to ``last_sequence``, whose first
    named ``first_prev`` as its previous link and whose last had ``last_hash`` (``sequence``
    and ``chain_hash`` repeat the end of the range). ``signature`` is an HMAC-SHA256 with a
    key that is not in the database; ``key_id`` names that key.
    """

    kind = models.TextField(choices=ChainRecordKind.choices, default=ChainRecordKind.CHECKPOINT)
    sequence = models.BigIntegerField()
    chain_hash = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)
    first_sequence = models.BigIntegerField(null=True, blank=True)
    last_sequence = models.BigIntegerField(null=True, blank=True)
    first_prev = models.CharField(max_length=64, null=True, blank=True)
    last_hash = models.CharField(max_length=64, null=True, blank=True)
    count = models.BigIntegerField(null=True, blank=True)
    signature = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)

    class Meta:
        verbose_name = "chain checkpoint"
        indexes = [
            models.Index(fields=["kind", "sequence"], name="auditlog_chain_kind_seq_idx"),
            models.Index(fields=["kind", "first_sequence"], name="auditlog_chain_kind_first_idx"),
        ]

    def __str__(self) -> str:
        return f"Chain {self.kind} at sequence {self.sequence}"


class EventChainLink(models.Model):
    """An event's place in the hash chain (written only by ``auditlog.chain``, insert-only):
    the ``sequence``-th link names ``prev_hash``, the link before it (or the genesis), and has
    ``chain_hash = sha256(prev_hash + the event's canonical JSON)``.

    ``event_uuid`` is deliberately not a foreign key: an event deleted past the application
    must neither cascade nor be refused, but leave this link behind, which verification then
    reports. ``event`` is only a join path for verification (no column, no constraint).

    On PostgreSQL with partitioned events the table is partitioned like the events, by month
    of ``event_created`` (:mod:`auditlog.partitions`), so retention drops a month's links
    with its events. Its database keys are then ``(sequence, event_created)`` and
    ``(event_uuid, event_created)``: across months, ``sequence`` and ``event_uuid`` are
    unique because the sealer, the only writer, holds the chain lock, numbers each link after
    the chain's head and never links an event that has a link in any month.
    """

    sequence = models.BigIntegerField(primary_key=True)
    event_uuid = models.UUIDField(unique=True)
    prev_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64)
    # The database's clock when the event was inserted (copied from the queue, covered by
    # chain_hash); null for links sealed before it was recorded, and without the trigger.
    queued_at = models.DateTimeField(null=True, blank=True)
    # The event's ``created`` when it was sealed: the month partition the link lives in.
    event_created = models.DateTimeField()
    event = models.ForeignObject(
        Event,
        on_delete=models.DO_NOTHING,
        from_fields=["event_uuid"],
        to_fields=["event_uuid"],
        related_name="+",
        null=True,
    )

    class Meta:
        verbose_name = "event chain link"

    def __str__(self) -> str:
        return f"Chain link {self.sequence} (event {self.event_uuid})"


class EventChainPending(models.Model):
    """An event committed but not sealed yet: the sealer's queue, filled by a database
    trigger on every insert into the events table (migrations ``0004_event_chain`` and
    ``0008_chain_queued_at``), emptied by the sealer in ``(created, event_uuid)`` order.
    ``queued_at`` is the database's clock at the insert, which the event's ``created`` may
    not precede by more than ``AUDIT_CHAIN_BACKDATE_BOUND``."""

    event_uuid = models.UUIDField(primary_key=True)
    created = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "pending chain event"
        indexes = [
            models.Index(fields=["created", "event_uuid"], name="auditlog_chain_pending_idx")
        ]

    def __str__(self) -> str:
        return f"Event {self.event_uuid} waiting to be sealed"


class HourlyCount(models.Model):
    """How many sealed events an hour had, per action (and whatever else a roll-up splits
    them by): kept by the sealer as it seals and by retention and erasure as they prune
    (:mod:`auditlog.rollups`)."""

    hour = models.DateTimeField()
    action = models.CharField(max_length=100)
    count = models.BigIntegerField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.count} {self.action} at {self.hour:%Y-%m-%d %H}:00"


class EventRollup(HourlyCount):
    """Hourly counts per action and per place: what the map reads instead of the events when
    a search only names actions (:mod:`auditlog.rollups`); ``located`` is false (and
    ``lat``/``long`` 0) for events without a place."""

    located = models.BooleanField()
    lat = models.FloatField()
    long = models.FloatField()

    class Meta:
        verbose_name = "hourly event count"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "action", "located", "lat", "long"], name="auditlog_rollup_key"
            )
        ]


class EventVolume(HourlyCount):
    """Hourly counts per action: the volume chart's roll-up (:mod:`auditlog.rollups`).
    :class:`EventRollup` holds the same counts split by place, a row per hour, action and
    place, nearly a row per event where places are many; the chart sums these instead, whose
    number follows hours and actions only. Kept in the same statements as
    :class:`EventRollup`."""

    class Meta:
        verbose_name = "hourly event count per action"
        constraints = [
            models.UniqueConstraint(fields=["hour", "action"], name="auditlog_volume_key")
        ]
