"""Authentication events from Django's signals and our own."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal, receiver
from django.http import HttpRequest

from auditlog.context import audit_ignore
from auditlog.models import EventAction
from auditlog.services import record_event

SIGNALS_APP = "auditlog.signals"

# Sent by the login view when rate limiting refuses an attempt: (request, username, reasons).
login_blocked = Signal()
# The context's ``reason`` of the login_failed event that records a refused (blocked) login.
BLOCKED_REASON = "blocked"


@receiver(user_logged_in, dispatch_uid="auditlog.login")
def _on_login(sender: Any, request: HttpRequest | None, user: Any, **_: Any) -> None:
    context: dict[str, Any] = {}
    if request is not None and (method := getattr(request, "auth_method", None)):
        context["auth_method"] = method
    record_event(
        action=EventAction.LOGIN, app=SIGNALS_APP, context=context, user=user, request=request
    )


@receiver(user_logged_out, dispatch_uid="auditlog.logout")
def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **_: Any) -> None:
    if user is None:
        return
    record_event(action=EventAction.LOGOUT, app=SIGNALS_APP, user=user, request=request)


@receiver(user_login_failed, dispatch_uid="auditlog.login_failed")
def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    user_model = get_user_model()
    username = credentials.get(user_model.USERNAME_FIELD) or credentials.get("username")
    matched = (
        user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
        if isinstance(username, str)
        else None
    )
    user = matched or user_model.objects.anonymous()  # type: ignore[attr-defined]
    record_event(
        action=EventAction.LOGIN_FAILED,
        app=SIGNALS_APP,
        context=credentials,
        user=user,
        request=request,
    )


@receiver(login_blocked, dispatch_uid="auditlog.login_blocked")
def _on_login_blocked(
    sender: Any, request: HttpRequest, username: str, reasons: list[str], **_: Any
) -> None:
    user_model = get_user_model()
    matched = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
    # What newer authentik records as login_blocked: the release the API targets writes a
    # login_failed with the reason (auditlog/compat.py).
    record_event(
        action=EventAction.LOGIN_FAILED,
        app=SIGNALS_APP,
        context={
            "reason": BLOCKED_REASON,
            "message": "Too many failed login attempts.",
            "reasons": reasons,
            "username": username,
        },
        user=matched or user_model.objects.anonymous(),  # type: ignore[attr-defined]
        request=request,
    )


def _update_last_login_quietly(sender: Any, user: Any, **kwargs: Any) -> None:
    # The login event already says the user logged in; a model_updated event for last_login
    # on every login would only be noise.
    with audit_ignore():
        update_last_login(sender, user, **kwargs)


def replace_last_login_receiver() -> None:
    user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
    user_logged_in.connect(_update_last_login_quietly, dispatch_uid="auditlog.update_last_login")
