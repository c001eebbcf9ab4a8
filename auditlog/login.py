"""The project's own login page, with rate limiting based on the failed-login events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView as DjangoLoginView
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.requests import client_ip
from auditlog.signals import BLOCKED_REASON, login_blocked

# How many more failures one address may cause across all usernames.
ADDRESS_FACTOR = 4


def blocked_reasons(username: str, address: str | None) -> list[str]:
    """Why a login attempt must be refused now (empty: it may go ahead).

    Counting the recorded ``login_failed`` events makes the limit hold across all web processes
    and restarts, with no extra store.
    """
    since = timezone.now() - settings.LOGIN_FAILURE_WINDOW
    failures = Event.objects.filter(action=EventAction.LOGIN_FAILED, created__gte=since)
    limit = settings.LOGIN_FAILURE_LIMIT
    reasons = []
    same_user = failures.filter(context__username=username)
    if address:
        same_user = same_user.filter(client_ip=address)
    if username and same_user.count() >= limit:
        reasons.append("too_many_failed_logins")
    if address and failures.filter(client_ip=address).count() >= limit * ADDRESS_FACTOR:
        reasons.append("too_many_failed_logins_from_address")
    return reasons


class LoginView(DjangoLoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))[:150]
        address = client_ip(request)
        reasons = blocked_reasons(username, address)
        if reasons:
            self._record_block(request, username, address, reasons)
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, self.blocked_message())
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        # The login event records how the user signed in.
        self.request.auth_method = "password"  # type: ignore[attr-defined]
        return super().form_valid(form)

    @staticmethod
    def blocked_message() -> str:
        minutes = max(1, int(settings.LOGIN_FAILURE_WINDOW / timedelta(minutes=1)))
        return f"Too many failed login attempts. Try again in {minutes} minutes."

    @staticmethod
    def _record_block(
        request: HttpRequest, username: str, address: str | None, reasons: list[str]
    ) -> None:
        """One blocked-login event per username and address per window, not one per
        attempt."""
        since = timezone.now() - settings.LOGIN_FAILURE_WINDOW
        already = Event.objects.filter(
            Q(client_ip=address) if address else Q(),
            action=EventAction.LOGIN_FAILED,
            context__reason=BLOCKED_REASON,
            created__gte=since,
            context__username=username,
        ).exists()
        if not already:
            login_blocked.send(
                sender=LoginView, request=request, username=username, reasons=reasons
            )
