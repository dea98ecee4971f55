"""A real Celery worker on Redis, for tests and benchmarks that must not run tasks eagerly.

The suite normally runs tasks inline on an in-memory broker (pytest env). `real_worker()` makes
the Celery app publish to Redis and runs a worker thread consuming from it — as production runs —
then puts back every global it touched. What it takes care of:

- Celery reads the CELERY_BROKER_URL environment variable before its own configuration, and
  pytest-env sets it to memory://; `task_always_eager` is switched off in the app's own conf
  (the Django setting is read once, when the app is configured).
- Each test process gets its own Redis database: the one settings gives its cache (one per xdist
  worker, from PYTEST_XDIST_WORKER), so two xdist workers never take each other's tasks (a task
  run against the other worker's test database would find no order). The queue is purged before
  the worker starts and after it stops.
- Pooled broker connections made under the previous broker URL are forgotten both ways.
- `start_worker` would hijack the root logger (Django's handlers, level INFO) and the Django fixup
  connects task signals for the rest of the process: logging is left alone and the signals, the
  environment and the app conf are restored.
- The worker keeps its database connection across tasks (CELERY_DB_REUSE_MAX, as in production):
  the connections its tasks used are closed once it has stopped, so PostgreSQL can drop the test
  database at the end.

`use_live_sandboxes()` points the store and both sandboxes at `live_server` (checkout, callbacks and
key creation over real HTTP); `place_order()` and `wait_delivered()` drive and watch one order.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial

import pytest
from celery import signals
from celery._state import _set_task_join_will_block
from django.conf import settings as django_settings
from django.db import connections as db_connections

from orders.models import AITokenOrder, OrderStatus
from tests.conftest import ON_POSTGRES, needs_redis
from tests.factories import AIModelFactory
from tests.live_sandboxes import use_live_gateway, use_live_openrouter

# The marks of every test that runs a real Celery worker against the live sandboxes.
LIVE_WORKER_MARKS = [
    needs_redis,
    # SQLite's in-memory test database cannot be written from the worker, callback and web threads at once.
    pytest.mark.skipif(not ON_POSTGRES, reason="a real worker needs PostgreSQL (set DATABASE_URL) as well as Redis"),
    pytest.mark.redis,
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
]

SONNET = "anthropic/claude-3-sonnet"
# Celery globals the worker changes (besides logging): the Django fixup connects these for good.
# pytest updates this one itself between setup and teardown.
_PYTEST_OWN = "PYTEST_CURRENT_TEST"
_FIXUP_SIGNALS = (signals.task_prerun, signals.task_postrun, signals.worker_process_init, signals.beat_embedded_init)


def worker_broker_url() -> str:
    """This test process's own Redis database (under xdist, one per worker; see settings.CACHES)."""
    location = django_settings.CACHES["default"]["LOCATION"]
    if not django_settings.REDIS_URL or not str(location).startswith(("redis://", "rediss://")):
        raise RuntimeError("a real worker needs Redis: set REDIS_URL")
    return str(location)


def use_live_sandboxes(*, settings, url: str) -> str:
    """Point the store (callbacks) and both sandboxes at the live server; a funded account, Sonnet offered."""
    from openrouter.sandbox.faults import clear_faults
    from openrouter.sandbox.keys import sandbox_set_credits

    settings.SITE_URL = url
    use_live_gateway(settings, url)
    use_live_openrouter(settings, url)
    settings.SANDBOX_CALLBACK_DELAY_SCALE = 0.001
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    clear_faults()
    sandbox_set_credits(total_credits=Decimal("100000"), total_usage=Decimal("0"))
    AIModelFactory(id=SONNET, name="Anthropic: Claude 3 Sonnet")
    return url


def place_order(user) -> AITokenOrder:
    """Checkout: 200,000 Sonnet tokens paid in BTC; the payment is created on the gateway sandbox."""
    from orders.services.placing import order_place

    return order_place(
        user=user,
        model_id=SONNET,
        token_count=200000,
        crypto_type="BTC",
        seen_total=Decimal("2.16"),
        idempotency_key=uuid.uuid4(),
    )


