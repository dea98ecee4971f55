"""An orphan key from a late `POST /keys` is deleted within the sweep delay (sandbox over HTTP).

The issue's repro, scaled down: `POST /keys` answers later than the client's read timeout, the
client gives up, the retry delivers a key, then the first request lands and creates a second key
named for the same order. The targeted sweep (scheduled at the delay the service computes) must
delete it; the reconciler is never run here. Timings are shrunk through settings (timeouts and
margin) so the test takes seconds; `test_production_defaults_keep_the_issues_orphan_under_60s`
checks the same arithmetic with the production defaults.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from openrouter.sandbox.faults import clear_faults, inject_latency, inject_lost_response, inject_status
from openrouter.sandbox.models import SandboxKey
from orders.models import OrderEvent, OrderReason, OrderStatus
from orders.services import key_sweep
from orders.services.key_sweep import key_sweep_delay, order_keys_sweep
from orders.tasks import order_fulfil
from tests.live_sandboxes import use_live_openrouter
from tests.orders.fulfilment_fakes import paid_order

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

CLIENT_TIMEOUT = 1.0
MARGIN = 1.0
SLACK = 2.0  # the sweep's own calls and a busy machine


@pytest.fixture(autouse=True)
def sandbox(live_server, settings):
    use_live_openrouter(settings, live_server.url)
    settings.HTTP_TIMEOUT = (CLIENT_TIMEOUT, CLIENT_TIMEOUT)
    settings.KEY_SWEEP_MARGIN_SECONDS = MARGIN
    settings.FULFIL_RETRY_BASE_SECONDS = 0
    clear_faults()
    yield
    clear_faults()


@pytest.fixture
def sweeps(monkeypatch):
    """Run each scheduled sweep at its countdown on a timer thread, as a worker would (eager tasks
    would run it at once). Returns the countdowns asked for."""
    asked: list[float] = []
    timers: list[threading.Timer] = []

    def run(order_pk: int) -> None:
        try:
            report = order_keys_sweep(order_pk=order_pk)
            if report.busy or report.error:
                later(order_pk, 0.2)
        finally:
            connection.close()

    def later(order_pk: int, countdown: float) -> None:
        timer = threading.Timer(countdown, run, args=(order_pk,))
        timer.daemon = True
        timers.append(timer)
        timer.start()

    def enqueue(order_pk: int, countdown: float) -> None:
        asked.append(countdown)
        later(order_pk, countdown)

    monkeypatch.setattr(key_sweep, "_enqueue_sweep", enqueue)
    yield asked
    for timer in timers:
        timer.cancel()
    for timer in timers:
        if timer.is_alive():
            timer.join(timeout=5)


def _watch_orphan(order, *, held: str | None, timeout: float) -> tuple[SandboxKey | None, float | None]:
    """Poll the sandbox until a key named for the order other than `held` appears and goes.

    Returns (the orphan as first seen, when it was gone) — gone None if it was still there at the end.
    """
    orphan = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        others = list(SandboxKey.objects.filter(name__contains=order.order_id).exclude(hash=held or ""))
        if orphan is None and others:
            orphan = others[0]
        elif orphan is not None and not SandboxKey.objects.filter(hash=orphan.hash).exists():
            return orphan, timezone.now()
        time.sleep(0.05)
    return orphan, None


def test_a_late_key_creation_is_deleted_within_the_sweep_delay(sweeps):
    # given POST /keys answers after 2.5 s, longer than the client's 1 s read timeout
    inject_latency(2500, times=1, method="POST", path_prefix="/keys")
    order = paid_order()
    # when the order is fulfilled: the first attempt times out, the retry delivers
    order_fulfil.delay(order.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    # then the first request lands later and creates a second key named for the order...
    orphan, gone_at = _watch_orphan(order, held=order.key_hash, timeout=15)
    assert orphan is not None, "the lost request never landed (latency fault not applied?)"
    # ...which the targeted sweep deletes (not disables) within the sweep delay
    assert gone_at is not None, "the orphan key is still live"
    lifetime = (gone_at - orphan.created_at).total_seconds()
    assert lifetime <= key_sweep_delay() + SLACK, lifetime
    assert key_sweep_delay() == 2 * CLIENT_TIMEOUT + MARGIN
    assert min(sweeps) == pytest.approx(key_sweep_delay())
    # the delivered key is untouched and is the only one left
    assert list(SandboxKey.objects.filter(name__contains=order.order_id).values_list("hash", "disabled")) == [
        (order.key_hash, False)
    ]
    # the order's history says so (the event is written just after the delete call returns)
    deadline = time.monotonic() + 5
    while not OrderEvent.objects.filter(order=order, details__key_hash=orphan.hash, message__contains="sweep").exists():
        assert time.monotonic() < deadline, "no event records the deletion"
        time.sleep(0.05)


def test_a_lost_504_then_a_402_listing_leaves_no_live_orphan_on_the_failed_order(sweeps):
    # given the key is created but the answer is lost (504), and the retry's listing gets a 402
    inject_lost_response(status_code=504)
    inject_status(402, times=1, method="GET", path_prefix="/keys")
    order = paid_order()
    # when
    order_fulfil.delay(order.pk)
    order.refresh_from_db()
    # then the order failed (out of credits) and its orphan is deleted by the sweep within the delay
    assert (order.status, order.reason) == (OrderStatus.FAILED, OrderReason.OUT_OF_CREDITS)
    orphan, gone_at = _watch_orphan(order, held=None, timeout=10)
    assert orphan is not None and gone_at is not None
    assert (gone_at - orphan.created_at).total_seconds() <= key_sweep_delay() + SLACK
    assert not SandboxKey.objects.filter(name__contains=order.order_id).exists()


def test_production_defaults_keep_the_issues_orphan_under_60s(settings):
    # The issue's numbers: 25 s latency on POST /keys against the default 15 s read timeout. The
    # lost request lands 25 s after it was sent; the sweep runs key_sweep_delay() after the
    # timeout (and again after the retry), so the orphan lives at most timeout + delay − latency.
    settings.HTTP_TIMEOUT = (3.05, 15.0)
    settings.KEY_SWEEP_MARGIN_SECONDS = 15.0
    latency, timeout = 25.0, settings.HTTP_TIMEOUT[1]
    assert latency <= timeout + key_sweep_delay()  # the sweep comes after the landing
    assert timeout + key_sweep_delay() - latency <= 60


def test_a_sweep_never_touches_an_order_mid_attempt(sweeps):
    order = paid_order(status=OrderStatus.FULFILLING)
    report = order_keys_sweep(order_pk=order.pk)
    assert report.busy and report.deleted == []
