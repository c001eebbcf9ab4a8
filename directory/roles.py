"""The default groups an installation starts with."""

from __future__ import annotations

from django.contrib.auth.models import Permission

from directory.models import AUDITOR_GROUP_NAME, SUPERUSER_GROUP_NAME, Group

# What an auditor may do: read the log and the directory, and export what it can read.
AUDITOR_PERMISSIONS = (
    "auditlog.view_event",
    "directory.view_user",
    "directory.view_group",
    "directory.view_brand",
    "exports.add_dataexport",
    "exports.view_dataexport",
)


def permissions(*names: str) -> list[Permission]:
    """``app_label.codename`` names to Permission rows (missing ones are an error)."""
    found = []
    for name in names:
        app_label, codename = name.split(".", 1)
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def ensure_default_groups() -> tuple[Group, Group]:
    """Create (or complete) the Administrators and Auditors groups; safe to run repeatedly."""
    admins, _ = Group.objects.get_or_create(
        name=SUPERUSER_GROUP_NAME, defaults={"is_superuser": True}
    )
    auditors, _ = Group.objects.get_or_create(name=AUDITOR_GROUP_NAME)
    available = [
        name
        for name in AUDITOR_PERMISSIONS
        if Permission.objects.filter(
            content_type__app_label=name.split(".")[0], codename=name.split(".")[1]
        ).exists()
    ]
    auditors.permissions.add(*permissions(*available))
    return admins, auditors
