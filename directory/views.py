"""The web admin's directory pages: users, groups, tokens and brands, each with its history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from auditlog.models import Event, EventAction
from auditlog.reads import Read, record_read
from auditlog.sanitize import model_to_dict
from auditlog.search import SearchError, SearchSchema, apply_search
from auditlog.services import record_event
from auditlog.views import event_rows
from auditlog.web import (
    Listing,
    PagePermissionMixin,
    forbidden,
    ordered,
    page_permission,
    page_size_from,
    paginate,
    query_of,
    refusal,
)
from directory.models import Brand, Group, Token, TokenIntent, User
from directory.search import GroupSearchSchema, UserSearchSchema
from directory.services import create_api_token

# The key of a token just created: shown once, on the next page, then forgotten.
NEW_KEY_SESSION = "directory.new_token_key"


def history(instance: Model, request: HttpRequest) -> dict[str, Any]:
    """The object's own change history (its model_* events), newest first."""
    events = Event.objects.for_model(instance).latest_first()
    page = paginate(request, events, page_size=20)
    about = {"model": instance._meta.label_lower, "pk": str(instance.pk)}
    record_read(kind=Read.SEARCH, via="page", what={"history_of": about})
    return {"history_page": page, "history_rows": event_rows(list(page.object_list))}


def searched(
    request: HttpRequest, queryset: QuerySet[Any], schema: type[SearchSchema]
) -> tuple[QuerySet[Any], SearchError | None]:
    try:
        return apply_search(queryset, request.GET.get("search", ""), schema), None
    except SearchError as exc:
        return queryset.none(), exc


