"""The fulfil claim is a lease: renewed by the live attempt, taken over once it lapses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import AITokenOrder, OrderEvent, OrderStatus
from orders.services.fulfil_lease import fulfil_lease_renew, fulfil_lease_seconds
from orders.services.fulfilment import FulfilResult, key_name, order_fulfil
from orders.services.reconciler import fulfilment_reconcile
from tests.orders.fulfilment_fakes import fake_openrouter_account, paid_order  # noqa: F401

pytestmark = pytest.mark.django_db
S = OrderStatus


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.HTTP_TIMEOUT = (3.05, 15.0)
    settings.FULFIL_LEASE_SECONDS = 0
    settings.FULFIL_LEASE_MARGIN_SECONDS = 10
    settings.FULFIL_STUCK_AFTER_SECONDS = 300
    settings.FULFIL_REQUEUE_AFTER_SECONDS = 120


def _claimed_by_a_dead_worker(*, lease_left: float, attempts: int = 1) -> AITokenOrder:
    order = paid_order()
    now = timezone.now()
    OrderEvent.objects.create(order=order, source="worker", from_status=S.PAID, to_status=S.FULFILLING)
    AITokenOrder.objects.filter(pk=order.pk).update(
        status=S.FULFILLING, fulfil_attempts=attempts, fulfilling_since=now - timedelta(seconds=30),
        fulfil_lease_until=now + timedelta(seconds=lease_left), fulfil_lease_owner="dead-host:123",
    )
    order.refresh_from_db()
    return order


def test_the_lease_is_sized_from_the_client_timeouts(settings):
    assert fulfil_lease_seconds() == pytest.approx(3.05 + 15.0 + 10)
    settings.FULFIL_LEASE_SECONDS = 7
    assert fulfil_lease_seconds() == 7


def test_a_claim_records_an_owner_and_an_expiry_and_delivery_clears_it(fake_openrouter):
    order = paid_order()
    before = timezone.now()
    assert order_fulfil(order_pk=order.pk).result is FulfilResult.DELIVERED
    claim = OrderEvent.objects.get(order=order, to_status=S.FULFILLING)
    assert claim.from_status == S.PAID
    order.refresh_from_db()
    assert order.fulfil_lease_until is None and order.fulfil_lease_owner  # owner kept for the record
    assert order.delivered_at >= before


def test_a_lease_granted_a_moment_ago_is_not_written_again(django_assert_max_num_queries):
    fresh = _claimed_by_a_dead_worker(lease_left=fulfil_lease_seconds() - 0.2)  # claimed 0.2 s ago
    with django_assert_max_num_queries(0):
        assert fulfil_lease_renew(order=fresh, attempt=1)
    older = _claimed_by_a_dead_worker(lease_left=fulfil_lease_seconds() - 5)
    granted = older.fulfil_lease_until
    assert fulfil_lease_renew(order=older, attempt=1)
    older.refresh_from_db()
    assert older.fulfil_lease_until >= granted + timedelta(seconds=4)
    # a claim that is no longer this attempt's is never renewed, fresh or not
    assert not fulfil_lease_renew(order=fresh, attempt=2)
    fresh.refresh_from_db()
    assert fresh.fulfil_attempts == 1


def test_a_live_lease_is_left_alone_and_the_task_is_told_when_to_look_again(fake_openrouter):
    order = _claimed_by_a_dead_worker(lease_left=12)
    outcome = order_fulfil(order_pk=order.pk)
    assert outcome.result is FulfilResult.LEASED
    assert 11 <= outcome.retry_in <= 13
    assert fake_openrouter.calls == []
    order.refresh_from_db()
    assert (order.status, order.fulfil_attempts) == (S.FULFILLING, 1)


def test_a_lapsed_lease_is_taken_over_at_once_and_the_dead_attempts_key_deleted(fake_openrouter):
    # given a worker died after its key request landed at OpenRouter (the key was never stored)
    order = _claimed_by_a_dead_worker(lease_left=-1)
    orphan = fake_openrouter.create_key(name=key_name(order), limit=order.base_usd_cost)
    # when the redelivered task runs
    outcome = order_fulfil(order_pk=order.pk)
    # then it took the order over (attempt 2), deleted the orphan and delivered exactly one key
    assert outcome.result is FulfilResult.DELIVERED and outcome.attempt == 2
    order.refresh_from_db()
    assert [k["hash"] for k in fake_openrouter.live_keys(order.order_id)] == [order.key_hash]
    assert orphan.info.hash != order.key_hash
    takeover = OrderEvent.objects.get(order=order, from_status=S.FULFILLING, to_status=S.FULFILLING)
    assert takeover.details["lapsed_owner"] == "dead-host:123" and takeover.details["lapsed_attempt"] == 1


def test_the_reconciler_resets_a_lapsed_lease_long_before_the_old_five_minutes(
    fake_openrouter, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("orders.tasks.fulfilment.order_fulfil.delay", lambda pk: sent.append(pk))
    lapsed = _claimed_by_a_dead_worker(lease_left=-1)
    live = _claimed_by_a_dead_worker(lease_left=20)
    with django_capture_on_commit_callbacks(execute=True):
        report = fulfilment_reconcile()
    assert report.reset == [lapsed.order_id]
    lapsed.refresh_from_db()
    live.refresh_from_db()
    assert (lapsed.status, live.status) == (S.PAID, S.FULFILLING)
    assert sent == [lapsed.pk]


def test_the_reconciler_runs_every_minute(settings):
    assert settings.PERIODIC_TASKS["Reconcile fulfilment"]["every"] == timedelta(minutes=1)
