"""Exactly one key per order when workers really race (PostgreSQL: real row locks and MVCC)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from orders.models import AITokenOrder, OrderEvent, OrderStatus
from orders.services.fulfilment import FulfilResult, order_fulfil
from orders.tasks import order_fulfil as fulfil_order
from tests.conftest import needs_postgres
from tests.orders.fulfilment_fakes import fake_openrouter_account, paid_order  # noqa: F401

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]


def _race(workers: int, target) -> list:
    barrier = threading.Barrier(workers)
    results: list = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = target()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


def test_two_workers_claiming_at_once_buy_one_key(fake_openrouter, settings):
    # given a paid order and OpenRouter slow enough for the workers to overlap
    order = paid_order()
    fake_openrouter.create_delay = 0.2
    # when two workers run the service at the same instant
    results = _race(2, lambda: order_fulfil(order_pk=order.pk).result)
    # then exactly one claimed and bought; the other either lost the conditional claim (SKIPPED)
    # or, scheduled a moment later, read the winner's live lease (LEASED) — neither touches OpenRouter
    assert results.count(FulfilResult.DELIVERED) == 1, results
    loser = next(r for r in results if r != FulfilResult.DELIVERED)
    assert loser in (FulfilResult.SKIPPED, FulfilResult.LEASED), results
    assert fake_openrouter.calls.count("create_key") == 1
    order = AITokenOrder.objects.get(pk=order.pk)
    assert order.status == OrderStatus.DELIVERED
    assert order.fulfil_attempts == 1
    assert [k["hash"] for k in fake_openrouter.live_keys(order.order_id)] == [order.key_hash]
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.FULFILLING).count() == 1


def test_many_redelivered_messages_at_once_buy_one_key(fake_openrouter, settings):
    orders = [paid_order() for _ in range(3)]
    fake_openrouter.create_delay = 0.05
    jobs = [o.pk for o in orders for _ in range(4)]
    lock = threading.Lock()

    def next_job():
        with lock:
            pk = jobs.pop()
        # `.get()` is not used here: Celery flags "a task is running" process-wide while any thread runs
        # one eagerly, so one thread's get() would trip over another thread's task.
        result = fulfil_order.apply(args=(pk,))
        assert result.successful(), result.traceback
        return result.result

    results = _race(len(jobs), next_job)
    assert results.count("delivered") == 3
    assert fake_openrouter.calls.count("create_key") == 3
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.DELIVERED
        assert [k["hash"] for k in fake_openrouter.live_keys(order.order_id)] == [order.key_hash]
