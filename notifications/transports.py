"""Sending one notification through one transport.

* ``local``: the notification is saved and shows up in the recipient's drawer;
* ``webhook``: a JSON POST of ``{body, severity, user_email, user_username}`` (plus
  ``event_user_email`` and ``event_user_username`` when the event has a user);
* ``webhook_slack``: the Slack/Discord attachment format;
* ``email``: a plain-text email through Django's mail backend (skipped without an address).

Both webhook modes take an optional body template instead of their default body: JSON in which
``{{ placeholders }}`` are replaced from a fixed, sanitised context (see :data:`TEMPLATE_NAMES`).
A string that is exactly one placeholder takes the value with its JSON type; placeholders inside
longer strings are replaced by text. Nothing is evaluated, so a template cannot run code, and
the result is always valid JSON.

Everything that leaves goes through :func:`auditlog.sanitize.sanitize` first. Webhooks use a
timeout and follow a redirect only to the same host (307/308, method and body kept). Failures
raise :class:`TransportError`, whose ``retryable`` says whether trying later may help.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import models

from auditlog.sanitize import mask_string, sanitize
from project.loglevels import TRACE

if TYPE_CHECKING:
    from auditlog.models import Event
    from notifications.models import Notification, NotificationTransport


class TransportMode(models.TextChoices):
    """The ways a notification is sent."""

    LOCAL = "local", "Local notifications (drawer)"
    WEBHOOK = "webhook", "Generic Webhook"
    WEBHOOK_SLACK = "webhook_slack", "Slack Webhook (Slack/Discord)"
    EMAIL = "email", "Email"


logger = logging.getLogger(__name__)

MAX_TEMPLATE_LENGTH = 65_536
MAX_RESPONSE_BYTES = 65_536
MAX_REDIRECTS = 3
SLACK_MAX_FIELDS = 25  # Discord's limit
SLACK_COLOR = "#fd4b2d"
SLACK_NAME = "authentik"
USER_AGENT = "auditlog-notifications/1"
# The names a body template may use; each may be followed by a dotted path into it.
TEMPLATE_NAMES = (
    "body",
    "severity",
    "title",
    "hyperlink",
    "hyperlink_label",
    "user_email",
    "user_username",
    "event_user_email",
    "event_user_username",
    "user",
    "event",
    "transport",
)
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*")


class TransportError(Exception):
    """A send that failed. ``retryable``: trying again later may succeed."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class DeliverySkipped(Exception):
    """There is nothing to send (an email transport for a user without an address)."""


class TemplateError(ValueError):
    """A body template that is not valid JSON or names an unknown placeholder."""


def send(transport: NotificationTransport | None, notification: Notification) -> list[str]:
    """Send ``notification`` through ``transport`` (``None``: the drawer); return what happened.

    Raises :class:`TransportError` when it could not be sent, :class:`DeliverySkipped` when
    there was nothing to send.
    """
    mode = transport.mode if transport is not None else TransportMode.LOCAL
    if transport is None or mode == TransportMode.LOCAL:
        return send_local(notification)
    if mode == TransportMode.WEBHOOK:
        return post_json(transport.webhook_url, webhook_body(transport, notification))
    if mode == TransportMode.WEBHOOK_SLACK:
        return post_json(transport.webhook_url, slack_body(transport, notification))
    if mode == TransportMode.EMAIL:
        return send_email(transport, notification)
    raise TransportError(f"Unknown transport mode {mode!r}.", retryable=False)


# --- Local --------------------------------------------------------------------------------------


def send_local(notification: Notification) -> list[str]:
    if notification.event is not None and notification.event._state.adding:
        notification.event = None  # a test notification's event is never stored
    notification.body = mask_string(notification.body)
    notification.save()
    return [f"Notification created for {notification.user.get_username()}."]


# --- Webhook bodies -----------------------------------------------------------------------------


def webhook_body(transport: NotificationTransport, notification: Notification) -> Any:
    if transport.webhook_body_template:
        return render_body_template(
            transport.webhook_body_template, template_context(transport, notification)
        )
    return default_webhook_body(notification)


def default_webhook_body(notification: Notification) -> dict[str, Any]:
    body: dict[str, Any] = {
        "body": notification.body,
        "severity": notification.severity,
        "user_email": notification.user.email,
        "user_username": notification.user.get_username(),
    }
    event_user = _event_user(notification.event)
    if event_user:
        body["event_user_email"] = event_user.get("email")
        body["event_user_username"] = event_user.get("username")
    return body