class UserListView(PagePermissionMixin, TemplateView):
    template_name = "directory/user_list.html"
    permission_required = ("directory.view_user",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        queryset, error = searched(
            self.request, User.objects.exclude_anonymous().with_superuser_flag(), UserSearchSchema
        )
        queryset, ordering_error = ordered(
            self.request,
            queryset,
            allowed={"username", "name", "email", "last_login", "type"},
            default=["username"],
        )
        page = paginate(self.request, queryset, page_size=page_size_from(self.request))
        return {
            **super().get_context_data(**kwargs),
            # The export takes the same search and order as the page.
            "export_query": query_of(self.request, ("search", "ordering")),
            "listing": Listing(
                page, self.request.GET.get("ordering", "username"), page.paginator.per_page
            ),
            "search": self.request.GET.get("search", ""),
            "search_error": error,
            "filter_error": ordering_error,
        }


class UserDetailView(PagePermissionMixin, TemplateView):
    template_name = "directory/user_detail.html"
    permission_required = ("directory.view_user",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = get_object_or_404(
            User.objects.exclude_anonymous().with_superuser_flag(), pk=self.kwargs["pk"]
        )
        tokens = user.tokens.all() if self.request.user.has_perm("directory.view_token") else None
        return {
            **super().get_context_data(**kwargs),
            "subject": user,
            "groups": user.groups.order_by("name"),
            "tokens": tokens,
            **history(user, self.request),
        }


class GroupListView(PagePermissionMixin, TemplateView):
    template_name = "directory/group_list.html"
    permission_required = ("directory.view_group",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        queryset, error = searched(
            self.request, Group.objects.select_related("parent"), GroupSearchSchema
        )
        queryset, ordering_error = ordered(
            self.request, queryset, allowed={"name", "is_superuser", "num_pk"}, default=["name"]
        )
        page = paginate(self.request, queryset, page_size=page_size_from(self.request))
        return {
            **super().get_context_data(**kwargs),
            "listing": Listing(
                page, self.request.GET.get("ordering", "name"), page.paginator.per_page
            ),
            "search": self.request.GET.get("search", ""),
            "search_error": error,
            "filter_error": ordering_error,
        }


class GroupDetailView(PagePermissionMixin, TemplateView):
    template_name = "directory/group_detail.html"
    permission_required = ("directory.view_group",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        group = get_object_or_404(Group.objects.select_related("parent"), pk=self.kwargs["pk"])
        return {
            **super().get_context_data(**kwargs),
            "group": group,
            "members": group.users.exclude_anonymous().order_by("username"),
            **history(group, self.request),
        }


class TokenForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=User.objects.exclude_anonymous().filter(is_active=True),
        required=False,
        empty_label="Yourself",
        help_text="Whose token it is.",
    )
    identifier = forms.SlugField(
        max_length=255,
        required=False,
        help_text="A unique name, e.g. elastic-agent. Leave empty to generate one.",
    )
    intent = forms.ChoiceField(
        choices=[
            (TokenIntent.API, TokenIntent.API.label),
            (TokenIntent.APP_PASSWORD, TokenIntent.APP_PASSWORD.label),
        ],
        initial=TokenIntent.API,
    )
    expires_in_days = forms.IntegerField(
        min_value=0, max_value=3650, initial=365, help_text="0: never expires."
    )
    description = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, requester: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requester = requester
        if not requester.is_superuser:
            del self.fields["user"]  # only administrators create tokens for other users

    def clean_identifier(self) -> str:
        identifier = self.cleaned_data["identifier"]
        if identifier and Token.objects.filter(identifier=identifier).exists():
            raise forms.ValidationError("A token with this identifier exists already.")
        return identifier


class TokenListView(PagePermissionMixin, View):
    permission_required = ("directory.view_token",)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(request, TokenForm(requester=request.user))  # type: ignore[arg-type]

    def post(self, request: HttpRequest) -> HttpResponse:
        if answer := refusal(request, "directory.add_token"):
            return answer
        form = TokenForm(request.POST, requester=request.user)  # type: ignore[arg-type]
        if not form.is_valid():
            return self.render(request, form, status=400)
        data = form.cleaned_data
        owner: User = data.get("user") or request.user  # type: ignore[assignment]
        days = data["expires_in_days"]
        token = create_api_token(
            user=owner,
            identifier=data["identifier"] or None,
            expires_in=timedelta(days=days) if days else None,
            description=data["description"],
        )
        if data["intent"] != TokenIntent.API:
            token.intent = data["intent"]
            token.save(update_fields=["intent"])
        request.session[NEW_KEY_SESSION] = {"identifier": token.identifier, "key": token.key}
        return redirect(reverse("directory:token-list"))

    def render(self, request: HttpRequest, form: TokenForm, status: int = 200) -> HttpResponse:
        tokens = Token.objects.select_related("user").order_by("identifier")
        page = paginate(request, tokens, page_size=page_size_from(request))
        new_key = request.session.pop(NEW_KEY_SESSION, None)
        if new_key is not None:  # a key shown is a secret viewed, as the API's view_key records
            shown = Token.objects.filter(identifier=new_key["identifier"]).first()
            record_event(
                action=EventAction.SECRET_VIEW,
                app="directory.views",
                context={"secret": model_to_dict(shown) if shown else new_key["identifier"]},
            )
        return render(
            request,
            "directory/token_list.html",
            {"page": page, "form": form, "new_key": new_key},
            status=status,
        )


@page_permission("directory.delete_token")
def delete_token(request: HttpRequest, identifier: str) -> HttpResponse:
    token = get_object_or_404(Token, identifier=identifier)
    # Beyond the permission: only the owner (or a superuser) deletes a token, and only by POST.
    owner = token.user_id == request.user.pk or request.user.is_superuser
    if request.method != "POST" or not owner:
        return forbidden(request, ("directory.delete_token",))
    token.delete()
    messages.success(request, f"Token {identifier} deleted.")
    return redirect(reverse("directory:token-list"))


class BrandForm(forms.ModelForm):
    class Meta:
        model = Brand
        fields = ["name", "domain", "default"]


class BrandListView(PagePermissionMixin, TemplateView):
    template_name = "directory/brand_list.html"
    permission_required = ("directory.view_brand",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "brands": Brand.objects.order_by("-default", "domain"),
        }


@page_permission()
def brand_form(request: HttpRequest, pk: str | None = None) -> HttpResponse:
    brand = get_object_or_404(Brand, pk=pk) if pk else None
    if answer := refusal(request, "directory.change_brand" if brand else "directory.add_brand"):
        return answer
    form = BrandForm(request.POST or None, instance=brand)
    if request.method == "POST":
        with transaction.atomic():
            if request.POST.get("default"):
                # One default brand: the previous one steps down first (saved, so it is
                # audited); if the form turns out invalid, the step-down is rolled back.
                others = Brand.objects.filter(default=True)
                if brand is not None:
                    others = others.exclude(pk=brand.pk)
                for other in others:
                    other.default = False
                    other.save(update_fields=["default"])
            if form.is_valid():
                form.save()
                messages.success(request, f"Brand {form.instance.name} saved.")
                return redirect(reverse("directory:brand-list"))
            transaction.set_rollback(True)
    context = {"form": form, "brand": brand}
    if brand is not None:
        context.update(history(brand, request))
    return render(request, "directory/brand_form.html", context, status=400 if form.errors else 200)
