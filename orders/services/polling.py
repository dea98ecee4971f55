"""The payment poller: the second, independent way the store learns about payments.

Callbacks can be lost; the poller makes sure every pending order is looked at every cycle, and
keeps looking at expired orders for a grace window so a late payment reaches staff review.

How it scales and stays safe:
- Lookups run in a bounded thread pool sharing ONE `requests.Session` (connection reuse), each
  with the client's per-call timeout. Worker threads only do HTTP; every database read and
  write happens in the calling thread, so no thread leaks a database connection.
- Work is claimed in small batches: a short transaction selects due orders with
  `select_for_update(skip_locked=True)` and stamps a lease (`poll_lease_until`). Parallel
  pollers (overlapping beat runs, several workers) therefore split the orders instead of all
  checking all of them; a crashed poller's lease simply runs out.
- One failing lookup is counted as an error and never stops the rest. Applying a record is
  idempotent, so racing the callback path is harmless.
"""

from __future__ import annotations

import logging
import queue
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from orders.models import AITokenOrder, EventSource, OrderStatus
from orders.services.payment_updates import order_apply_payment
from payments.client import KryptoExpressClient, KryptoExpressError, get_kryptoexpress_client
from storefront.heartbeats import record_poll_ok
from storefront.http import pooled_session

logger = logging.getLogger("orders.poller")

# A claimed order is left alone by other pollers this long (longer than any cycle's tail).
LEASE_SECONDS = 300
# Orders still without a gateway payment this long after creation were left by a crash.
ORPHAN_AFTER = timedelta(minutes=10)
RELEASE_EVERY = 200
ORDER_FIELDS = (
    "pk", "order_id", "status", "payment_hash", "crypto_type", "crypto_amount", "total_usd_cost",
    "expires_at", "paid_at", "user_id",
)


@dataclass(frozen=True)
class PollReport:
    """One poll cycle: orders looked up, orders changed, lookups that failed, wall time."""

    checked: int
    changed: int
    errors: int
    seconds: float
    discarded: int = 0


def payments_poll(
    *,
    concurrency: int | None = None,
    budget_seconds: float | None = None,
    client: KryptoExpressClient | None = None,
) -> PollReport:
    """Check every due order's payment once, `concurrency` lookups at a time.

    Due: `pending` orders with a gateway payment, and `expired` ones whose expiry is within
    `PAYMENT_LATE_GRACE_HOURS`, that no other poller holds and that this cycle has not checked.
    Stops claiming new work after `budget_seconds` (the rest waits for the next cycle).
    """
    started = time.monotonic()
    cycle_start = timezone.now()
    concurrency = max(1, concurrency or settings.PAYMENT_POLL_CONCURRENCY)
    budget = settings.PAYMENT_POLL_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    batch_size = max(50, concurrency * 4)
    discarded = _discard_orphans(now=cycle_start)
    own_session = None
    if client is None:
        own_session = _pooled_session(concurrency)
        client = get_kryptoexpress_client(session=own_session)

    checked = changed = errors = 0
    finished: list[int] = []
    # Workers hand finished lookups back through this queue; only this thread touches the DB.
    results: queue.SimpleQueue[tuple[AITokenOrder, Future]] = queue.SimpleQueue()
    in_flight = 0
    exhausted = False
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="payment-poll") as pool:
            while True:
                if not exhausted and in_flight < concurrency * 2:
                    if time.monotonic() - started >= budget:
                        exhausted = True
                        logger.warning("poll budget of %ss used up; the rest waits for the next cycle", budget)
                    else:
                        batch = _claim(batch_size=batch_size, cycle_start=cycle_start)
                        exhausted = len(batch) < batch_size
                        for order in batch:
                            future = pool.submit(client.get_payment, order.payment_hash)
                            future.add_done_callback(lambda f, o=order: results.put((o, f)))
                            in_flight += 1
                if not in_flight:
                    break
                order, future = results.get()
                in_flight -= 1
                checked += 1
                finished.append(order.pk)
                outcome = _apply(order=order, future=future)
                changed += outcome == "changed"
                errors += outcome == "error"
                if len(finished) >= RELEASE_EVERY:
                    _release(finished)
                    finished = []
    finally:
        _release(finished)
        if own_session is not None:
            own_session.close()
    report = PollReport(
        checked=checked, changed=changed, errors=errors, seconds=round(time.monotonic() - started, 3),
        discarded=discarded,
    )
    if report.checked == 0 or report.errors < report.checked:
        record_poll_ok()  # heartbeat for /healthz and the staff watchdog
    logger.info(
        "poll cycle checked=%d changed=%d errors=%d discarded=%d seconds=%.2f",
        report.checked, report.changed, report.errors, report.discarded, report.seconds,
    )
    return report


def _due(*, now: datetime, cycle_start: datetime):
    grace_start = now - timedelta(hours=settings.PAYMENT_LATE_GRACE_HOURS)
    return (
        AITokenOrder.objects.filter(payment_hash__isnull=False)
        .filter(Q(status=OrderStatus.PENDING) | Q(status=OrderStatus.EXPIRED, expires_at__gte=grace_start))
        .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
        .filter(Q(payment_checked_at__isnull=True) | Q(payment_checked_at__lt=cycle_start))
    )


def _claim(*, batch_size: int, cycle_start: datetime) -> list[AITokenOrder]:
    """Take a batch of due orders for this poller: short transaction, locked rows skipped."""
    now = timezone.now()
    with transaction.atomic():
        batch = list(
            _due(now=now, cycle_start=cycle_start)
            .order_by(F("payment_checked_at").asc(nulls_first=True), "pk")
            .only(*ORDER_FIELDS)
            .select_for_update(skip_locked=True)[:batch_size]
        )
        if batch:
            AITokenOrder.objects.filter(pk__in=[o.pk for o in batch]).update(
                poll_lease_until=now + timedelta(seconds=LEASE_SECONDS)
            )
    return batch


def _apply(*, order: AITokenOrder, future: Future) -> str:
    """Apply one lookup's result in this (the calling) thread; never raises."""
    try:
        record = future.result()
    except KryptoExpressError as exc:
        logger.warning("order=%s payment lookup failed: %s status=%s", order.order_id, type(exc).__name__,
                       exc.status_code)
        return "error"
    except Exception as exc:
        logger.warning("order=%s payment lookup failed: %s", order.order_id, type(exc).__name__)
        return "error"
    try:
        return "changed" if order_apply_payment(order=order, record=record, source=EventSource.POLLER) else "same"
    except Exception:
        logger.exception("order=%s applying the payment record failed", order.order_id)
        return "error"


def _release(order_pks: list[int]) -> None:
    if order_pks:
        AITokenOrder.objects.filter(pk__in=order_pks).update(poll_lease_until=None, payment_checked_at=timezone.now())


def _discard_orphans(*, now: datetime) -> int:
    """Delete orders a crashed checkout left without a gateway payment (nobody could pay them)."""
    _, per_model = AITokenOrder.objects.filter(
        status=OrderStatus.PENDING, payment_hash__isnull=True, created_at__lt=now - ORPHAN_AFTER
    ).delete()
    deleted = per_model.get(AITokenOrder._meta.label, 0)
    if deleted:
        logger.warning("discarded %d orders left without a gateway payment", deleted)
    return deleted


def _pooled_session(concurrency: int) -> requests.Session:
    """One session for the whole cycle, with a connection pool as wide as the thread pool."""
    return pooled_session(pool_connections=1, pool_maxsize=concurrency, user_agent="token-store/1.0 (payment poller)")


__all__ = ["PollReport", "payments_poll"]
