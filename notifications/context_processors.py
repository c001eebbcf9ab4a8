"""What every page's frame needs from notifications: the unread count for the bell."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from notifications.models import Notification


def unread(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": Notification.objects.for_user(user).unseen().count()}
