"""The list API and the exports read through the same listing: the same rows in the same order
for the same parameters, the same refusals of bad parameters, and the same fields."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from djangoql.exceptions import DjangoQLError
from rest_framework import serializers

from auditlog.api.serializers import EventSerializer
from auditlog.listing import ListingError, ListingRefused, describe, events_for_listing
from auditlog.models import Event, EventAction
from auditlog.representation import EVENT_CSV_COLUMNS, EVENT_FIELDS, event_json
from auditlog.sanitize import get_user
from auditlog.search import SearchError
from directory.api.serializers import PartialGroupSerializer, UserSerializer
from directory.listing import users_for_listing
from directory.models import Group, User
from directory.representation import USER_CSV_COLUMNS, USER_FIELDS, partial_group
from exports.api.serializers import EventExportSerializer, UserExportSerializer
from exports.models import DataExport, ExportStatus
from exports.tasks import generate_export
from tests.exports.conftest import EVENTS, USERS, export_url, list_results

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(admin_user: User, nobody: User) -> list[Event]:
    made = []
    for action, user, ip in (
        (EventAction.LOGIN, admin_user, "81.2.69.142"),
        (EventAction.LOGOUT, nobody, None),
        (EventAction.LOGIN_FAILED, None, "10.0.0.1"),
        (EventAction.LOGIN, nobody, "2001:db8::1"),
        (EventAction.MODEL_CREATED, admin_user, None),
    ):
        event = Event(action=action, app="tests", client_ip=ip, context={"username": "mallory"})
        if user is not None:
            event.user = get_user(user)
        event.save()
        made.append(event)
    # Two share a creation time, so the tie-breaker decides their order.
    base = timezone.now().replace(microsecond=0)
    for age, event in enumerate(made):
        Event.objects.filter(pk=event.pk).update(created=base - timedelta(hours=min(age, 3)))
    return made


@pytest.fixture
def people(admin_user: User, nobody: User) -> list[User]:
    sales = Group.objects.create(name="Sales", attributes={"floor": 2})
    alpha = Group.objects.create(name="Alpha")
    ana = User.objects.create_user("ana", "ana@example.com", attributes={"count": 3})
    ben = User.objects.create_user("ben", "ben@example.com", is_active=False)
    sales.users.add(ana, ben)
    alpha.users.add(ana)
    return [ana, ben]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"actions": ["login", "logout"]},
        {"action": "login"},
        {"ordering": "-username,created"},
        {"ordering": "client_ip"},
        {"search": "mallory"},
        {"search": 'action = "login"', "client_ip": "81.2.69.142"},
        {"username": "nobody", "ordering": "action"},
    ],
)
def test_the_event_listing_is_the_list_apis_rows_in_its_order(
    api_as, auditor, events, params
) -> None:
    expected = [result["pk"] for result in list_results(api_as(auditor), EVENTS, params)]
    listed = [str(event.event_uuid) for event in events_for_listing(user=auditor, params=params)]
    assert listed == expected
    assert expected


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"groups_by_name": ["Sales", "Alpha"]},
        {"is_superuser": "true"},
        {"is_active": "false"},
        {"ordering": "-email"},
        {"search": "attributes.count = 3"},
        {"search": "an"},
    ],
)
def test_the_user_listing_is_the_list_apis_rows_in_its_order(
    api_as, admin_user, people, params
) -> None:
    expected = [result["pk"] for result in list_results(api_as(admin_user), USERS, params)]
    assert [user.pk for user in users_for_listing(user=admin_user, params=params)] == expected
    assert expected


BAD_PARAMETERS = [
    (EVENTS, {"client_ip": "not-an-address"}),
    (EVENTS, {"ordering": "password"}),
    (EVENTS, {"actions": "no_such_action"}),
    (USERS, {"attributes": "{not json"}),
    (USERS, {"attributes": "[1]"}),
    (USERS, {"uuid": "not-a-uuid"}),
    (USERS, {"type": "robot"}),
    (USERS, {"ordering": "password"}),
]
SELECTORS = {EVENTS: events_for_listing, USERS: users_for_listing}
MODELS = {EVENTS: ("auditlog", "event"), USERS: ("directory", "user")}


@pytest.mark.parametrize(("list_url", "params"), BAD_PARAMETERS)
def test_bad_parameters_are_refused_alike_by_the_list_the_export_and_the_listing(
    api_as, admin_user, list_url, params, django_capture_on_commit_callbacks
) -> None:
    client = api_as(admin_user)
    listed = client.get(list_url, params)
    assert listed.status_code == 400
    body = listed.json()
    assert list(body) == list(params)  # names the bad parameter

    with django_capture_on_commit_callbacks(execute=True):
        exported = client.post(export_url(list_url, params))
    assert exported.status_code == 400
    assert exported.json() == body
    assert not DataExport.objects.exists()

    with pytest.raises(ListingError) as refused:
        SELECTORS[list_url](user=admin_user, params=params)
    assert refused.value.errors == body

    # Stored earlier (the list's rules changed since): the build fails with the same words.
    export = DataExport.objects.create(
        requested_by=admin_user,
        content_type=ContentType.objects.get_by_natural_key(*MODELS[list_url]),
        query_params=params,
    )
    generate_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.error == f"The export's filters are no longer valid: {describe(body)}"


@pytest.mark.parametrize("list_url", [EVENTS, USERS])
def test_a_malformed_search_is_refused_alike(api_as, admin_user, list_url) -> None:
    params = {"search": 'username = "a" and ('}
    client = api_as(admin_user)
    listed = client.get(list_url, params)
    exported = client.post(export_url(list_url, params))
    assert listed.status_code == exported.status_code == 400
    assert exported.json() == listed.json()
    with pytest.raises((SearchError, DjangoQLError)):
        SELECTORS[list_url](user=admin_user, params=params)


@pytest.mark.parametrize("list_url", [EVENTS, USERS])
def test_the_listing_refuses_a_reader_without_the_view_permission(nobody, list_url) -> None:
    for user in (None, nobody):
        with pytest.raises(ListingRefused):
            SELECTORS[list_url](user=user, params={})


# --- One representation for the API and the files -------------------------------------------


def test_the_event_fields_and_columns_are_the_serializers() -> None:
    assert EventSerializer.Meta.fields == list(EVENT_FIELDS)
    columns = EventExportSerializer().fields
    assert list(columns) == list(EVENT_CSV_COLUMNS)
    assert [str(field.label) for field in columns.values()] == list(EVENT_CSV_COLUMNS.values())


def test_the_user_fields_and_columns_are_the_serializers() -> None:
    assert UserSerializer.Meta.fields == list(USER_FIELDS)
    columns = UserExportSerializer().fields
    assert list(columns) == list(USER_CSV_COLUMNS)
    assert [str(field.label) for field in columns.values()] == list(USER_CSV_COLUMNS.values())


def test_the_event_json_is_what_drf_renders_field_by_field(events) -> None:
    for event in Event.objects.all():
        by_fields = serializers.ModelSerializer.to_representation(EventSerializer(), event)
        assert event_json(event) == by_fields


def test_a_partial_group_is_what_drf_renders_field_by_field(people) -> None:
    for group in Group.objects.all():
        by_fields: Any = serializers.ModelSerializer.to_representation(
            PartialGroupSerializer(), group
        )
        assert partial_group(group) == by_fields


def test_the_filterset_is_skipped_only_when_none_of_its_parameters_is_given(
    events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unfiltered list does not build the filterset (a third of a page's time); any of its
    parameters, an empty multi-select included, still goes through it and its refusals."""
    from auditlog.listing import EVENT_LISTING

    built: list[object] = []
    filterset = EVENT_LISTING.filterset
    assert filterset is not None
    monkeypatch.setattr(filterset, "__init__", _recording(filterset.__init__, built))
    everything = Event.objects.all()
    unfiltered = EVENT_LISTING.apply(everything, {"ordering": "created", "page": "2"})
    assert unfiltered.count() == everything.count() > len(events)
    assert built == []
    logins = EVENT_LISTING.apply(everything, {"actions": ["login"]})
    assert built and set(logins.values_list("action", flat=True)) == {EventAction.LOGIN}
    with pytest.raises(ListingError) as refused:
        EVENT_LISTING.apply(everything, {"actions": ""})
    assert "actions" in refused.value.errors
    with pytest.raises(ListingError):
        EVENT_LISTING.apply(everything, {"actions": ["no_such_action"]})


def _recording(init: Any, built: list[object]) -> Any:
    def record(self: object, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        init(self, *args, **kwargs)

    return record
