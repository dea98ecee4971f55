"""The one door for order status.

Every status change is a conditional UPDATE (`WHERE status = <expected>`) in a transaction that
also writes the `OrderEvent`. Two racers on one order: exactly one gets a row count of 1, the
other gets 0 and stops. A committed change is announced to `orders.transition_effects`, where
each status's side effects (entering `paid` enqueues fulfilment, customer mails, staff alerts)
are registered and run on commit, so a rolled-back transaction enqueues and sends nothing. This
module imports nothing above the models (docs/ARCHITECTURE.md, "Status changes and their effects").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders.models import AITokenOrder, EventSource, OrderEvent, OrderStatus
from orders.transition_effects import StatusChange, transition_effects_schedule

logger = logging.getLogger("orders.transitions")

S = OrderStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PAID, S.EXPIRED, S.NEEDS_REVIEW}),
    # expired → refunded: only for an order staff marked refundable (NEEDS_REFUNDABLE_MARK below).
    S.EXPIRED: frozenset({S.NEEDS_REVIEW, S.REFUNDED}),
    S.PAID: frozenset({S.FULFILLING, S.FAILED}),
    # fulfilling → fulfilling: a new attempt takes over a lapsed lease (orders/services/fulfil_lease.py).
    S.FULFILLING: frozenset({S.DELIVERED, S.PAID, S.FAILED, S.FULFILLING}),
    S.FAILED: frozenset({S.PAID, S.REFUNDED}),
    S.NEEDS_REVIEW: frozenset({S.PAID, S.REFUNDED}),
    # delivered → refunded: only for an order staff marked refundable (NEEDS_REFUNDABLE_MARK below).
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}
# Edges that exist only for an order staff marked refundable (`refundable_marked_at` set, see
# orders/services/refund_marks.py): `order_transition` adds that condition to its UPDATE, so an
# unmarked delivered or expired order can never become refunded, whoever asks.
NEEDS_REFUNDABLE_MARK: frozenset[tuple[str, str]] = frozenset({(S.DELIVERED, S.REFUNDED), (S.EXPIRED, S.REFUNDED)})


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
        if len(expected) == 1:
            # The conditional UPDATE below decides alone; reading the status first would only cost a query.
            (current,) = expected
        else:  # which of the expected statuses the order is in, for the event's `from_status`
            current = AITokenOrder.objects.filter(pk=order.pk, **conditions).values_list("status", flat=True).first()
            if current not in expected:
                return False
        marked = {"refundable_marked_at__isnull": False} if (current, to_status) in NEEDS_REFUNDABLE_MARK else {}
        changed = AITokenOrder.objects.filter(pk=order.pk, status=current, **conditions, **marked).update(**values)
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
        transition_effects_schedule(
            change=StatusChange(
                order_pk=order.pk,
                order_id=order.order_id,
                from_status=current,
                to_status=to_status,
                source=source,
                reason=values.get("reason", "") or "",
            )
        )
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


__all__ = [
    "ALLOWED_TRANSITIONS",
    "NEEDS_REFUNDABLE_MARK",
    "EventSource",
    "TransitionNotAllowed",
    "order_record_event",
    "order_transition",
]
