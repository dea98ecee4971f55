"""The money path with a REAL Celery worker on Redis, as production runs it (tasks not eager).

Checkout creates the payment on the KryptoExpress sandbox over HTTP (live_server); the sandbox's
control action `pay` sends the signed callback to the store, which moves the order to `paid` and
publishes the fulfil task to Redis on commit; a worker thread (`start_worker`) takes it off the
queue, creates the key on the OpenRouter sandbox over HTTP and marks the order delivered. With
faults injected, the task's own Celery retry (countdown = the order's backoff) goes through the
broker too. See `tests/worker_support.py` for how the worker is set up and torn down.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from celery import signals

from openrouter.sandbox.faults import clear_faults, inject_status
from openrouter.sandbox.keys import key_digest
from openrouter.sandbox.models import SandboxFault, SandboxKey
from orders.models import AITokenOrder, EventSource, OrderStatus
from payments.sandbox.delivery import wait_for_deliveries
from payments.sandbox.gateway import sandbox_payment_act
from storefront.encryption import decrypt
from tests.factories import UserFactory
from tests.worker_support import LIVE_WORKER_MARKS, place_order, real_worker, use_live_sandboxes, wait_delivered

pytestmark = LIVE_WORKER_MARKS
S = OrderStatus
FULFIL_TASK = "orders.tasks.order_fulfil"


@dataclass(frozen=True)
class TaskRun:
    name: str
    order_pk: int | None
    state: str | None
    result: object
    eager: bool
    queue: str | None
    retries: int
    thread: str


@pytest.fixture
def task_runs():
    """Every task that finishes while the test runs, as Celery itself reports it."""
    runs: list[TaskRun] = []

    def record(sender=None, task=None, args=None, retval=None, state=None, **kwargs):
        request = task.request
        runs.append(
            TaskRun(
                name=task.name,
                order_pk=int(args[0]) if args else None,
                state=state,
                result=retval,
                eager=bool(request.is_eager),
                queue=(request.delivery_info or {}).get("routing_key"),
                retries=request.retries or 0,
                thread=threading.current_thread().name,
            )
        )

    signals.task_postrun.connect(record, weak=False)
    yield runs
    signals.task_postrun.disconnect(record)


@pytest.fixture
def store(live_server, settings):
    yield use_live_sandboxes(settings=settings, url=live_server.url)
    assert wait_for_deliveries(timeout=15), "a sandbox callback is still being delivered"
    clear_faults()


@pytest.fixture
def worker(store, task_runs):
    with real_worker() as running:
        yield running


def _fulfil_runs(task_runs: list[TaskRun], worker, order_pk: int, *, timeout: float = 10.0) -> list[TaskRun]:
    """The order's fulfil task runs, once the one that delivered has finished.

    (The order is `delivered` in the database a moment before Celery reports the task finished.)
    """
    deadline = time.monotonic() + timeout
    while True:
        runs = [run for run in task_runs if run.name == FULFIL_TASK and run.order_pk == order_pk]
        if any(run.result == "delivered" for run in runs) or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    for run in runs:
        # taken off the Redis queue by the worker thread, not run inline by whoever enqueued it
        assert not run.eager, run
        assert run.queue == worker.app.conf.task_default_queue, run
        assert run.thread != threading.main_thread().name and "process_request" not in run.thread, run
    assert len({run.thread for run in runs}) <= 1, runs
    return runs


def _history(order: AITokenOrder) -> list[tuple[str, str, str]]:
    return list(order.events.values_list("source", "from_status", "to_status"))


def _keys_named_for(order: AITokenOrder) -> list[SandboxKey]:
    """Every key the OpenRouter sandbox holds for this order, disabled ones included."""
    return list(SandboxKey.objects.filter(name__contains=order.order_id))


def test_three_orders_paid_on_the_gateway_are_delivered_by_the_worker(worker, task_runs):
    # given three customers who checked out (payments created on the gateway sandbox)
    orders = [place_order(UserFactory()) for _ in range(3)]
    assert {order.status for order in orders} == {S.PENDING}
    assert [run for run in task_runs if run.name == FULFIL_TASK] == []  # (the placed mails may have gone)
    # when each pays on the sandbox's control page (signed callback → store)
    for order in orders:
        sandbox_payment_act(payment_hash=order.payment_hash, action="pay")
    for order in orders:
        wait_delivered(order.pk)
    # then each order went checkout → callback → worker, with one key for its base cost
    for order in orders:
        order.refresh_from_db()
        assert _history(order) == [
            (EventSource.CHECKOUT, "", ""),  # the payment was created on the gateway sandbox
            (EventSource.CALLBACK, S.PENDING, S.PAID),
            (EventSource.WORKER, S.PAID, S.FULFILLING),
            (EventSource.WORKER, S.FULFILLING, S.DELIVERED),
        ]
        assert order.fulfil_attempts == 1
        (key,) = _keys_named_for(order)
        assert (key.hash, key.limit, key.disabled) == (order.key_hash, order.base_usd_cost, False)
        assert key_digest(decrypt(order.key_encrypted)) == key.hash  # the customer gets the real key
        (run,) = _fulfil_runs(task_runs, worker, order.pk)
        assert (run.result, run.retries) == ("delivered", 0)
    assert len({order.key_hash for order in orders}) == 3


def test_worker_backs_off_through_two_500s_and_delivers_exactly_one_key(worker, task_runs, settings):
    # given the OpenRouter sandbox answers 500 to the next two key creations
    settings.FULFIL_RETRY_BASE_SECONDS = 0.3  # attempt n waits 0.3 * 2**(n-1) s, ±25 %
    fault = inject_status(500, times=2, method="POST", path_prefix="/keys")
    order = place_order(UserFactory())
    # when the customer pays
    sandbox_payment_act(payment_hash=order.payment_hash, action="pay")
    wait_delivered(order.pk)
    # then the third attempt bought the only key, for the base cost
    order.refresh_from_db()
    fault.refresh_from_db()
    assert (fault.hits, fault.remaining) == (2, 0)
    assert SandboxFault.objects.active().count() == 0
    assert order.fulfil_attempts == 3
    (key,) = _keys_named_for(order)
    assert (key.hash, key.limit, key.disabled) == (order.key_hash, order.base_usd_cost, False)
    assert key_digest(decrypt(order.key_encrypted)) == key.hash
    # each failure put the order back in `paid` with a growing backoff, and nothing claimed it early
    events = list(order.events.exclude(to_status="").filter(source=EventSource.WORKER))
    assert [(e.from_status, e.to_status) for e in events] == [
        (S.PAID, S.FULFILLING), (S.FULFILLING, S.PAID),
        (S.PAID, S.FULFILLING), (S.FULFILLING, S.PAID),
        (S.PAID, S.FULFILLING), (S.FULFILLING, S.DELIVERED),
    ]  # fmt: skip
    backoffs = [e for e in events if e.to_status == S.PAID]
    assert [(e.details["status_code"], e.details["attempt"]) for e in backoffs] == [(500, 1), (500, 2)]
    first, second = (e.details["retry_in"] for e in backoffs)
    assert 0.225 <= first <= 0.375 and 0.45 <= second <= 0.75, (first, second)
    claims = [e for e in events if e.to_status == S.FULFILLING]
    for backoff, next_claim in zip(backoffs, claims[1:], strict=True):
        waited = next_claim.created_at - backoff.created_at
        assert waited >= timedelta(seconds=backoff.details["retry_in"] - 0.05), (waited, backoff.details)
    # the worker's Celery retries (countdown through the broker) did the work: the second one delivered
    runs = _fulfil_runs(task_runs, worker, order.pk)
    assert [run.state for run in runs].count("RETRY") == 2
    (delivering,) = [run for run in runs if run.result == "delivered"]
    # a Celery retry delivered (which chain wins the third claim depends on the broker's timing: the
    # back-off's own retry, or the message entering `paid` again queued, whichever runs after retry_at)
    assert delivering.retries >= 1
