"""Which events notify whom: rule queries, destinations, send_once, disabled rules, the cheap
"no rules" path and the loop guard."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from auditlog.models import Event
from auditlog.services import record_event
from directory.models import User
from notifications.dispatch import (
    PIPELINE_APP,
    dispatch_event,
    enqueue_dispatch,
    notification_pipeline,
)
from notifications.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
)
from notifications.rules import enabled_rules, matching_rules
from notifications.tasks import dispatch_notifications, dispatch_notifications_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The event ids handed to the dispatch tasks, one by one or a sealed batch at once (the
    tasks themselves do not run)."""
    calls: list[str] = []
    monkeypatch.setattr(dispatch_notifications, "delay", calls.append)
    monkeypatch.setattr(dispatch_notifications_batch, "delay", calls.extend)
    return calls


def _stored_event(**fields: Any) -> Event:
    event = Event(
        action=fields.pop("action", "login_failed"),
        app=fields.pop("app", "tests"),
        user={"pk": 42, "username": "ana", "email": "ana@example.com"},
        context={"username": "ana", "geo": {"country": "DE", "city": "Berlin"}, "attempts": 3},
        client_ip="203.0.113.9",
        **fields,
    )
    event.save()
    return event


def _recipients(rule: NotificationRule) -> list[str]:
    return sorted(
        NotificationDelivery.objects.filter(rule=rule).values_list("user__username", flat=True)
    )


# --- Matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ('action = "login_failed"', True),
        ('action = "login"', False),
        ('action in ("login", "login_failed") and context.geo.country = "DE"', True),
        ('context.geo.country = "Germany"', True),
        ('action = "login_failed" and context.geo.country != "DE"', False),
        ('user.username = "ana" and client_ip = "203.0.113.9"', True),
        ('context.attempts >= 3 and context.geo.city ~ "berl"', True),
        ("context.attempts > 3", False),
        ('app startswith "tes" and created > "2000-01-01"', True),
        ('context.geo.country = "FR" or user.username = "ana"', True),
    ],
)
def test_a_rule_matches_events_by_its_query(make_rule, query: str, matches: bool) -> None:
    rule = make_rule(query)
    assert matching_rules(_stored_event(), enabled_rules()) == ([rule] if matches else [])


def test_of_many_rules_only_the_matching_ones_are_chosen(make_rule) -> None:
    login = make_rule('action = "login_failed"', name="a-login")
    make_rule('action = "logout"', name="b-logout")
    german = make_rule('context.geo.country = "DE"', name="c-german")
    assert matching_rules(_stored_event(), enabled_rules()) == [login, german]


def test_a_rule_whose_stored_query_broke_is_skipped_and_the_others_still_fire(make_rule) -> None:
    broken = make_rule('action = "login_failed"', name="broken")
    NotificationRule.objects.filter(pk=broken.pk).update(match="actoin = ")
    working = make_rule('action = "login_failed"', name="working")
    assert matching_rules(_stored_event(), enabled_rules()) == [working]


def test_a_disabled_rule_never_fires(make_rule, security_group, commit, queued) -> None:
    group, _ = security_group
    make_rule(destination_group=group, enabled=False)
    with commit():
        event = record_event(action="login_failed", app="tests")
    assert queued == []  # nothing is even queued while no rule is enabled
    assert dispatch_event(str(event.pk)) == []
    assert not NotificationDelivery.objects.exists()


# --- Destinations -------------------------------------------------------------------------------


def test_the_active_members_of_the_group_are_notified(make_rule, security_group, commit) -> None:
    group, _ = security_group
    rule = make_rule(destination_group=group)
    with commit():
        record_event(action="login_failed", app="tests", context={"username": "ana"})
    assert _recipients(rule) == ["ana", "ben"]
    assert sorted(Notification.objects.values_list("user__username", flat=True)) == ["ana", "ben"]


def test_the_event_user_is_notified_when_the_rule_asks_for_it(
    make_rule, security_group, commit
) -> None:
    group, (ana, _, _) = security_group
    dan = User.objects.create_user("dan")
    rule = make_rule(destination_group=group, destination_event_user=True)
    with commit():
        record_event(action="login_failed", app="tests", user=dan)
        record_event(action="login_failed", app="tests", user=ana)  # a member: notified once
    assert _recipients(rule) == ["ana", "ana", "ben", "ben", "dan"]


def test_an_inactive_or_anonymous_event_user_is_not_notified(make_rule, commit) -> None:
    eve = User.objects.create_user("eve", is_active=False)
    rule = make_rule(destination_event_user=True)
    with commit():
        record_event(action="login_failed", app="tests", user=eve)
        record_event(action="login_failed", app="tests", user=User.objects.anonymous())
    assert _recipients(rule) == []


def test_send_once_keeps_only_the_first_recipient(make_rule, security_group, commit) -> None:
    group, _ = security_group
    once = NotificationTransport.objects.create(name="chat", send_once=True)
    every = NotificationTransport.objects.create(name="drawer")
    rule = make_rule(destination_group=group, transports=(once, every))
    with commit():
        record_event(action="login_failed", app="tests")
    by_transport = {
        name: sorted(
            NotificationDelivery.objects.filter(rule=rule, transport__name=name).values_list(
                "user__username", flat=True
            )
        )
        for name in ("chat", "drawer")
    }
    assert by_transport == {"chat": ["ana"], "drawer": ["ana", "ben"]}


def test_a_rule_without_transports_notifies_in_the_drawer(
    make_rule, security_group, commit
) -> None:
    group, (ana, _, _) = security_group
    rule = make_rule(destination_group=group, severity="alert")
    with commit():
        event = record_event(action="login_failed", app="tests", context={"message": "Ana failed"})
    delivery = NotificationDelivery.objects.get(rule=rule, user=ana)
    assert delivery.transport is None and delivery.mode == "local"
    assert delivery.status == DeliveryStatus.SENT
    notification = Notification.objects.get(user=ana)
    assert (notification.severity, notification.body, notification.event_id) == (
        "alert",
        "Ana failed",
        event.pk,
    )
    assert delivery.notification == notification


