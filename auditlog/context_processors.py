"""What every page's frame needs from the event core (the notification bell's count comes from
``notifications.context_processors``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from auditlog.models import EventAction
from auditlog.presentation import action_label, all_action_colors
from auditlog.web import PAGE_SIZES


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "page_sizes": PAGE_SIZES,
        # The same colour and label for an action on every page and chart.
        "action_colors": all_action_colors(),
        "action_labels": {action: action_label(action) for action in EventAction.values},
    }
