"""The one door for order status.

Every status change is a conditional UPDATE (`WHERE status = <expected>`) in a transaction that
also writes the `OrderEvent`. Two racers on one order: exactly one gets a row count of 1, the
other gets 0 and stops. Entering `paid` enqueues fulfilment on commit, so a rolled-back
transaction enqueues nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders.customer_mail import customer_mail_after_transition
from orders.models import AITokenOrder, EventSource, OrderEvent, OrderStatus

logger = logging.getLogger("orders.transitions")

S = OrderStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PAID, S.EXPIRED, S.NEEDS_REVIEW}),
    S.EXPIRED: frozenset({S.NEEDS_REVIEW}),
    S.PAID: frozenset({S.FULFILLING, S.FAILED}),
    S.FULFILLING: frozenset({S.DELIVERED, S.PAID, S.FAILED}),
    S.FAILED: frozenset({S.PAID, S.REFUNDED}),
    S.NEEDS_REVIEW: frozenset({S.PAID, S.REFUNDED}),
    S.DELIVERED: frozenset(),
    S.REFUNDED: frozenset(),
}


class TransitionNotAllowed(ValueError):
    """A programming error: the lifecycle has no such edge."""


def order_transition(
    *,
    order: AITokenOrder,
    from_status: str | Iterable[str],
    to_status: str,
    source: str,
    message: str = "",
    details: Mapping[str, Any] | None = None,
    actor: Any = None,
    reason: str | None = None,
    updates: Mapping[str, Any] | None = None,
    guard: Mapping[str, Any] | None = None,
) -> bool:
    """Move `order` from `from_status` to `to_status` if, and only if, it is still there.

    Returns True when this call made the change (and wrote the event), False when the order
    had already moved on — the caller lost a race or is a duplicate and must do nothing more.
    `updates` are extra columns written in the same UPDATE (e.g. `paid_at`). `guard` adds
    conditions to the UPDATE's WHERE besides the status (e.g. `fulfil_attempts=3`: only the
    attempt that holds the claim may finish it). On success the in-memory `order` is refreshed
    with the new values.
    """
    expected = {from_status} if isinstance(from_status, str) else set(from_status)
    for status in expected:
        if to_status not in ALLOWED_TRANSITIONS[status]:
            raise TransitionNotAllowed(f"{status} → {to_status} is not an allowed transition")
    now = timezone.now()
    values: dict[str, Any] = {"status": to_status, "updated_at": now, **(updates or {})}
    if reason is not None:
        values["reason"] = reason
    conditions = dict(guard or {})
    with transaction.atomic():
        current = AITokenOrder.objects.filter(pk=order.pk, **conditions).values_list("status", flat=True).first()
        if current not in expected:
            return False
        changed = AITokenOrder.objects.filter(pk=order.pk, status=current, **conditions).update(**values)
        if changed != 1:
            return False
        OrderEvent.objects.create(
            order_id=order.pk,
            source=source,
            from_status=current,
            to_status=to_status,
            message=message[:300],
            details=dict(details or {}),
            actor=actor if getattr(actor, "pk", None) else None,
        )
        if to_status == S.PAID:
            _enqueue_fulfilment_on_commit(order.pk)
        customer_mail_after_transition(order_pk=order.pk, from_status=current, to_status=to_status)
    for field, value in values.items():
        setattr(order, field, value)
    logger.info(
        "order=%s transition=%s->%s source=%s reason=%s",
        order.order_id,
        current,
        to_status,
        source,
        values.get("reason", ""),
    )
    return True


def order_record_event(
    *,
    order: AITokenOrder,
    source: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    actor: Any = None,
) -> OrderEvent:
    """Record an observation that did not change the status (a gateway read, a staff note)."""
    return OrderEvent.objects.create(
        order_id=order.pk,
        source=source,
        message=message[:300],
        details=dict(details or {}),
        actor=actor if getattr(actor, "pk", None) else None,
    )


def _enqueue_fulfilment_on_commit(order_pk: int) -> None:
    from orders.tasks import fulfil_order

    transaction.on_commit(lambda: fulfil_order.delay(order_pk))


__all__ = [
    "ALLOWED_TRANSITIONS",
    "EventSource",
    "TransitionNotAllowed",
    "order_record_event",
    "order_transition",
]
