"""Targeted sweep of one order's OpenRouter keys after a key creation whose outcome is unknown.

Why: when `POST /keys` times out, breaks off or answers 5xx, the key may still be created — even
after the next attempt has created and delivered the order's real key (a request stuck in
OpenRouter's queue lands late). The 5-minute reconciler would find that second live key only
minutes later, and only disable it. So after any attempt whose create outcome is unknown, and
again after the attempt that follows, one sweep of just that order is scheduled for after the
latest moment the lost request could still land (`key_sweep_delay()`: the client's timeouts
plus `KEY_SWEEP_MARGIN_SECONDS`). The sweep *deletes* every key named for the order except the
one the order holds. The reconciler stays as the backstop.

A sweep never touches an order while an attempt holds its claim (`fulfilling`): that attempt may
have created a key it has not stored yet. It checks again shortly after instead.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.db import transaction

from openrouter.client import OpenRouterError, OpenRouterNotFound, get_openrouter_client
from orders.models import AITokenOrder, EventSource, OrderStatus
from orders.services.key_names import order_id_from_key_name
from orders.services.transitions import order_record_event

# The Celery task that runs `order_keys_sweep` (orders/tasks/key_sweep.py); services never import tasks.
ORDER_KEYS_SWEEP_TASK = "orders.tasks.order_keys_sweep"

logger = logging.getLogger("orders.key_sweep")

S = OrderStatus
# How often a sweep that found the order mid-attempt looks again, and for how long at most.
BUSY_RECHECK_SECONDS = 5.0
MAX_BUSY_RECHECKS = 60


@dataclass
class SweepReport:
    order_id: str = ""
    deleted: list[str] = field(default_factory=list)
    busy: bool = False  # an attempt holds the claim: nothing was touched, check again later
    error: str = ""


def key_sweep_delay() -> float:
    """Seconds after an unknown create outcome by which the lost request has landed (or never will)."""
    connect, read = settings.HTTP_TIMEOUT
    return float(connect) + float(read) + float(settings.KEY_SWEEP_MARGIN_SECONDS)


def key_sweep_schedule(*, order_pk: int, delay: float | None = None) -> None:
    """Sweep this order's keys after `delay` seconds (default `key_sweep_delay()`), once committed."""
    countdown = key_sweep_delay() if delay is None else delay
    transaction.on_commit(lambda: _enqueue_sweep(order_pk, countdown))


def _enqueue_sweep(order_pk: int, countdown: float) -> None:
    try:
        current_app.tasks[ORDER_KEYS_SWEEP_TASK].apply_async((order_pk,), countdown=countdown)
    except Exception as exc:  # the broker is down: the reconciler remains the backstop
        logger.error("order_pk=%s key sweep not scheduled (%s)", order_pk, type(exc).__name__)


def order_keys_sweep(*, order_pk: int) -> SweepReport:
    """Delete every OpenRouter key named for this order except the one it holds."""
    order = AITokenOrder.objects.filter(pk=order_pk).only("pk", "order_id", "status", "key_hash").first()
    if order is None:
        return SweepReport()
    report = SweepReport(order_id=order.order_id)
    if order.status == S.FULFILLING:
        report.busy = True
        return report
    try:
        client = get_openrouter_client()
        keys = [info for info in client.list_keys() if order_id_from_key_name(info.name) == order.order_id]
    except OpenRouterError as exc:
        report.error = f"list_keys: {type(exc).__name__}"
        return report
    # Keys listed first, order read second: if it is still not mid-attempt, no attempt that could
    # store one of these keys holds the claim (only the claim holder may deliver).
    order.refresh_from_db(fields=["status", "key_hash"])
    if order.status == S.FULFILLING:
        report.busy = True
        return report
    for info in keys:
        if info.hash == order.key_hash:
            continue
        try:
            with contextlib.suppress(OpenRouterNotFound):
                client.delete_key(info.hash)
        except OpenRouterError as exc:
            report.error = f"delete: {type(exc).__name__}"
            continue
        report.deleted.append(info.hash)
        order_record_event(
            order=order,
            source=EventSource.WORKER,
            message="Deleted a key named for this order that it does not hold (targeted sweep)",
            details={"key_hash": info.hash, "order_status": order.status, "was_disabled": bool(info.disabled)},
        )
        logger.warning("order=%s sweep deleted orphan key hash=%s", order.order_id, info.hash)
    return report


__all__ = ["SweepReport", "key_sweep_delay", "key_sweep_schedule", "order_keys_sweep"]
