"""System > Sources: the authentik instances whose events are imported, with their sync status
(last sync, events imported, lag, last error in the other side's words) and add / edit /
delete / "sync now". Administrators only (the sources.* permissions)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError as BrokerError

from auditlog.web import page_permission, refusal
from sources import secrets, services, tasks
from sources.api.views import WEBHOOK_HEADER
from sources.models import AuthentikSource


class SourceForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(),
        help_text="The authentik instance, e.g. https://auth.example.com",
    )
    token = forms.CharField(
        label="API token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="An authentik API token allowed to read events. Stored encrypted and never "
        "shown again.",
    )

    class Meta:
        model = AuthentikSource
        fields = ["name", "url", "token", "enabled", "page_size", "verify_tls"]
        widgets = {"name": forms.TextInput()}
        labels = {"verify_tls": "Verify the TLS certificate"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["token"].required = False
            self.fields["token"].help_text = "Leave empty to keep the stored token."
        self.initial.pop("token", None)

    def clean_token(self) -> str:
        return (self.cleaned_data.get("token") or "").strip()


def _webhook_url(request: HttpRequest, source: AuthentikSource) -> str:
    return request.build_absolute_uri(reverse("authentik-webhook", args=[source.name]))


@page_permission("sources.view_authentiksource")
def source_list(request: HttpRequest) -> HttpResponse:
    sources = list(AuthentikSource.objects.order_by("name"))
    rows = [(source, _webhook_url(request, source)) for source in sources]
    return render(
        request,
        "sources/authentiksource_list.html",
        {"rows": rows, "webhook_header": WEBHOOK_HEADER},
    )


@page_permission()
def source_form(request: HttpRequest, pk: str | None = None) -> HttpResponse:
    source = get_object_or_404(AuthentikSource, pk=pk) if pk else None
    needed = "sources.change_authentiksource" if source else "sources.add_authentiksource"
    if refused := refusal(request, needed):
        return refused
    form = SourceForm(request.POST or None, instance=source)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if source is None:
            created, webhook_token = services.create_source(
                name=data["name"],
                url=data["url"],
                token=data["token"],
                enabled=data["enabled"],
                page_size=data["page_size"],
                verify_tls=data["verify_tls"],
            )
            return _show_webhook_token(request, created, webhook_token, status=201)
        changed = form.save(commit=False)
        if data["token"]:
            changed.token = secrets.encrypt(data["token"])
        else:
            changed.token = AuthentikSource.objects.get(pk=source.pk).token
        changed.save()
        messages.success(request, f"Source {changed.name} saved.")
        return redirect(reverse("sources:source-list"))
    return render(
        request,
        "sources/authentiksource_form.html",
        {"form": form, "source": source},
        status=400 if form.errors else 200,
    )


def _show_webhook_token(
    request: HttpRequest, source: AuthentikSource, webhook_token: str, *, status: int = 200
) -> HttpResponse:
    response = render(
        request,
        "sources/authentiksource_token.html",
        {
            "source": source,
            "webhook_token": webhook_token,
            "webhook_url": _webhook_url(request, source),
            "webhook_header": WEBHOOK_HEADER,
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


@page_permission("sources.delete_authentiksource")
@require_POST
def source_delete(request: HttpRequest, pk: str) -> HttpResponse:
    source = get_object_or_404(AuthentikSource, pk=pk)
    source.delete()
    messages.success(request, f"Source {source.name} deleted; its imported events stay.")
    return redirect(reverse("sources:source-list"))


@page_permission("sources.change_authentiksource")
@require_POST
def source_sync(request: HttpRequest, pk: str) -> HttpResponse:
    source = get_object_or_404(AuthentikSource, pk=pk)
    try:
        tasks.sync_source.delay(str(source.pk), request.POST.get("full") == "1")
    except BrokerError:
        messages.error(request, "The background task queue is unavailable; try again later.")
    else:
        messages.success(request, f"Sync of {source.name} queued.")
    return redirect(reverse("sources:source-list"))


@page_permission("sources.change_authentiksource")
@require_POST
def source_webhook_token(request: HttpRequest, pk: str) -> HttpResponse:
    source = get_object_or_404(AuthentikSource, pk=pk)
    return _show_webhook_token(request, source, services.rotate_webhook_token(source))
