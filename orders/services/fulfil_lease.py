"""The fulfilment claim as a lease: an owner and an expiry that the live attempt keeps fresh.

Why: a worker killed mid-purchase leaves its claim (`fulfilling`) committed. With a plain claim,
nothing could tell a dead attempt from a slow one until a long "stuck" timeout passed. With a
lease, the attempt makes sure its lease outlasts every OpenRouter call (each call is bounded by
the client's timeouts), renewing it unless it was granted a moment ago, so a lapsed lease means
the attempt is dead or hopelessly late. A redelivered
task (acks_late + reject_on_worker_lost) then takes the order over at once, and the reconciler
(every minute) resets lapsed leases whose message was lost with the worker.

Safety does not rest on the lease alone: only the attempt whose number is on the order may
deliver (`guard={"fulfil_attempts": n}`), so a late attempt whose lease was taken over can never
store its key; its key is deleted as an orphan (orders/services/key_sweep.py).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from orders.models import AITokenOrder, EventSource, OrderStatus
from orders.services.transitions import order_transition

S = OrderStatus
# A lease granted or renewed less than this long ago is not renewed again (fulfil_lease_renew).
FRESH_LEASE_SECONDS = 1.0


def fulfil_lease_seconds() -> float:
    """How long one claim stays valid without renewal: one OpenRouter call plus a margin.

    `FULFIL_LEASE_SECONDS` (0 = derived): connect + read timeout + `FULFIL_LEASE_MARGIN_SECONDS`.
    """
    configured = float(getattr(settings, "FULFIL_LEASE_SECONDS", 0) or 0)
    if configured > 0:
        return configured
    connect, read = settings.HTTP_TIMEOUT
    return float(connect) + float(read) + float(settings.FULFIL_LEASE_MARGIN_SECONDS)


def fulfil_lease_owner() -> str:
    """Who holds a claim, for people reading the order: host, process and (when known) task id."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    try:
        from celery import current_task

        if current_task and current_task.request.id:
            owner += f":{current_task.request.id}"
    except Exception:  # noqa: S110 - the owner is informative only
        pass
    return owner[:200]


def fulfil_lease_claim_updates(*, now: datetime) -> dict:
    """The columns a claim (`paid → fulfilling`, or a take-over) writes besides the status."""
    return {
        "fulfil_attempts": F("fulfil_attempts") + 1,
        "fulfilling_since": now,
        "fulfil_retry_at": None,
        "fulfil_lease_until": now + timedelta(seconds=fulfil_lease_seconds()),
        "fulfil_lease_owner": fulfil_lease_owner(),
    }


def fulfil_lease_renew(*, order: AITokenOrder, attempt: int) -> bool:
    """Extend this attempt's lease before an OpenRouter call. False: the claim is no longer ours.

    A lease this attempt was granted under FRESH_LEASE_SECONDS ago (`order` as read after its claim:
    the first call follows the claim at once) is left as it is: renewing it would move its expiry by
    less than that, against a margin of FULFIL_LEASE_MARGIN_SECONDS, and nobody can take over a
    lease that has not lapsed. No write then; the delivery stays guarded by the attempt number.
    """
    until = timezone.now() + timedelta(seconds=fulfil_lease_seconds())
    granted = order.fulfil_lease_until
    if (
        order.status == S.FULFILLING
        and order.fulfil_attempts == attempt
        and granted is not None
        and until - granted < timedelta(seconds=FRESH_LEASE_SECONDS)
    ):
        return True
    renewed = AITokenOrder.objects.filter(pk=order.pk, status=S.FULFILLING, fulfil_attempts=attempt).update(
        fulfil_lease_until=until
    )
    if renewed:
        order.fulfil_lease_until = until
    return bool(renewed)


def fulfil_lease_end(
    *,
    order: AITokenOrder,
    attempt: int,
    to_status: str,
    message: str,
    source: str = EventSource.WORKER,
    reason: str | None = None,
    details: dict | None = None,
    updates: dict | None = None,
) -> bool:
    """Move the order out of `fulfilling` and drop the claim — only if attempt `attempt` still holds it.

    Every way an attempt ends (delivered, back to `paid`, failed, reset by the reconciler) goes
    through here, so none can finish a claim a newer attempt has taken over, and none leaves a
    lease or a retry time behind. `updates` are the outcome's own columns.
    """
    return order_transition(
        order=order, from_status=S.FULFILLING, to_status=to_status, source=source,
        message=message, reason=reason, details=details,
        updates={"fulfilling_since": None, "fulfil_lease_until": None, "fulfil_retry_at": None, **(updates or {})},
        guard={"fulfil_attempts": attempt},
    )


def fulfil_lease_lapsed(*, now: datetime) -> Q:
    """`fulfilling` orders whose claim is dead: a lapsed lease, or (rows from before leases) stuck."""
    stuck_before = now - timedelta(seconds=settings.FULFIL_STUCK_AFTER_SECONDS)
    return Q(status=S.FULFILLING) & (
        Q(fulfil_lease_until__lt=now)
        | Q(fulfil_lease_until__isnull=True, fulfilling_since__lt=stuck_before)
        | Q(fulfil_lease_until__isnull=True, fulfilling_since__isnull=True, updated_at__lt=stuck_before)
    )


def fulfil_lease_remaining(order: AITokenOrder, *, now: datetime) -> float | None:
    """Seconds until a `fulfilling` order's lease lapses (≤ 0: lapsed); None without a lease."""
    if order.fulfil_lease_until is None:
        return None
    return (order.fulfil_lease_until - now).total_seconds()


def fulfil_lease_claim(*, order: AITokenOrder, now: datetime) -> bool:
    """Claim a `paid` order for a new attempt (`paid → fulfilling`, attempt + 1, a fresh lease)."""
    return _claim(order, now=now, from_status=S.PAID, message="Claimed for fulfilment")


def fulfil_lease_take_over(*, order: AITokenOrder, now: datetime) -> bool:
    """Claim an order whose previous attempt's lease lapsed (`fulfilling → fulfilling`, attempt + 1).

    Conditional on the lapsed attempt's number and lease, so two takers race safely: one wins.
    """
    return _claim(
        order, now=now, from_status=S.FULFILLING, message="Previous attempt's lease lapsed (worker lost?); taken over",
        details={
            "lapsed_attempt": order.fulfil_attempts,
            "lapsed_owner": order.fulfil_lease_owner,
            "lease_until": order.fulfil_lease_until.isoformat() if order.fulfil_lease_until else None,
        },
        guard={"fulfil_attempts": order.fulfil_attempts, "fulfil_lease_until__lt": now},
    )


def _claim(order: AITokenOrder, *, now: datetime, from_status: str, message: str, details=None, guard=None) -> bool:
    """Enter `fulfilling` as a new attempt holding a fresh lease (a first claim or a take-over)."""
    updates = fulfil_lease_claim_updates(now=now)
    return order_transition(
        order=order, from_status=from_status, to_status=S.FULFILLING, source=EventSource.WORKER,
        message=message, details=details, guard=guard, updates=updates,
    )


__all__ = [
    "FRESH_LEASE_SECONDS",
    "fulfil_lease_claim",
    "fulfil_lease_claim_updates",
    "fulfil_lease_end",
    "fulfil_lease_lapsed",
    "fulfil_lease_owner",
    "fulfil_lease_remaining",
    "fulfil_lease_renew",
    "fulfil_lease_seconds",
    "fulfil_lease_take_over",
]
