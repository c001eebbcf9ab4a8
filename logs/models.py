"""No table: only the permission to read the process logs, which an administrator may grant
without making someone a superuser."""

from __future__ import annotations

from django.db import models


class ProcessLog(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_process_logs", "Can view the process logs (System > Logs)")]

    def __str__(self) -> str:
        return "process logs"
