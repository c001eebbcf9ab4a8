"""Django model permissions for every method, reading included."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request


class ModelPermissions(DjangoModelPermissions):
    """``view_<model>`` to read, ``add``/``change``/``delete`` to write.

    A view's extra actions declare what they need in ``action_permissions``
    (``{"add_user": ["directory.change_group"]}``).
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is not None:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(required))
        return super().has_permission(request, view)


class IsAuthenticated(ModelPermissions):
    """Any signed-in user; object access is limited by the view's queryset (owners)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)
