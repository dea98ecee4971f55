"""Top-ups racing on PostgreSQL (real row locks): every paid top-up raises its key exactly once."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from orders.models import AITokenOrder, OrderStatus
from orders.services.fulfilment import FulfilResult, order_fulfil
from tests.concurrency import run_together
from tests.conftest import needs_postgres
from tests.orders.fulfilment_fakes import fake_openrouter_account  # noqa: F401
from tests.orders.top_up_support import delivered_key_order, delivered_sum, limit_of, paid_top_up

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]
S = OrderStatus


@pytest.fixture
def fake(fake_openrouter, settings):
    settings.FULFIL_RETRY_BASE_SECONDS = 0.01
    settings.FULFIL_RETRY_MAX_SECONDS = 0.05
    fake_openrouter.patched_limits = []
    original = fake_openrouter.update_key

    def slow_update_key(key_hash, *, disabled=None, limit=None):
        if limit is not None:
            with fake_openrouter.lock:
                fake_openrouter.patched_limits.append(limit)
            time.sleep(0.1)  # long enough for racers to overlap
        return original(key_hash, disabled=disabled, limit=limit)

    fake_openrouter.update_key = slow_update_key
    return fake_openrouter


def _together(*targets) -> list:
    results, errors = run_together(*targets)
    assert errors == []
    return results


def _drain(*orders, rounds: int = 40) -> None:
    """Run each top-up's task until it is no longer waiting (what the task's retries do)."""
    for _ in range(rounds):
        pending = [o for o in orders if AITokenOrder.objects.get(pk=o.pk).status in (S.PAID, S.FULFILLING)]
        if not pending:
            return
        for order in pending:
            AITokenOrder.objects.filter(pk=order.pk, status=S.PAID).update(fulfil_retry_at=None)
            order_fulfil(order_pk=order.pk)


def test_two_workers_on_one_top_up_raise_once(fake):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    results = [r.result for r in _together(*[lambda: order_fulfil(order_pk=order.pk)] * 2)]
    # the loser stops without touching OpenRouter: it finds the claim taken (or its lease still live)
    assert results.count(FulfilResult.DELIVERED) == 1
    assert len(results) == 2 and set(results) - {FulfilResult.DELIVERED} <= {FulfilResult.SKIPPED, FulfilResult.LEASED}
    assert fake.patched_limits == [Decimal("3.60")]
    assert limit_of(fake, key_order) == Decimal("3.60") == delivered_sum(key_order)


def test_two_top_ups_of_one_key_paid_at_the_same_moment_both_land(fake):
    # given two top-ups of one key, paid at once, fulfilled by two workers at the same instant
    key_order = delivered_key_order(fake)
    first = paid_top_up(key_order)
    second = paid_top_up(key_order, token_count=400000, base_usd_cost=Decimal("3.60"),
                         markup_amount=Decimal("0.72"), total_usd_cost=Decimal("4.32"))
    results = _together(lambda: order_fulfil(order_pk=first.pk), lambda: order_fulfil(order_pk=second.pk))
    # then one raised, the other waited for it (never stacking on an unconfirmed limit)
    assert sorted(r.result for r in results) == sorted([FulfilResult.DELIVERED, FulfilResult.RETRY])
    _drain(first, second)
    assert AITokenOrder.objects.filter(pk__in=[first.pk, second.pk], status=S.DELIVERED).count() == 2
    assert limit_of(fake, key_order) == Decimal("7.20") == delivered_sum(key_order)
    assert sorted(fake.patched_limits) in ([Decimal("3.60"), Decimal("7.20")], [Decimal("5.40"), Decimal("7.20")])
    key_order.refresh_from_db()
    assert key_order.key_limit_usd == Decimal("7.20")


def test_many_redelivered_messages_for_many_top_ups_of_one_key(fake):
    key_order = delivered_key_order(fake)
    orders = [paid_top_up(key_order) for _ in range(3)]
    jobs = [o.pk for o in orders for _ in range(3)]
    lock = threading.Lock()

    def next_job():
        with lock:
            pk = jobs.pop()
        # The task is thin (load by id, call the service): a redelivered message is this call again.
        # (Eager Celery retries re-run inside the task and leave Celery's eager state dirty for later tests.)
        return order_fulfil(order_pk=pk).result

    _together(*[next_job] * len(jobs))
    _drain(*orders)
    assert all(AITokenOrder.objects.get(pk=o.pk).status == S.DELIVERED for o in orders)
    assert limit_of(fake, key_order) == Decimal("7.20") == delivered_sum(key_order)
    assert len(fake.patched_limits) == 3  # one raise per top-up, never a repeat
    assert sorted(fake.patched_limits) == [Decimal("3.60"), Decimal("5.40"), Decimal("7.20")]


def test_a_crash_after_the_raise_then_a_racing_retry_and_a_second_top_up(fake, monkeypatch):
    from orders.services import top_up
    from orders.services.transitions import order_transition

    key_order = delivered_key_order(fake)
    first = paid_top_up(key_order)
    second = paid_top_up(key_order)

    class Killed(Exception):
        pass

    with monkeypatch.context() as patched:
        patched.setattr(top_up, "_deliver", lambda **kw: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            order_fulfil(order_pk=first.pk)
    stuck = AITokenOrder.objects.get(pk=first.pk)
    order_transition(order=stuck, from_status=S.FULFILLING, to_status=S.PAID, source="reconciler",
                     updates={"fulfil_retry_at": None})
    _together(lambda: order_fulfil(order_pk=first.pk), lambda: order_fulfil(order_pk=first.pk),
              lambda: order_fulfil(order_pk=second.pk))
    _drain(first, second)
    assert limit_of(fake, key_order) == Decimal("5.40") == delivered_sum(key_order)
    assert fake.patched_limits == [Decimal("3.60"), Decimal("5.40")]
