"""The fulfilment reconciler and the staff key switch."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from openrouter.client import OpenRouterServerError
from orders.models import AITokenOrder, OrderEvent, OrderStatus
from orders.services.fulfil_queue import fulfilment_mark_enqueued
from orders.services.fulfilment import key_name, order_fulfil
from orders.services.reconciler import fulfilment_reconcile
from orders.services.staff_actions import order_disable_key
from orders.tasks import fulfilment_reconcile as reconcile_fulfilment
from tests.factories import OrderFactory, StaffFactory
from tests.orders.fulfilment_fakes import fake_openrouter_account, paid_order  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.FULFIL_STUCK_AFTER_SECONDS = 300
    settings.FULFIL_REQUEUE_AFTER_SECONDS = 120
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def enqueued(monkeypatch):
    """Fulfil tasks the reconciler (or a transition) sends, instead of running them."""
    sent: list[int] = []
    monkeypatch.setattr("orders.tasks.fulfilment.order_fulfil.delay", lambda pk: sent.append(pk))
    return sent


def _age(order, seconds: int, **fields) -> None:
    AITokenOrder.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds), **fields)


def test_stuck_fulfilling_order_goes_back_to_paid_and_is_enqueued(
    fake_openrouter, enqueued, django_capture_on_commit_callbacks
):
    # given an order a dead worker claimed six minutes ago
    order = paid_order(status=OrderStatus.FULFILLING)
    _age(order, 360, fulfilling_since=timezone.now() - timedelta(seconds=360))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        report = fulfilment_reconcile()
    # then
    order.refresh_from_db()
    assert report.reset == [order.order_id]
    assert order.status == OrderStatus.PAID
    assert order.fulfilling_since is None
    assert enqueued == [order.pk]
    assert OrderEvent.objects.filter(order=order, source="reconciler", to_status="paid").exists()


def test_recent_fulfilling_order_is_left_alone(fake_openrouter, enqueued):
    order = paid_order(status=OrderStatus.FULFILLING, fulfilling_since=timezone.now() - timedelta(seconds=100))
    report = fulfilment_reconcile()
    order.refresh_from_db()
    assert report.reset == []
    assert order.status == OrderStatus.FULFILLING


def test_forgotten_paid_order_is_requeued(fake_openrouter, enqueued):
    forgotten = paid_order()
    _age(forgotten, 600)
    report = fulfilment_reconcile()
    assert report.requeued == [forgotten.order_id]
    assert enqueued == [forgotten.pk]
    # and not again while that task is still in flight
    assert fulfilment_reconcile().requeued == []
    assert enqueued == [forgotten.pk]


def test_paid_orders_with_something_in_flight_are_not_requeued(fake_openrouter, enqueued):
    just_paid = paid_order()  # its on-commit task was sent a moment ago
    backing_off = paid_order()
    _age(backing_off, 600, fulfil_retry_at=timezone.now() + timedelta(seconds=60))
    marked = paid_order()
    _age(marked, 600)
    fulfilment_mark_enqueued(marked.pk, countdown=30)
    pending = OrderFactory()
    _age(pending, 600)
    report = fulfilment_reconcile()
    assert report.requeued == []
    assert enqueued == []
    assert {just_paid.pk, backing_off.pk, marked.pk, pending.pk}.isdisjoint(enqueued)


def test_key_named_for_an_order_that_does_not_hold_it_is_disabled(fake_openrouter, enqueued, mailoutbox):
    # given a delivered order and a second key someone created under its name
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    stray = fake_openrouter.create_key(name=key_name(order), limit=Decimal("1.80")).info.hash
    mailoutbox.clear()
    # when
    report = fulfilment_reconcile()
    # then the stray key is disabled, the delivered one untouched, staff told
    assert report.disabled_keys == [stray]
    assert fake_openrouter.keys[stray]["disabled"] is True
    assert fake_openrouter.keys[order.key_hash]["disabled"] is False
    assert OrderEvent.objects.filter(order=order, source="reconciler", details__key_hash=stray).exists()
    assert any(stray in m.body for m in mailoutbox)
    # and it is reported once, not every run
    assert fulfilment_reconcile().disabled_keys == []


def test_orphan_of_a_paid_order_is_disabled(fake_openrouter, enqueued):
    order = paid_order()
    orphan = fake_openrouter.create_key(name=key_name(order), limit=Decimal("1.80")).info.hash
    report = fulfilment_reconcile()
    assert report.disabled_keys == [orphan]


def test_key_of_an_order_being_fulfilled_right_now_is_left_alone(fake_openrouter, enqueued):
    order = paid_order(status=OrderStatus.FULFILLING, fulfilling_since=timezone.now())
    in_flight = fake_openrouter.create_key(name=key_name(order), limit=Decimal("1.80")).info.hash
    report = fulfilment_reconcile()
    assert report.disabled_keys == []
    assert fake_openrouter.keys[in_flight]["disabled"] is False


def test_keys_not_named_for_orders_are_ignored_and_unknown_orders_reported(fake_openrouter, enqueued):
    own = fake_openrouter.create_key(name="staff experiments", limit=Decimal("5")).info.hash
    unknown = fake_openrouter.create_key(name="Token Store TS-doesnotexist0000", limit=Decimal("1")).info.hash
    report = fulfilment_reconcile()
    assert report.disabled_keys == []
    assert report.unknown_keys == [unknown]
    assert fake_openrouter.keys[own]["disabled"] is False
    assert fake_openrouter.keys[unknown]["disabled"] is False


def test_openrouter_down_is_reported_not_raised(fake_openrouter, enqueued):
    fake_openrouter.fail_next("list_keys", OpenRouterServerError("HTTP 503", status_code=503))
    report = fulfilment_reconcile()
    assert report.errors and "list_keys" in report.errors[0]


def test_reconcile_task_runs_the_service(fake_openrouter, enqueued):
    order = paid_order()
    _age(order, 600)
    assert reconcile_fulfilment.delay().get()["requeued"] == 1


def test_every_paid_order_ends_delivered_or_in_front_of_staff(
    fake_openrouter, settings, django_capture_on_commit_callbacks
):
    # given orders left in every intermediate state by crashes, and OpenRouter flaky for a while
    settings.FULFIL_MAX_ATTEMPTS = 3
    settings.FULFIL_RETRY_BASE_SECONDS = 0
    stuck = paid_order(status=OrderStatus.FULFILLING, fulfilling_since=timezone.now() - timedelta(hours=1))
    forgotten = paid_order()
    _age(forgotten, 600)
    doomed = paid_order()
    _age(doomed, 600)
    fake_openrouter.fail_next("create_key", OpenRouterServerError("HTTP 500", status_code=500), times=4)
    # when the beat runs a few times (tasks eager: each re-enqueue runs at once)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(8):
            with django_capture_on_commit_callbacks(execute=True):
                fulfilment_reconcile()
            clock.shift(timedelta(minutes=5))
            AITokenOrder.objects.filter(status=OrderStatus.PAID).update(updated_at=timezone.now() - timedelta(hours=1))
    # then
    statuses = set(AITokenOrder.objects.values_list("status", flat=True))
    assert statuses <= {OrderStatus.DELIVERED, OrderStatus.FAILED}
    for order in (stuck, forgotten, doomed):
        order.refresh_from_db()
        live = fake_openrouter.live_keys(order.order_id)
        assert len(live) == (1 if order.status == OrderStatus.DELIVERED else 0)


def test_staff_disable_key(fake_openrouter):
    staff = StaffFactory()
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    assert order_disable_key(order=order, actor=staff) is True
    order.refresh_from_db()
    assert order.key_disabled is True
    assert fake_openrouter.keys[order.key_hash]["disabled"] is True
    event = OrderEvent.objects.filter(order=order, message__icontains="disabled").get()
    assert event.actor == staff and event.source == "staff"


def test_staff_disable_key_without_a_key(fake_openrouter):
    order = paid_order()
    assert order_disable_key(order=order) is False
    assert fake_openrouter.calls == []
