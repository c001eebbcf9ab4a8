"""How a user is shown outside: the fields of its JSON (the list API's and the JSON Lines
export's), the columns of its CSV export, and the pieces both need. The API serializers and
the export writers both take them from here, so the files and the API cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from directory.models import Group, User

# The JSON of a user, in authentik's field order.
USER_FIELDS: tuple[str, ...] = (
    "pk",
    "username",
    "name",
    "is_active",
    "last_login",
    "is_superuser",
    "groups",
    "groups_obj",
    "roles",
    "roles_obj",
    "email",
    "avatar",
    "attributes",
    "uid",
    "path",
    "type",
    "uuid",
    "password_change_date",
    "date_joined",
    "last_updated",
)
# The CSV of users: the JSON's fields without ``groups_obj`` and ``is_superuser`` (as
# authentik's export serializer), ``groups`` as the group names, each with its header label.
USER_CSV_COLUMNS: dict[str, str] = {
    name: name.replace("_", " ").capitalize()
    for name in USER_FIELDS
    if name not in ("groups_obj", "is_superuser")
}
# A group inside a user's ``groups_obj``.
PARTIAL_GROUP_FIELDS: tuple[str, ...] = ("pk", "num_pk", "name", "is_superuser", "attributes")


def include_flag(params: Mapping[str, Any], name: str) -> bool:
    """A boolean query parameter such as ``include_groups`` (default true)."""
    raw = str(params.get(name, "true")).strip().lower()
    return raw not in ("false", "0", "no", "off")


def user_roles(user: User | None) -> list[str]:
    """The user's roles (none yet: there are no roles in this product)."""
    return []


def user_roles_obj(user: User | None, *, include: bool) -> list[dict[str, Any]] | None:
    """``roles_obj``: ``None`` with ``include_roles=false``."""
    return [] if include else None


def partial_group(group: Group) -> dict[str, Any]:
    """A group as a user's ``groups_obj`` lists it."""
    return {
        "pk": str(group.group_uuid),
        "num_pk": group.num_pk,
        "name": group.name,
        "is_superuser": group.is_superuser,
        "attributes": group.attributes if group.attributes is not None else {},
    }


def join_group_names(names: Iterable[str]) -> str:
    """The CSV's ``groups`` cell: the group names, comma separated."""
    return ", ".join(names)