def slack_body(transport: NotificationTransport, notification: Notification) -> Any:
    if transport.webhook_body_template:
        return render_body_template(
            transport.webhook_body_template, template_context(transport, notification)
        )
    event = notification.event
    fields: list[dict[str, Any]] = [
        {"title": "Severity", "value": notification.severity, "short": True},
        {"title": "Dispatched for user", "value": notification.user.get_username(), "short": True},
    ]
    event_user = _event_user(event)
    if event_user:
        fields.append(
            {"title": "Event user", "value": str(event_user.get("username")), "short": True}
        )
    for key, value in _string_context(event).items():
        if len(fields) >= SLACK_MAX_FIELDS:
            break
        fields.append({"title": key[:256], "value": value[:1024]})
    return {
        "username": SLACK_NAME,
        "attachments": [
            {
                "author_name": SLACK_NAME,
                "author_link": "https://goauthentik.io",
                "title": notification_title(notification, full=True),
                "color": SLACK_COLOR,
                "fields": fields,
                "footer": "authentik audit log",
            }
        ],
    }


def notification_title(notification: Notification, *, full: bool = False) -> str:
    """The event's action, else the body (its first 75 characters unless ``full``)."""
    if notification.event is not None:
        return str(notification.event.action)
    return notification.body if full else notification.body[:75]


def _event_user(event: Event | None) -> dict[str, Any]:
    if event is None or not isinstance(event.user, dict):
        return {}
    return sanitize(event.user) or {}


def _string_context(event: Event | None) -> dict[str, str]:
    """The event's top-level string context values, masked."""
    if event is None or not isinstance(event.context, dict):
        return {}
    context = sanitize(event.context) or {}
    return {key: value for key, value in context.items() if isinstance(value, str)}


# --- Body templates -----------------------------------------------------------------------------


def template_context(transport: NotificationTransport, notification: Notification) -> Any:
    """The only data a body template sees: plain, sanitised JSON."""
    user = notification.user
    event = notification.event
    event_user = _event_user(event)
    return sanitize(
        {
            "body": notification.body,
            "severity": notification.severity,
            "title": notification_title(notification),
            "hyperlink": notification.hyperlink,
            "hyperlink_label": notification.hyperlink_label,
            "user_email": user.email,
            "user_username": user.get_username(),
            "event_user_email": event_user.get("email"),
            "event_user_username": event_user.get("username"),
            "user": {
                "pk": user.pk,
                "username": user.get_username(),
                "email": user.email,
                "name": getattr(user, "name", ""),
            },
            "event": _event_data(event),
            "transport": {"name": transport.name, "mode": transport.mode},
        }
    )


def _event_data(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "pk": str(event.pk),
        "action": event.action,
        "app": event.app,
        "created": event.created,
        "client_ip": event.client_ip,
        "user": event.user,
        "context": event.context,
        "brand": event.brand,
    }


def parse_body_template(text: str) -> Any:
    """The template as JSON, after checking every placeholder; raises :class:`TemplateError`."""
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(f"The body template is longer than {MAX_TEMPLATE_LENGTH} characters.")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"The body template is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})."
        ) from None
    if not isinstance(parsed, dict | list):
        raise TemplateError("The body template must be a JSON object or array.")
    for string in _strings(parsed):
        for match in _PLACEHOLDER.finditer(string):
            _check_placeholder(match.group(1).strip())
    return parsed


