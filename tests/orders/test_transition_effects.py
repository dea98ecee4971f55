"""Status changes announce themselves: effects registered per target status run on commit only."""

from __future__ import annotations

import pytest
from django.db import transaction

from orders import transition_effects
from orders.models import EventSource, OrderStatus
from orders.services.transitions import order_transition
from orders.transition_effects import StatusChange, on_enter
from tests.orders.staff_fixtures import make_order

S = OrderStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def seen(monkeypatch):
    """A handler registered for `refunded` (from `failed` only), removed again after the test."""
    changes: list[StatusChange] = []
    monkeypatch.setattr(transition_effects, "_HANDLERS", {**transition_effects._HANDLERS})
    monkeypatch.setitem(transition_effects._HANDLERS, S.REFUNDED, [])
    on_enter(S.REFUNDED, from_statuses={S.FAILED})(changes.append)
    return changes


def test_a_registered_handler_runs_once_the_change_commits(seen, django_capture_on_commit_callbacks):
    order = make_order(status=S.FAILED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert order_transition(order=order, from_status=S.FAILED, to_status=S.REFUNDED, source=EventSource.STAFF,
                                reason="refunded")
        assert seen == []  # nothing runs before the commit
    for callback in callbacks:
        callback()
    assert seen == [StatusChange(order.pk, order.order_id, S.FAILED, S.REFUNDED, EventSource.STAFF, "refunded")]


def test_a_rolled_back_change_runs_nothing(seen, django_capture_on_commit_callbacks):
    order = make_order(status=S.FAILED)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        order_transition(order=order, from_status=S.FAILED, to_status=S.REFUNDED, source=EventSource.STAFF)
        raise RuntimeError("rolled back")
    assert seen == []
    order.refresh_from_db()
    assert order.status == S.FAILED


def test_from_statuses_narrows_a_handler(seen, django_capture_on_commit_callbacks):
    order = make_order(status=S.NEEDS_REVIEW)
    with django_capture_on_commit_callbacks(execute=True):
        assert order_transition(order=order, from_status=S.NEEDS_REVIEW, to_status=S.REFUNDED,
                                source=EventSource.STAFF)
    assert seen == []


def test_a_lost_race_announces_nothing(seen, django_capture_on_commit_callbacks):
    order = make_order(status=S.DELIVERED)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert not order_transition(order=order, from_status=S.FAILED, to_status=S.REFUNDED,
                                    source=EventSource.STAFF)
    assert callbacks == [] and seen == []


def test_entering_paid_enqueues_fulfilment_by_task_name(monkeypatch, django_capture_on_commit_callbacks):
    sent: list[int] = []
    monkeypatch.setattr("orders.tasks.order_fulfil.delay", sent.append)
    order = make_order(status=S.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        assert order_transition(order=order, from_status=S.FAILED, to_status=S.PAID, source=EventSource.STAFF)
    assert sent == [order.pk]


def test_a_change_from_one_known_status_is_the_update_and_its_event(django_assert_max_num_queries):
    """No read before the conditional UPDATE when there is one expected status: it decides alone."""
    order = make_order(status=S.FAILED)
    # the UPDATE and the event's INSERT, inside the atomic block's savepoint and its release
    with django_assert_max_num_queries(4):
        assert order_transition(order=order, from_status=S.FAILED, to_status=S.PAID, source=EventSource.STAFF)
    with django_assert_max_num_queries(3):  # already moved on: the UPDATE matches nothing, no event
        assert not order_transition(order=order, from_status=S.FAILED, to_status=S.PAID, source=EventSource.STAFF)
    order.refresh_from_db()
    assert order.status == S.PAID
    assert list(order.events.values_list("from_status", "to_status")) == [(S.FAILED, S.PAID)]