def test_dispatching_an_event_twice_queues_nothing_new(make_rule, security_group, commit) -> None:
    group, _ = security_group
    make_rule(destination_group=group)
    with commit():
        event = record_event(action="login_failed", app="tests")
    with commit():
        assert dispatch_event(str(event.pk)) == []
    assert Notification.objects.count() == 2


def test_a_rolled_back_event_notifies_nobody(make_rule, security_group, commit, queued) -> None:
    group, _ = security_group
    make_rule(destination_group=group)
    with commit(), pytest.raises(RuntimeError), transaction.atomic():
        record_event(action="login_failed", app="tests")
        raise RuntimeError("roll back")
    assert queued == []


def test_an_event_deleted_before_the_task_runs_is_ignored(make_rule) -> None:
    make_rule()
    event = _stored_event()
    event_id = str(event.pk)
    event.delete()
    assert dispatch_event(event_id) == []


# --- Cheap when there is nothing to do ----------------------------------------------------------


def test_nothing_is_queued_while_no_rule_is_enabled(make_rule, commit, queued) -> None:
    with commit():
        record_event(action="login_failed", app="tests")
    assert queued == []
    rule = make_rule()  # saving a rule drops the cached "no rules" answer
    with commit():
        event = record_event(action="login_failed", app="tests")
    assert queued == [str(event.pk)]
    rule.enabled = False
    rule.save()
    with commit():
        record_event(action="login_failed", app="tests")
    assert queued == [str(event.pk)]


def test_the_no_rules_answer_is_cached(django_assert_num_queries, queued) -> None:
    enqueue_dispatch("1", "login")
    with django_assert_num_queries(0):
        enqueue_dispatch("2", "login")
    assert queued == []


def test_deleting_the_last_enabled_rule_is_noticed(make_rule, queued) -> None:
    rule = make_rule()
    enqueue_dispatch("1", "login_failed")
    rule.delete()
    enqueue_dispatch("2", "login_failed")
    assert queued == ["1"]


def test_only_events_with_an_action_some_rule_names_are_queued(make_rule, commit, queued) -> None:
    make_rule('action = "login_failed" and context.geo.country != "DE"', name="a")
    make_rule('action in ("Suspicious Request", "custom_alarm") or action = "logout"', name="b")
    make_rule('action = "password_set"', name="disabled", enabled=False)
    with commit():
        events = {
            action: record_event(action=action, app="tests")
            for action in ("login_failed", "suspicious_request", "alarm", "logout", "login")
        }
        record_event(action="password_set", app="tests")
    assert sorted(queued) == sorted(
        str(events[action].pk)
        for action in ("login_failed", "suspicious_request", "alarm", "logout")
    )


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ('action = "login"', {"login"}),
        ('action = "Login Failed" and user.username = "ana"', {"login_failed"}),
        ('(action = "login" or action = "logout") and app = "x"', {"login", "logout"}),
        ('action in ("login", "logout") and action = "logout"', {"logout"}),
        ('action ~ "login"', None),
        ('action = "login" or context.geo.country = "DE"', None),
        ('action != "login"', None),
        ('user.username = "ana"', None),
    ],
)
def test_which_actions_a_query_needs(query: str, actions: set[str] | None) -> None:
    from notifications.rules import actions_of

    assert actions_of(query) == (frozenset(actions) if actions is not None else None)


def test_a_rule_that_does_not_name_its_actions_sees_every_event(make_rule, commit, queued) -> None:
    make_rule('action = "login_failed"', name="a")
    make_rule('context.geo.country = "FR"', name="b")
    with commit():
        event = record_event(action="model_created", app="tests")
    assert queued == [str(event.pk)]


# --- The loop guard -----------------------------------------------------------------------------


def test_events_recorded_by_the_pipeline_are_never_dispatched(make_rule, commit, queued) -> None:
    make_rule('action = "configuration_error"')
    with commit(), notification_pipeline():
        record_event(action="configuration_error", app="tests")
    with commit():
        marked = record_event(action="configuration_error", app=PIPELINE_APP)
    assert queued == []
    # Even when handed to the dispatcher directly, the pipeline's own events match no rule.
    assert dispatch_event(str(marked.pk)) == []


def test_a_final_failure_event_does_not_trigger_its_own_notifications(
    make_rule, security_group, commit, webhook_server, eager_retries, monkeypatch
) -> None:
    group, _ = security_group
    webhook_server.default = (500, {}, "down")
    hook = NotificationTransport.objects.create(
        name="hook", mode="webhook", webhook_url=webhook_server.url()
    )
    # Matches the login failure AND the configuration_error the failure records.
    rule = make_rule(
        'action in ("login_failed", "configuration_error")',
        destination_group=group,
        transports=(hook,),
    )
    queued: list[str] = []
    real_delay = dispatch_notifications_batch.delay
    monkeypatch.setattr(
        dispatch_notifications_batch, "delay", lambda pks: (queued.extend(pks), real_delay(pks))
    )
    with commit():
        login = record_event(action="login_failed", app="tests")
    failures = Event.objects.filter(action="configuration_error", app=PIPELINE_APP)
    assert failures.count() == 2  # one per recipient
    assert queued == [str(login.pk)]
    assert set(
        NotificationDelivery.objects.filter(rule=rule).values_list("event_uuid", flat=True)
    ) == {login.pk}
    assert all(dispatch_event(str(failure.pk)) == [] for failure in failures)
