"""The ORM's bulk paths on the signal path (SQLite, or PostgreSQL with ``AUDIT_DB_CAPTURE``
off): ``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` send no ``post_save``, so
they are wrapped here to record the same ``model_created`` / ``model_updated`` events as a
``save()`` would, in the same transaction. (``QuerySet.delete()`` sends ``pre_delete`` for
audited models already.) Raw SQL is not seen on this path: on SQLite it is not captured.

On PostgreSQL with database-side capture the triggers see these statements themselves and the
wrappers step aside.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction

from auditlog import dbcapture
from auditlog.capture import SNAPSHOT_ATTR, build_diff, is_audited, snapshot
from auditlog.context import audit_ignore, capture_is_ignored
from auditlog.models import EventAction
from auditlog.sanitize import model_to_dict
from auditlog.services import record_event

CAPTURE_APP = "auditlog.capture"

_original_update = models.QuerySet.update
_original_bulk_create = models.QuerySet.bulk_create
_original_bulk_update = models.QuerySet.bulk_update


def _captured(queryset: models.QuerySet[Any]) -> bool:
    return (
        is_audited(queryset.model)
        and not capture_is_ignored()
        and not dbcapture.capturing(queryset.db)
    )


def _record(instance: models.Model, action: str, diff: dict[str, Any]) -> None:
    context: dict[str, Any] = {"model": model_to_dict(instance)}
    if diff:
        context["diff"] = diff
    record_event(action=action, app=CAPTURE_APP, context=context)


def _update(self: models.QuerySet[Any], **kwargs: Any) -> int:
    if not _captured(self):
        return _original_update(self, **kwargs)
    with transaction.atomic(using=self.db, savepoint=False):
        before = {row.pk: row for row in self._chain()}  # type: ignore[attr-defined]
        count = _original_update(self, **kwargs)
        model = self.model
        for row in model._base_manager.using(self.db).filter(pk__in=list(before)):
            previous = before[row.pk].__dict__.get(SNAPSHOT_ATTR) or {}
            _record(row, EventAction.MODEL_UPDATED, build_diff(previous, snapshot(row)))
    return count


def _bulk_create(self: models.QuerySet[Any], objs: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
    if not _captured(self):
        return _original_bulk_create(self, objs, *args, **kwargs)
    with transaction.atomic(using=self.db, savepoint=False):
        created = _original_bulk_create(self, objs, *args, **kwargs)
        for obj in created:
            if obj.pk is None:  # a backend that cannot return the new keys
                continue
            state = snapshot(obj)
            obj.__dict__[SNAPSHOT_ATTR] = state
            _record(obj, EventAction.MODEL_CREATED, build_diff({}, state, created=True))
    return created


def _bulk_update(
    self: models.QuerySet[Any], objs: Iterable[Any], fields: Any, *args: Any, **kwargs: Any
) -> Any:
    if not _captured(self):
        return _original_bulk_update(self, objs, fields, *args, **kwargs)
    objs = list(objs)
    with transaction.atomic(using=self.db, savepoint=False):
        stored = self.model._base_manager.using(self.db).in_bulk([obj.pk for obj in objs])
        with audit_ignore():  # its update() calls are this event, not others
            count = _original_bulk_update(self, objs, fields, *args, **kwargs)
        for obj in objs:
            previous = stored.get(obj.pk)
            if previous is None:
                continue
            before = previous.__dict__.get(SNAPSHOT_ATTR) or {}
            current = {**before, **snapshot(obj)}
            _record(obj, EventAction.MODEL_UPDATED, build_diff(before, current, fields))
            obj.__dict__[SNAPSHOT_ATTR] = current
    return count


def install() -> None:
    models.QuerySet.update = _update  # type: ignore[method-assign]
    models.QuerySet.bulk_create = _bulk_create  # type: ignore[method-assign]
    models.QuerySet.bulk_update = _bulk_update  # type: ignore[method-assign]
