"""Fulfilment benchmark: time from the payment callback to `delivered`, over 200 orders.

Everything is real except the two outside services, which are the sandboxes over live HTTP:
checkout creates each order and its payment on the KryptoExpress sandbox; the sandbox's `pay`
action sends the signed callback to the store's callback URL; the store verifies it, re-reads
the payment (HTTP), moves the order to `paid` and enqueues the fulfil task on commit; a REAL
Celery worker (Redis broker, not eager) claims it, creates the key on the OpenRouter sandbox
(HTTP), stores it and marks the order delivered.

Measured per order: from the moment the sandbox is told to `pay` (just before it sends the
callback) to the order's `delivered_at`. Orders are paid one after another, so the number is
latency, not queueing. Target: p95 < 1 s.

Run: `RUN_BENCH=1 REDIS_URL=redis://127.0.0.1:6379/<n> DATABASE_URL=postgres://... \
      pytest tests/bench/bench_fulfilment.py -s -p no:xdist` (or `make bench`).
`BENCH_FULFIL_ORDERS=N` changes the count; `BENCH_DEBUG=1` prints each order's event timeline.
"""

from __future__ import annotations

import math
import os
import statistics
import time
import uuid
from decimal import Decimal

import pytest
from django.conf import settings as django_settings

from orders.models import AITokenOrder, OrderStatus
from tests.conftest import ON_POSTGRES
from tests.factories import AIModelFactory, UserFactory

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(os.environ.get("RUN_BENCH") != "1", reason="benchmark: set RUN_BENCH=1 (make bench)"),
    pytest.mark.skipif(not django_settings.REDIS_URL, reason="benchmark needs Redis (REDIS_URL) for the broker"),
    pytest.mark.skipif(not ON_POSTGRES, reason="benchmark needs PostgreSQL (DATABASE_URL) shared by worker and web"),
    pytest.mark.django_db(transaction=True),
]

ORDERS = int(os.environ.get("BENCH_FULFIL_ORDERS", "200"))
TARGET_P95_SECONDS = 1.0


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@pytest.fixture
def store(live_server, settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.SITE_URL = live_server.url
    settings.KRYPTO_EXPRESS_API_URL = live_server.url + "/sandbox/kryptoexpress/api"
    settings.OPENROUTER_API_URL = live_server.url + "/sandbox/openrouter/api/v1"
    settings.SANDBOX_CALLBACK_DELAY_SCALE = 0.001
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from openrouter.sandbox.faults import clear_faults
    from openrouter.sandbox.keys import sandbox_set_credits

    clear_faults()
    sandbox_set_credits(total_credits=Decimal("100000"), total_usage=Decimal("0"))
    AIModelFactory(id="anthropic/claude-3-sonnet", name="Anthropic: Claude 3 Sonnet")
    return live_server.url


@pytest.fixture
def celery_worker(store, settings, monkeypatch):
    """A real worker thread consuming from Redis; the app stops running tasks eagerly meanwhile."""
    from celery.contrib.testing.worker import start_worker

    from storefront.celery import app

    broker = django_settings.REDIS_URL
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (pytest sets memory://).
    monkeypatch.setenv("CELERY_BROKER_URL", broker)
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "broker_transport_options")}
    app.conf.update(broker_url=broker, task_always_eager=False, broker_transport_options={"visibility_timeout": 3600})
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _forget_connections(app)
    with app.connection_for_write() as conn:
        assert conn.transport.driver_type == "redis", conn.transport.driver_type
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING"
    ) as worker:
        yield worker
    app.conf.update(saved)
    _forget_connections(app)


def _forget_connections(app) -> None:
    """Drop pooled broker connections made under the previous broker URL (rebuilt on next use)."""
    app._pool = None
    app.amqp._producer_pool = None


def _place(user) -> AITokenOrder:
    from orders.services.placing import order_place

    return order_place(
        user=user,
        model_id="anthropic/claude-3-sonnet",
        token_count=200000,
        crypto_type="BTC",
        seen_total=Decimal("2.16"),
        idempotency_key=uuid.uuid4(),
    )


def _wait_delivered(order_pk: int, timeout: float = 15.0) -> AITokenOrder:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = AITokenOrder.objects.filter(pk=order_pk).only("status", "delivered_at", "order_id").first()
        if order.status == OrderStatus.DELIVERED:
            return order
        if order.status in (OrderStatus.FAILED, OrderStatus.NEEDS_REVIEW):
            pytest.fail(f"order {order.order_id} ended {order.status}")
        time.sleep(0.002)
    pytest.fail(f"order {order_pk} not delivered within {timeout}s")


def test_callback_to_delivered_latency(store, celery_worker):
    from django.utils import timezone

    from openrouter.sandbox.models import SandboxKey
    from payments.sandbox.delivery import wait_for_deliveries
    from payments.sandbox.gateway import sandbox_payment_act

    users = [UserFactory() for _ in range(ORDERS)]
    # warm-up: connections, imports, the worker's first task
    warm = _place(UserFactory())
    sandbox_payment_act(payment_hash=warm.payment_hash, action="pay")
    _wait_delivered(warm.pk)

    latencies: list[float] = []
    started = time.monotonic()
    for user in users:
        order = _place(user)
        paid_from = timezone.now()
        sandbox_payment_act(payment_hash=order.payment_hash, action="pay")
        delivered = _wait_delivered(order.pk)
        latencies.append((delivered.delivered_at - paid_from).total_seconds())
        if os.environ.get("BENCH_DEBUG"):
            events = list(order.events.values_list("created_at", "to_status", "message"))
            print([(round((at - paid_from).total_seconds() * 1000), to, msg[:30]) for at, to, msg in events])
    wall = time.monotonic() - started
    assert wait_for_deliveries(timeout=15)

    p50, p95 = statistics.median(latencies), _percentile(latencies, 95)
    line = (
        f"fulfilment callback→delivered over {len(latencies)} orders (real worker, Redis broker, sandboxes over HTTP): "
        f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, "
        f"min {min(latencies) * 1000:.0f} ms; {len(latencies) / wall:.1f} orders/s including checkout"
    )
    print("\n" + line)
    # exactly one live key per order, for exactly the base cost
    delivered = AITokenOrder.objects.filter(status=OrderStatus.DELIVERED)
    assert delivered.count() == ORDERS + 1
    keys = {k.hash: k for k in SandboxKey.objects.filter(disabled=False)}
    assert len(keys) == ORDERS + 1
    for order in delivered.only("key_hash", "base_usd_cost"):
        assert keys[order.key_hash].limit == order.base_usd_cost
    assert p95 < TARGET_P95_SECONDS, line