def wait_delivered(order_pk: int, timeout: float = 15.0) -> AITokenOrder:
    """Poll the database until the order is delivered; fail at once if it ends anywhere else."""
    deadline = time.monotonic() + timeout
    while True:
        order = AITokenOrder.objects.filter(pk=order_pk).only("status", "delivered_at", "order_id").get()
        if order.status == OrderStatus.DELIVERED:
            return order
        if order.status in (OrderStatus.FAILED, OrderStatus.NEEDS_REVIEW):
            pytest.fail(f"order {order.order_id} ended {order.status}")
        if time.monotonic() >= deadline:
            pytest.fail(f"order {order.order_id} not delivered within {timeout}s (still {order.status})")
        time.sleep(0.002)


def forget_connections(app) -> None:
    """Drop pooled broker connections made under the previous broker URL (rebuilt on next use)."""
    app._pool = None
    app.amqp._producer_pool = None


def purge_queue(app) -> int:
    """Empty the default queue on the app's current broker; how many messages were dropped."""
    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge(app.conf.task_default_queue) or 0


@contextmanager
def real_worker(*, shutdown_timeout: float = 30.0) -> Iterator:
    """A worker thread consuming from this process's Redis database; the app stops running tasks eagerly."""
    from celery.contrib.testing.worker import start_worker

    from storefront.celery import app

    broker = worker_broker_url()
    saved_conf = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "broker_transport_options")}
    saved_environ = dict(os.environ)
    saved_receivers = {signal: list(signal.receivers) for signal in _FIXUP_SIGNALS}
    saved_log_setup = type(app.log)._setup
    warnings_were_logged = logging._warnings_showwarning is not None  # start_worker turns this on
    try:
        os.environ["CELERY_BROKER_URL"] = broker
        app.conf.update(
            broker_url=broker, task_always_eager=False, broker_transport_options={"visibility_timeout": 3600}
        )
        forget_connections(app)
        with app.connection_for_write() as conn:
            assert conn.transport.driver_type == "redis", conn.transport.driver_type
        purge_queue(app)
        # A setup_logging receiver tells Celery the logging is configured: it keeps Django's.
        signals.setup_logging.connect(_leave_logging_alone)
        used_connections: dict[int, object] = {}
        remember = partial(_remember_connections, used_connections)
        signals.task_postrun.connect(remember, weak=False)
        try:
            with start_worker(
                app, pool="solo", perform_ping_check=False, shutdown_timeout=shutdown_timeout, loglevel="WARNING"
            ) as worker:
                yield worker
        finally:
            signals.setup_logging.disconnect(_leave_logging_alone)
            signals.task_postrun.disconnect(remember)
            _close_connections(used_connections.values())
            # Left behind: duplicate messages, and ETA retries the worker handed back when it stopped.
            purge_queue(app)
    finally:
        app.conf.update(saved_conf)
        forget_connections(app)
        _restore_environ(saved_environ)
        for signal, receivers in saved_receivers.items():
            with signal.lock:
                signal.receivers[:] = receivers
                signal.sender_receivers_cache.clear()
        type(app.log)._setup = saved_log_setup
        # A worker marks the process as one where joining a result would block; eager tasks that
        # later tests run and `.get()` must not inherit that.
        _set_task_join_will_block(False)
        if not warnings_were_logged:
            logging.captureWarnings(False)


def _leave_logging_alone(**kwargs) -> None:
    return None


def _remember_connections(used: dict[int, object], **kwargs) -> None:
    """In the worker thread, after each task: note the (thread-local) connections it holds."""
    for conn in db_connections.all(initialized_only=True):
        used[id(conn)] = conn


def _close_connections(used) -> None:
    """Close the stopped worker thread's connections from this thread."""
    for conn in used:
        conn.inc_thread_sharing()
        try:
            conn.close()
        finally:
            conn.dec_thread_sharing()


def _restore_environ(saved: dict[str, str]) -> None:
    """Put back the variables Celery set or changed (CELERY_BROKER_URL, CELERY_LOG_*, _MP_FORK_*)."""
    for key in set(os.environ) - set(saved) - {_PYTEST_OWN}:
        del os.environ[key]
    for key, value in saved.items():
        if key != _PYTEST_OWN and os.environ.get(key) != value:
            os.environ[key] = value