def _check_placeholder(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise TemplateError(
            f"{{{{ {name} }}}} is not a placeholder: use a name such as {{{{ body }}}} or "
            "{{ event.context.geo.country }}."
        )
    root = name.split(".", 1)[0]
    if root not in TEMPLATE_NAMES:
        raise TemplateError(
            f"Unknown placeholder {{{{ {name} }}}}: use one of {', '.join(TEMPLATE_NAMES)}."
        )


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [string for item in node for string in _strings(item)]
    if isinstance(node, dict):
        return [string for key, item in node.items() for string in (key, *_strings(item))]
    return []


def render_body_template(text: str, context: Mapping[str, Any]) -> Any:
    """Replace the placeholders of a template with values from ``context``."""
    return _render(parse_body_template(text), context)


def _render(node: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(node, str):
        return _render_string(node, context)
    if isinstance(node, list):
        return [_render(item, context) for item in node]
    if isinstance(node, dict):
        return {
            _as_text(_render_string(key, context)): _render(value, context)
            for key, value in node.items()
        }
    return node


def _render_string(text: str, context: Mapping[str, Any]) -> Any:
    whole = _PLACEHOLDER.fullmatch(text)
    if whole:
        return _lookup(context, whole.group(1).strip())
    return _PLACEHOLDER.sub(lambda m: _as_text(_lookup(context, m.group(1).strip())), text)


def _lookup(context: Mapping[str, Any], name: str) -> Any:
    value: Any = context
    for part in name.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


# --- HTTP ---------------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects come back as errors; :func:`post_json` decides which to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects())


def post_json(url: str, payload: Any) -> list[str]:
    """POST ``payload`` (sanitised) as JSON; return ``[status code, response text]``."""
    body = sanitize(payload)
    data = json.dumps(body).encode()
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        # The origin only: a webhook URL's path is often its secret.
        logger.log(TRACE, "webhook POST %s", _origin(target), extra={"body": body})
        request = urllib.request.Request(  # noqa: S310 - the scheme is validated (http/https)
            target,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        try:
            with _opener().open(request, timeout=settings.NOTIFICATION_WEBHOOK_TIMEOUT) as reply:
                answer = [str(reply.status), _text(reply.read(MAX_RESPONSE_BYTES))]
                logger.log(TRACE, "webhook answered %s", answer[0], extra={"reply": answer[1]})
                return answer
        except urllib.error.HTTPError as exc:
            target = _follow_or_raise(target, exc)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise TransportError(f"Could not reach {_origin(target)}: {reason}") from None
    raise TransportError(f"Too many redirects from {_origin(url)}.", retryable=False)


def _follow_or_raise(current: str, exc: urllib.error.HTTPError) -> str:
    """The URL to POST to next for a same-host 307/308; anything else is a TransportError."""
    code = exc.code
    text = _text(exc.read(MAX_RESPONSE_BYTES)) if exc.fp is not None else ""
    if 300 <= code < 400:
        location = urllib.parse.urljoin(current, exc.headers.get("Location", ""))
        if code in (307, 308) and _same_host(current, location):
            return location
        raise TransportError(
            f"HTTP {code} from {_origin(current)}: a redirect to {_origin(location)} "
            "is not followed (only 307/308 to the same host are).",
            retryable=False,
        )
    retryable = code >= 500 or code in (408, 425, 429)
    detail = f": {text[:500]}" if text else ""
    raise TransportError(f"HTTP {code} from {_origin(current)}{detail}", retryable=retryable)


def _same_host(current: str, target: str) -> bool:
    a, b = urllib.parse.urlsplit(current), urllib.parse.urlsplit(target)
    if b.scheme not in ("http", "https") or a.hostname != b.hostname:
        return False
    if a.scheme == b.scheme:
        return a.port == b.port
    return a.scheme == "http" and b.scheme == "https" and b.port in (None, 443)


def _origin(url: str) -> str:
    """Scheme and host only: a webhook URL's path is often its secret."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _text(raw: bytes) -> str:
    return mask_string(raw.decode("utf-8", errors="replace"))[:1000]


# --- Email --------------------------------------------------------------------------------------


def send_email(transport: NotificationTransport, notification: Notification) -> list[str]:
    user = notification.user
    if not user.email:
        raise DeliverySkipped(f"{user.get_username()} has no email address; no email was sent.")
    message = build_email(transport, notification)
    logger.log(TRACE, "email to %s: %s", user.email, message.subject)
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise TransportError(
            f"The mail server refused {user.email}: {exc}", retryable=False
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransportError(f"Email to {user.email} failed: {exc}") from None
    return [f"Email sent to {user.email}."]


def build_email(transport: NotificationTransport, notification: Notification) -> EmailMessage:
    """Subject: the transport's prefix and the title; a plain-text body, masked."""
    user = notification.user
    subject = " ".join(
        f"{transport.email_subject_prefix}{notification_title(notification)}".split()
    )
    lines = [notification.body, ""]
    event_user = _event_user(notification.event)
    details: dict[str, Any] = {"user_email": user.email, "user_username": user.get_username()}
    if event_user:
        details["event_user_email"] = event_user.get("email")
        details["event_user_username"] = event_user.get("username")
    details.update(_string_context(notification.event))
    lines += [f"{key}: {value}" for key, value in details.items()]
    if notification.hyperlink:
        lines += ["", f"{notification.hyperlink_label or 'Link'}: {notification.hyperlink}"]
    if getattr(user, "is_superuser", False):
        lines += ["", f'Sent by the notification transport "{transport.name}".']
    body = "\n".join(mask_string(str(line)) for line in lines)
    return EmailMessage(
        subject=mask_string(subject)[:250],
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        connection=get_connection(),
    )
