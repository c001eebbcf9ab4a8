"""The web admin's notification pages: rules (which events notify whom) and transports (how),
with the recent deliveries and their failures, and the drawer of the bell."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from auditlog.sanitize import MASK
from auditlog.suggestions import event_introspection
from auditlog.web import forbidden, page_permission, paginate, refusal
from notifications.api.serializers import mask_webhook_url
from notifications.models import (
    WEBHOOK_MODES,
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
    validate_event_query,
)
from notifications.transports import TransportMode
from searches.models import SavedSearch
from searches.services import SavedSearchError, event_query_of, problem_of_saved


class SavedSearchChoice(forms.ModelChoiceField):
    """A saved search, marked when its query no longer works (so it is not picked blindly)."""

    def label_from_instance(self, obj: SavedSearch) -> str:  # type: ignore[override]
        owner = "shared" if obj.shared else "yours"
        broken = " (no longer works)" if problem_of_saved(obj) else ""
        return f"{obj.name} ({owner}){broken}"


def match_problem(match: str) -> str | None:
    """Why a stored rule's match no longer parses (a field renamed since it was written)."""
    try:
        validate_event_query(match)
    except ValidationError as exc:
        return " ".join(exc.messages)
    return None


class RuleForm(forms.ModelForm):
    class Meta:
        model = NotificationRule
        fields = [
            "name",
            "enabled",
            "severity",
            "match",
            "destination_group",
            "destination_event_user",
            "transports",
        ]
        widgets = {
            "name": forms.TextInput(),
            "match": forms.Textarea(attrs={"rows": 2, "data-djangoql": "", "spellcheck": "false"}),
            "transports": forms.CheckboxSelectMultiple(),
        }

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The API accepts a rule without a match (authentik's clients send none); a person
        # writing a rule here is asked for one (or a saved search), since a rule without it
        # never fires.
        self.fields["match"].required = False
        self.fields["saved_search"] = SavedSearchChoice(
            queryset=SavedSearch.objects.visible_to(user),
            required=False,
            label="Or a saved search",
            help_text="Its query and filters become the match.",
        )
        self.order_fields(["name", "enabled", "severity", "match", "saved_search"])
        self.broken_searches = [
            problem
            for saved in SavedSearch.objects.visible_to(user)
            if (problem := problem_of_saved(saved))
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        saved = cleaned.get("saved_search")
        if saved is not None:
            try:
                cleaned["match"] = event_query_of(saved)
            except SavedSearchError as exc:
                self.add_error("saved_search", str(exc))
        elif not (cleaned.get("match") or "").strip() and "match" not in self.errors:
            self.add_error("match", 'Enter a query, e.g. action = "login_failed".')
        return cleaned

    def _post_clean(self) -> None:
        if "match" in self.cleaned_data:  # the saved search's query replaces the typed one
            self.instance.match = self.cleaned_data["match"]
        super()._post_clean()  # type: ignore[misc]


# What the pages call the product when no brand is configured (as base.html does).
DEFAULT_BRAND_NAME = "Audit log"
WEBHOOK_MODE_VALUES = tuple(str(mode) for mode in WEBHOOK_MODES)
EMAIL_MODE_VALUES = (str(TransportMode.EMAIL),)
# The fields that only one kind of transport uses.
MODE_FIELDS = {
    "webhook_url": WEBHOOK_MODE_VALUES,
    "webhook_body_template": WEBHOOK_MODE_VALUES,
    "email_subject_prefix": EMAIL_MODE_VALUES,
}


class TransportForm(forms.ModelForm):
    class Meta:
        model = NotificationTransport
        fields = [
            "name",
            "mode",
            "send_once",
            "webhook_url",
            "webhook_body_template",
            "email_subject_prefix",
        ]
        widgets = {
            "name": forms.TextInput(),
            "webhook_url": forms.TextInput(attrs={"placeholder": "https://hooks.example.com/..."}),
            "webhook_body_template": forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
            "email_subject_prefix": forms.TextInput(),
        }
        help_texts = {
            "webhook_url": "A secret: shown masked; leave the mask to keep the stored URL."
        }

    def __init__(self, *args: Any, brand_name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stored_url = self.instance.webhook_url if self.instance.pk else ""
        if self._stored_url and not self.is_bound:
            self.initial["webhook_url"] = mask_webhook_url(self._stored_url)
        # "Acme Notification: " ends with the space that separates it from the title.
        self.fields["email_subject_prefix"].strip = False  # type: ignore[attr-defined]
        if self.instance._state.adding and brand_name:
            # authentik's "authentik Notification: " names authentik; ours names the brand.
            self.initial["email_subject_prefix"] = f"{brand_name} Notification: "

    def mode_groups(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """(legend, modes, fields) of each kind of transport, for the page to show only the
        chosen mode's fields."""
        return [
            (
                legend,
                " ".join(modes),
                [self[name] for name, field_modes in MODE_FIELDS.items() if field_modes == modes],
            )
            for legend, modes in (
                ("Webhook (the webhook modes only)", WEBHOOK_MODE_VALUES),
                ("Email (the email mode only)", EMAIL_MODE_VALUES),
            )
        ]

    def common_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in MODE_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        mode = cleaned.get("mode")
        # The fields of the other modes are hidden on the page (or sent by a page without
        # script): they neither fail the form nor change what is stored.
        for name, modes in MODE_FIELDS.items():
            if mode in modes:
                continue
            self.errors.pop(name, None)
            if name == "webhook_url":
                cleaned[name] = self._stored_url
            else:
                cleaned[name] = self.initial.get(name, getattr(self.instance, name))
        return cleaned

    def clean_webhook_url(self) -> str:
        value = self.cleaned_data.get("webhook_url", "")
        if MASK in value:
            if not self._stored_url:
                raise ValidationError(
                    "Enter the webhook URL; the masked value stands for a stored one."
                )
            return self._stored_url
        return value


@page_permission("notifications.view_notificationrule")
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = NotificationRule.objects.select_related("destination_group").prefetch_related(
        "transports"
    )
    rows = [(rule, match_problem(rule.match)) for rule in rules]
    return render(request, "notifications/notificationrule_list.html", {"rows": rows})


@page_permission()
def rule_form(request: HttpRequest, pk: str | None = None) -> HttpResponse:
    rule = get_object_or_404(NotificationRule, pk=pk) if pk else None
    if answer := refusal(
        request,
        "notifications.change_notificationrule" if rule else "notifications.add_notificationrule",
    ):
        return answer
    form = RuleForm(request.POST or None, instance=rule, user=request.user)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save()
        messages.success(request, f"Rule {saved.name} saved.")
        return redirect(reverse("notifications:rule-list"))
    return render(
        request,
        "notifications/notificationrule_form.html",
        {
            "form": form,
            "rule": rule,
            "introspection": event_introspection(),
            "match_problem": match_problem(rule.match) if rule and not form.is_bound else None,
        },
        status=400 if form.errors else 200,
    )


def _delete(
    request: HttpRequest,
    model: type[NotificationRule | NotificationTransport],
    pk: str,
    label: str,
    url: str,
) -> HttpResponse:
    """Delete one rule or transport on POST, with the model's delete permission."""
    permission = f"notifications.delete_{model._meta.model_name}"
    if answer := refusal(request, permission):
        return answer
    obj = cast("NotificationRule | NotificationTransport", get_object_or_404(model, pk=pk))
    if request.method != "POST":
        return forbidden(request, (permission,))
    obj.delete()
    messages.success(request, f"{label} {obj.name} deleted.")
    return redirect(reverse(url))


@page_permission()
def rule_delete(request: HttpRequest, pk: str) -> HttpResponse:
    return _delete(request, NotificationRule, pk, "Rule", "notifications:rule-list")


@page_permission("notifications.view_notificationtransport")
def transport_list(request: HttpRequest) -> HttpResponse:
    transports = NotificationTransport.objects.all()
    deliveries = None
    if request.user.has_perm("notifications.view_notificationdelivery"):
        queryset = NotificationDelivery.objects.select_related("user").order_by("-created", "-uuid")
        deliveries = paginate(request, queryset, page_size=25)
    return render(
        request,
        "notifications/notificationtransport_list.html",
        {
            "transports": [
                (t, mask_webhook_url(t.webhook_url) if t.webhook_url else "") for t in transports
            ],
            "deliveries": deliveries,
        },
    )


@page_permission()
def transport_form(request: HttpRequest, pk: str | None = None) -> HttpResponse:
    transport_obj = get_object_or_404(NotificationTransport, pk=pk) if pk else None
    needed = (
        "notifications.change_notificationtransport"
        if transport_obj
        else "notifications.add_notificationtransport"
    )
    if answer := refusal(request, needed):
        return answer
    brand = getattr(request, "brand", None)
    form = TransportForm(
        request.POST or None,
        instance=transport_obj,
        brand_name=brand.name if brand else DEFAULT_BRAND_NAME,
    )
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                saved = form.save()
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Transport {saved.name} saved.")
            return redirect(reverse("notifications:transport-list"))
    return render(
        request,
        "notifications/notificationtransport_form.html",
        {"form": form, "transport": transport_obj},
        status=400 if form.errors else 200,
    )


@page_permission()
def transport_delete(request: HttpRequest, pk: str) -> HttpResponse:
    return _delete(request, NotificationTransport, pk, "Transport", "notifications:transport-list")


@page_permission()
def notification_drawer(request: HttpRequest) -> HttpResponse:
    """The drawer's content: the user's unread notifications, newest first."""
    unread = (
        Notification.objects.for_user(request.user)
        .unseen()
        .select_related("event")
        .order_by("-created")
    )
    return render(
        request,
        "notifications/_notification_drawer.html",
        {"notifications": unread[:50], "unread_count": unread.count()},
    )
