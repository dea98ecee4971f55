"""A worker killed mid-purchase: the order is still delivered, fast, with exactly one live key.

Real `celery worker` processes (prefork) on Redis, the test database on PostgreSQL, the OpenRouter
sandbox on live_server. `POST /keys` is slowed so the kill lands while the key request is in
flight; the killed request still creates a key at the sandbox afterwards (an orphan). The lease is
shortened through the worker's environment so the test takes seconds; the bound asserted is the
issue's 90 s.
"""

from __future__ import annotations

import time

import pytest

from openrouter.sandbox.faults import inject_latency
from openrouter.sandbox.models import SandboxFault, SandboxKey
from orders.models import AITokenOrder, OrderEvent, OrderStatus
from orders.tasks import fulfilment_reconcile, order_fulfil
from payments.sandbox.delivery import wait_for_deliveries
from tests.orders.fulfilment_fakes import paid_order
from tests.worker_process import publishing_to_worker, worker_process
from tests.worker_support import LIVE_WORKER_MARKS, use_live_sandboxes

pytestmark = LIVE_WORKER_MARKS
S = OrderStatus
LEASE_SECONDS = 6
CREATE_LATENCY_MS = 3000
TARGET_SECONDS = 90
WORKER_ENV = {"FULFIL_LEASE_SECONDS": str(LEASE_SECONDS), "HTTP_READ_TIMEOUT": "10", "KEY_SWEEP_MARGIN_SECONDS": "1"}


@pytest.fixture
def store(live_server, settings):
    yield use_live_sandboxes(settings=settings, url=live_server.url)
    wait_for_deliveries(timeout=15)


def _wait(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def _mid_purchase(order, fault) -> bool:
    """The worker claimed the order and its POST /keys is sleeping inside the sandbox."""
    fault.refresh_from_db()
    return AITokenOrder.objects.filter(pk=order.pk, status=S.FULFILLING).exists() and fault.hits == 1


def _live_keys(order) -> list[str]:
    return list(SandboxKey.objects.filter(name__contains=order.order_id, disabled=False).values_list("hash", flat=True))


def _assert_one_live_key_once_the_lost_request_landed(order) -> None:
    # The killed attempt's request lands CREATE_LATENCY_MS after it was sent; then at most one
    # key (the delivered one) may stay live.
    time.sleep(CREATE_LATENCY_MS / 1000)
    _wait(lambda: _live_keys(order) == [order.key_hash], timeout=30, what="exactly one live key")


def test_a_killed_worker_child_is_taken_over_once_its_lease_lapses(store):
    # given a worker whose pool process is buying a key (POST /keys is slow)
    fault = inject_latency(CREATE_LATENCY_MS, times=1, method="POST", path_prefix="/keys")
    order = paid_order()
    with publishing_to_worker(), worker_process(live_url=store, env=WORKER_ENV) as worker:
        order_fulfil.delay(order.pk)
        _wait(lambda: _mid_purchase(order, fault), timeout=30, what="the purchase to start")
        # when the pool process is SIGKILLed (the main process stays and gets a new child)
        worker.kill_child()
        killed_at = time.monotonic()
        # then the redelivered task takes the order over once the lease lapses, and delivers
        _wait(lambda: AITokenOrder.objects.filter(pk=order.pk, status=S.DELIVERED).exists(),
              timeout=TARGET_SECONDS, what="delivery after the kill")
        took = time.monotonic() - killed_at
        order.refresh_from_db()
        assert took <= TARGET_SECONDS
        assert took <= LEASE_SECONDS + 20, took  # the lease, not a 5-minute timeout, decides
        _assert_one_live_key_once_the_lost_request_landed(order)
    assert OrderEvent.objects.filter(order=order, from_status=S.FULFILLING, to_status=S.FULFILLING).count() == 1
    assert order.fulfil_attempts == 2


def test_a_killed_worker_is_recovered_by_the_reconciler_when_a_worker_is_back(store):
    # given the whole worker dies mid-purchase: its message stays unacknowledged at the broker
    fault = inject_latency(CREATE_LATENCY_MS, times=1, method="POST", path_prefix="/keys")
    order = paid_order()
    with publishing_to_worker():
        with worker_process(live_url=store, env=WORKER_ENV) as first:
            order_fulfil.delay(order.pk)
            _wait(lambda: _mid_purchase(order, fault), timeout=30, what="the purchase to start")
            first.kill_all()
        # when a worker is back and beat's reconcile runs (every minute in production; the test
        # sends it through the broker every few seconds rather than wait for the minute)
        with worker_process(live_url=store, env=WORKER_ENV):
            back_at = time.monotonic()
            deadline = back_at + TARGET_SECONDS
            while not AITokenOrder.objects.filter(pk=order.pk, status=S.DELIVERED).exists():
                assert time.monotonic() < deadline, "not delivered within 90 s of a worker being back"
                fulfilment_reconcile.delay()
                time.sleep(3)
            order.refresh_from_db()
            took = time.monotonic() - back_at
            assert took <= LEASE_SECONDS + 20, took
            _assert_one_live_key_once_the_lost_request_landed(order)
    assert SandboxFault.objects.get(pk=fault.pk).hits == 1
