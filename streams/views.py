"""System > Streams: SIEM destinations with their health (lag, last success, last error in the
receiver's words), the create / edit form (a message per field) and pause / resume / replay.
Administrators only (the streams.* permissions)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from auditlog.web import page_permission, refusal
from searches.models import SavedSearch
from searches.services import SavedSearchError, event_query_of, problem_of_saved
from streams import services
from streams.api.views import parse_replay
from streams.formats import FORMATS
from streams.models import CONFIGURATION_FIELDS, SECRET_FIELDS, Destination


class SavedSearchChoice(forms.ModelChoiceField):
    """A saved search, marked when its query no longer works (so it is not picked blindly)."""

    def label_from_instance(self, obj: SavedSearch) -> str:  # type: ignore[override]
        owner = "shared" if obj.shared else "yours"
        broken = " (no longer works)" if problem_of_saved(obj) else ""
        return f"{obj.name} ({owner}){broken}"


class DestinationForm(forms.ModelForm):
    format = forms.ChoiceField(choices=())
    auth_header_value = forms.CharField(
        label="Authentication header value",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="e.g. Bearer <token> or Splunk <HEC token>. Stored encrypted, never shown.",
    )
    signing_key = forms.CharField(
        label="Signing key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Signs each JSON record with HMAC-SHA256 (field hmac), for the verification "
        "script. Stored encrypted, never shown.",
    )

    class Meta:
        model = Destination
        # The configuration the model saves, but the secrets: they are declared above.
        fields = [name for name in CONFIGURATION_FIELDS if name not in SECRET_FIELDS]
        widgets = {
            "name": forms.TextInput(),
            "filter": forms.Textarea(attrs={"rows": 2}),
            "url": forms.TextInput(),
        }
        labels = {"url": "URL", "verify_tls": "Verify the receiver's TLS certificate"}

    # The secrets are form fields only: the model keeps the encrypted values.
    field_order = [*Meta.fields[:9], "auth_header_value", *Meta.fields[9:], "signing_key"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["saved_search"] = SavedSearchChoice(
            queryset=SavedSearch.objects.visible_to(user),
            required=False,
            label="Or a saved search",
            help_text="Its query and filters become the filter.",
        )
        self.order_fields([*self.field_order[:3], "saved_search", *self.field_order[3:]])
        choices = [(name, fmt.label) for name, fmt in FORMATS.items()]
        current = self.instance.format if self.instance.pk else None
        if current and current not in FORMATS:
            choices.append((current, current))
        self.fields["format"].choices = choices  # type: ignore[attr-defined]
        if not self.instance._state.adding:
            for name in ("auth_header_value", "signing_key"):
                self.fields[name].help_text += " Leave empty to keep the stored one."
        self.initial.pop("auth_header_value", None)
        self.initial.pop("signing_key", None)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (saved := cleaned.get("saved_search")) is not None:
            try:
                cleaned["filter"] = event_query_of(saved)
            except SavedSearchError as exc:
                self.add_error("saved_search", str(exc))
        return cleaned


@page_permission("streams.view_destination")
def destination_list(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    rows = [(d, services.health(d)) for d in Destination.objects.order_by("name")]
    return render(request, "streams/destination_list.html", {"rows": rows}, status=status)


@page_permission()
def destination_form(request: HttpRequest, pk: str | None = None) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk) if pk else None
    needed = "streams.change_destination" if destination else "streams.add_destination"
    if refused := refusal(request, needed):
        return refused
    form = DestinationForm(request.POST or None, instance=destination, user=request.user)
    if request.method == "POST" and form.is_valid():
        changed = form.save(commit=False)
        data = form.cleaned_data
        services.set_secrets(
            changed,
            auth_header_value=data["auth_header_value"] or None,
            signing_key=data["signing_key"] or None,
        )
        changed.save_configuration()
        messages.success(request, f"Stream {changed.name} saved.")
        return redirect(reverse("streams:destination-list"))
    return render(
        request,
        "streams/destination_form.html",
        {"form": form, "destination": destination},
        status=400 if form.errors else 200,
    )


@page_permission("streams.change_destination")
@require_POST
def destination_pause(request: HttpRequest, pk: str) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    if request.POST.get("resume") == "1":
        services.resume(destination)
        messages.success(request, f"Stream {destination.name} resumed.")
    else:
        services.pause(destination)
        messages.success(request, f"Stream {destination.name} paused.")
    return redirect(reverse("streams:destination-list"))


@page_permission("streams.change_destination")
@require_POST
def destination_replay(request: HttpRequest, pk: str) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    try:
        from_time, from_position = parse_replay(
            request.POST.get("from_time"), request.POST.get("from_position")
        )
    except ValueError as exc:
        messages.error(request, str(exc))
        return destination_list(request, status=400)
    position = services.replay(destination, from_time=from_time, from_position=from_position)
    messages.success(request, f"Stream {destination.name} replays from position {position + 1}.")
    return redirect(reverse("streams:destination-list"))


@page_permission("streams.delete_destination")
@require_POST
def destination_delete(request: HttpRequest, pk: str) -> HttpResponse:
    destination = get_object_or_404(Destination, pk=pk)
    destination.delete()
    messages.success(request, f"Stream {destination.name} deleted.")
    return redirect(reverse("streams:destination-list"))
