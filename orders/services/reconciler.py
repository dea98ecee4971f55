"""The fulfilment reconciler (beat, every 5 minutes): the safety net under `order_fulfil`.

It resets orders stuck in `fulfilling`, re-enqueues `paid` orders that nothing is working on,
and disables any key named for an order that does not hold it. Together with the claim in
`order_fulfil`: at most one live key per order, and every paid order ends `delivered` or in
front of staff (docs/ARCHITECTURE.md, "Fulfilment").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from openrouter.client import OpenRouterError, OpenRouterNotFound, get_openrouter_client
from orders.alerts import alert_staff_safely
from orders.models import AITokenOrder, EventSource, OrderStatus
from orders.services.fulfil_lease import fulfil_lease_end, fulfil_lease_lapsed
from orders.services.fulfil_queue import (
    fulfilment_clear_enqueued,
    fulfilment_enqueue,
    fulfilment_mark_enqueued,
    fulfilment_queued,
)
from orders.services.key_names import order_id_from_key_name
from orders.services.transitions import order_record_event

logger = logging.getLogger("orders.fulfilment")

S = OrderStatus


@dataclass
class ReconcileReport:
    reset: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    disabled_keys: list[str] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def fulfilment_reconcile() -> ReconcileReport:
    """Beat safety net: reset stuck claims, re-enqueue forgotten paid orders, disable stray keys."""
    report = ReconcileReport()
    now = timezone.now()

    stuck = AITokenOrder.objects.filter(fulfil_lease_lapsed(now=now))
    for order in stuck.only("pk", "order_id", "status", "fulfil_attempts")[:500]:
        # Entering `paid` enqueues the fulfil task on commit (transition_effects.py); mark it first so
        # a task that runs at once clears the mark rather than being shadowed by it.
        fulfilment_mark_enqueued(order.pk)
        if fulfil_lease_end(
            order=order,
            attempt=order.fulfil_attempts,
            to_status=S.PAID,
            source=EventSource.RECONCILER,
            message="Stuck in fulfilling (lease lapsed); reset for another attempt",
        ):
            report.reset.append(order.order_id)
        else:
            fulfilment_clear_enqueued(order.pk)

    idle_before = now - timedelta(seconds=settings.FULFIL_REQUEUE_AFTER_SECONDS)
    idle = list(
        AITokenOrder.objects.filter(status=S.PAID, updated_at__lt=idle_before)
        .filter(Q(fulfil_retry_at__isnull=True) | Q(fulfil_retry_at__lt=idle_before))
        .values_list("pk", "order_id")[:500]
    )
    queued = fulfilment_queued([pk for pk, _ in idle])
    for pk, order_id in idle:
        if pk in queued:
            continue
        fulfilment_enqueue(pk)
        report.requeued.append(order_id)

    _disable_stray_keys(report)

    if report.reset or report.requeued or report.disabled_keys or report.unknown_keys or report.errors:
        logger.warning(
            "reconcile reset=%d requeued=%d disabled=%d unknown=%d errors=%d",
            len(report.reset),
            len(report.requeued),
            len(report.disabled_keys),
            len(report.unknown_keys),
            len(report.errors),
        )
    return report


def _disable_stray_keys(report: ReconcileReport) -> None:
    """Any live key named for an order that does not hold it is disabled and reported."""
    try:
        client = get_openrouter_client()
        keys = client.list_keys()
    except OpenRouterError as exc:
        report.errors.append(f"list_keys: {type(exc).__name__}")
        return
    named = [(info, order_id_from_key_name(info.name)) for info in keys if not info.disabled]
    named = [(info, oid) for info, oid in named if oid]
    if not named:
        return
    # Keys were listed first, orders read second: an order seen here is at least as new as the listing.
    orders = {
        o.order_id: o
        for o in AITokenOrder.objects.filter(order_id__in={oid for _, oid in named}).only(
            "pk", "order_id", "status", "key_hash"
        )
    }
    lines: list[str] = []
    for info, oid in named:
        order = orders.get(oid)
        if order is not None and order.key_hash == info.hash:
            continue
        if order is not None and order.status == S.FULFILLING:
            continue  # its attempt is running: it stores the key or deletes it
        if order is None:
            # Named like ours but no such order here (another deployment on the same account?).
            report.unknown_keys.append(info.hash)
            lines.append(f"- key {info.hash} ({info.name}): no such order in this store; left as is")
            continue
        try:
            client.update_key(info.hash, disabled=True)
        except OpenRouterNotFound:
            continue  # deleted meanwhile by the order's next attempt
        except OpenRouterError as exc:
            report.errors.append(f"disable {info.hash}: {type(exc).__name__}")
            lines.append(f"- key {info.hash} for {oid}: could not disable ({type(exc).__name__})")
            continue
        order_record_event(
            order=order,
            source=EventSource.RECONCILER,
            message="Disabled a key named for this order that the order does not hold",
            details={"key_hash": info.hash, "order_status": order.status},
        )
        report.disabled_keys.append(info.hash)
        lines.append(f"- key {info.hash} for {oid} (order {order.status}): disabled")
    if lines:
        alert_staff_safely(
            kind="fulfilment_stray_keys",
            subject=f"{len(lines)} OpenRouter key(s) named for orders that do not hold them",
            body="The reconciler found keys that no order holds:\n" + "\n".join(lines),
            urgent=True,
        )


__all__ = ["ReconcileReport", "fulfilment_reconcile"]
