"""Template helpers of the web admin."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from auditlog.presentation import action_color, action_label, country_name, pretty

register = template.Library()


@register.simple_tag
def nav_link(url_name: str, label: str, section: str | None) -> str:
    """A navigation link, left out while its page does not exist yet."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return ""
    active = (
        "active" if section and url_name.split(":")[-1].startswith(section.split("-")[0]) else ""
    )
    return format_html('<a href="{}" class="{}">{}</a>', url, active, label)


@register.simple_tag(takes_context=True)
def query(context: dict[str, Any], **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params: QueryDict = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def sort_link(context: dict[str, Any], key: str, label: str) -> str:
    """A column header that sorts by ``key`` and flips direction when clicked again."""
    current = context["request"].GET.get("ordering", context.get("default_ordering", ""))
    if current == key:
        target, marker = f"-{key}", " ▲"
    elif current == f"-{key}":
        target, marker = key, " ▼"
    else:
        target, marker = f"-{key}" if key == "created" else key, ""
    href = query(context, ordering=target, page=None)
    return format_html('<a class="sort" href="{}">{}{}</a>', href, label, marker)


@register.filter
def label_of(action: str) -> str:
    return action_label(action)


@register.filter
def color_of(action: str) -> str:
    return action_color(action)


@register.filter
def country(code: str) -> str:
    return country_name(code)


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def as_json(value: Any) -> str:
    return pretty(value)
