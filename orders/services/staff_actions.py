"""What staff can do to an order from the admin — each action one function, each one recorded.

Every action re-reads the order, refuses (`StaffActionRefused`, nothing changed) when the order's
status does not allow it, changes status only through `order_transition` (source `staff`, the
acting user as actor) and leaves an `OrderEvent` naming who did what. The admin only parses
input, calls one of these, and shows the returned message.

Actions:
- re-check payment now (pending / expired / needs_review): re-read the gateway record and apply it;
- retry fulfilment (failed → paid): fulfilment starts again with a fresh attempt budget;
- approve a needs_review payment (→ paid): the staff member types the order id and a reason;
- mark refunded (failed / needs_review, or delivered / expired marked refundable → refunded): with
  the refund transaction reference;
- disable the delivered key at OpenRouter;
- mark refundable / withdraw the mark (delivered / expired): `orders.services.refund_marks`.

Why this module is long: it is the one list of staff actions on an order, each a short function
over the same shared checks (fresh read, status gate, refund-started gate, staff transition);
splitting it would scatter the list staff and reviewers read as one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from openrouter.client import OpenRouterError, get_openrouter_client
from orders.customer_mail import KEY_DISABLED, customer_mail_enqueue
from orders.models import AITokenOrder, EventSource, OrderReason, OrderStatus, Refund, RefundStatus
from orders.services.payment_updates import order_refresh_payment
from orders.services.refunds import MARKABLE_STATUSES, order_refundable, refund_key_refusal
from orders.services.transitions import order_record_event, order_transition
from payments.client import KryptoExpressError

logger = logging.getLogger("orders.staff")

S = OrderStatus

RECHECK_STATUSES = frozenset({S.PENDING, S.EXPIRED, S.NEEDS_REVIEW})
REFUND_STATUSES = frozenset({S.FAILED, S.NEEDS_REVIEW})  # and MARKABLE_STATUSES once marked refundable
NOTE_MIN, NOTE_MAX = 5, 250
REFERENCE_MAX = 200
# Printable text only: references and notes end up in CSV exports and emails.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class StaffActionRefused(Exception):
    """The action is not possible for this order as it is now. Nothing was changed."""


@dataclass(frozen=True)
class StaffAction:
    """An action as the admin offers it on an order page."""

    slug: str
    label: str
    needs_form: bool
    statuses: frozenset[str]


ACTIONS: dict[str, StaffAction] = {
    a.slug: a
    for a in (
        StaffAction("recheck-payment", "Re-check payment now", False, RECHECK_STATUSES),
        StaffAction("retry-fulfilment", "Retry fulfilment", False, frozenset({S.FAILED})),
        StaffAction("approve-payment", "Approve payment", True, frozenset({S.NEEDS_REVIEW})),
        StaffAction("mark-refunded", "Mark refunded", True, REFUND_STATUSES | MARKABLE_STATUSES),
        StaffAction("disable-key", "Disable delivered key", False, frozenset({S.DELIVERED})),
        StaffAction("mark-refundable", "Mark refundable", True, MARKABLE_STATUSES),
        StaffAction("unmark-refundable", "Withdraw refund offer", True, MARKABLE_STATUSES),
    )
}


def staff_actions_available(order: AITokenOrder) -> list[StaffAction]:
    """The actions that make sense for the order's current status (for the order page's buttons)."""
    available = [a for a in ACTIONS.values() if order.status in a.statuses]
    if not order.payment_hash:
        available = [a for a in available if a.slug != "recheck-payment"]
    if not order.key_hash or order.key_disabled:
        available = [a for a in available if a.slug != "disable-key"]
    marked = order.refundable_marked_at is not None
    hidden = {"unmark-refundable"} if not marked else {"mark-refundable"}
    if not order_refundable(order):
        hidden.add("mark-refunded")
    if not order.payment_hash:
        hidden.add("mark-refundable")
    return [a for a in available if a.slug not in hidden]


def _fresh(order: AITokenOrder) -> AITokenOrder:
    order.refresh_from_db()
    return order


def _require_status(order: AITokenOrder, allowed: frozenset[str], action: str) -> None:
    if order.status not in allowed:
        names = ", ".join(sorted(str(S(s).label).lower() for s in allowed))
        raise StaffActionRefused(
            f"{order.order_id}: cannot {action} — the order is {S(order.status).label.lower()} "
            f"(allowed only when {names})."
        )


def staff_text_clean(value: str, *, field: str, minimum: int, maximum: int) -> str:
    text = " ".join((value or "").split())
    if _CONTROL_CHARS.search(text):
        raise StaffActionRefused(f"The {field} contains control characters.")
    if len(text) < minimum:
        raise StaffActionRefused(f"The {field} is required (at least {minimum} characters).")
    if len(text) > maximum:
        raise StaffActionRefused(f"The {field} is too long (at most {maximum} characters).")
    return text


def _lost_race(order: AITokenOrder) -> StaffActionRefused:
    current = AITokenOrder.objects.filter(pk=order.pk).values_list("status", flat=True).first()
    label = S(current).label.lower() if current else "gone"
    return StaffActionRefused(f"{order.order_id} changed meanwhile (now {label}); nothing was done.")


def order_staff_recheck_payment(*, order: AITokenOrder, actor) -> str:
    """Ask the gateway about the payment now instead of waiting for the poller or a callback.

    Staff use it when a customer says "I paid". Applying the record is the same idempotent code
    the poller runs, so a re-check can never do anything the poller would not.
    """
    order = _fresh(order)
    _require_status(order, RECHECK_STATUSES, "re-check the payment")
    if not order.payment_hash:
        raise StaffActionRefused(f"{order.order_id} has no gateway payment to re-check.")
    before = order.status
    with _refused_if_remote_fails(
        KryptoExpressError, order, actor, action="recheck_payment",
        message="Staff re-checked the payment: gateway unreachable",
        refusal="the gateway could not be read ({error}); nothing changed.",
    ):
        changed = order_refresh_payment(order=order, source=EventSource.STAFF, actor=actor)
    order = _fresh(order)
    order_record_event(
        order=order, source=EventSource.STAFF, actor=actor,
        message=f"Staff re-checked the payment: {before} → {order.status}" if changed
        else f"Staff re-checked the payment: still {order.status}",
        details={"action": "recheck_payment", "changed": changed, "from": before, "to": order.status},
    )
    logger.info("order=%s staff_action=recheck_payment actor=%s changed=%s", order.order_id, _who(actor), changed)
    if changed:
        return f"{order.order_id}: payment re-checked — now {S(order.status).label.lower()}."
    return f"{order.order_id}: payment re-checked — no change ({S(order.status).label.lower()})."


def order_staff_retry_fulfilment(*, order: AITokenOrder, actor) -> str:
    """Put a failed order back to `paid` so the fulfilment worker tries again (enqueued on commit).

    Used after staff fixed the cause (topped up OpenRouter, fixed the key). The attempt counter
    restarts so the worker gets its full retry budget. Fulfilment itself still re-checks every
    rule and removes any half-made key first, so a retry can never buy twice.
    """
    order = _fresh(order)
    _require_status(order, frozenset({S.FAILED}), "retry fulfilment")
    if order.key_hash:
        raise StaffActionRefused(f"{order.order_id} already holds a key; it cannot be fulfilled again.")
    _staff_transition(
        order,
        actor,
        action="retry_fulfilment",
        to_status=S.PAID,
        reason="",
        message="Staff retried fulfilment",
        details={"previous_reason": order.reason, "attempts": order.fulfil_attempts},
        updates={"fulfil_attempts": 0, "fulfilling_since": None, "fulfil_retry_at": None},
    )
    return f"{order.order_id}: fulfilment will be retried."


def order_staff_approve_payment(*, order: AITokenOrder, actor, confirmation: str, note: str) -> str:
    """Accept a payment the store put on review (wrong amount, paid late…) and fulfil the order.

    This overrides the automatic refusal of a mismatched payment (docs/ARCHITECTURE.md, "Money
    rules", rule 2), so it needs a deliberate act: the staff member
    types the order id as confirmation and writes why; both are kept in the event.
    """
    order = _fresh(order)
    _require_status(order, frozenset({S.NEEDS_REVIEW}), "approve the payment")
    if (confirmation or "").strip() != order.order_id:
        raise StaffActionRefused(f"Type the order id {order.order_id} exactly to approve its payment.")
    note = staff_text_clean(note, field="reason", minimum=NOTE_MIN, maximum=NOTE_MAX)
    _staff_transition(
        order,
        actor,
        action="approve_payment",
        to_status=S.PAID,
        reason=OrderReason.STAFF,
        message=f"Staff approved the payment: {note}",
        details={"note": note, "previous_reason": order.reason},
        updates={"paid_at": order.paid_at or timezone.now()},
    )
    return f"{order.order_id}: payment approved; the tokens will be bought and delivered."


def order_staff_mark_refunded(*, order: AITokenOrder, actor, refund_reference: str, note: str = "") -> str:
    """Record that staff returned the customer's crypto (outside the store) — a final state.

    The reference (the refund transaction id) is required so the books can be checked. A live
    delivered key must be disabled first: refunding while the tokens can still be spent pays twice.
    """
    order = _fresh(order)
    if order.status in MARKABLE_STATUSES and order.refundable_marked_at is None:
        raise StaffActionRefused(
            f"{order.order_id}: cannot mark it refunded — the order is {S(order.status).label.lower()} and not marked "
            "refundable (use Mark refundable first)."
        )
    _require_status(order, REFUND_STATUSES | MARKABLE_STATUSES, "mark it refunded")
    reference = staff_text_clean(refund_reference, field="refund reference", minimum=4, maximum=REFERENCE_MAX)
    note = staff_text_clean(note, field="note", minimum=0, maximum=NOTE_MAX) if note else ""
    live_key = refund_key_refusal(order, usage_too=False)
    if live_key:  # a used key is fine here: staff refunded the unused part by hand
        raise StaffActionRefused(live_key.replace("disable it first", "disable it before refunding"))
    _staff_transition(
        order,
        actor,
        action="mark_refunded",
        to_status=S.REFUNDED,
        message=f"Staff marked the order refunded (ref {reference})",
        details={"refund_reference": reference, "note": note},
        updates={"refund_reference": reference},
    )
    return f"{order.order_id}: marked refunded (reference {reference})."


def order_staff_disable_key(*, order: AITokenOrder, actor) -> str:
    """Disable the delivered key at OpenRouter (abuse, chargeback): its remaining limit is frozen.

    The order stays delivered; `key_disabled` and the event record what happened and who did it.
    """
    order = _fresh(order)
    _require_status(order, frozenset({S.DELIVERED}), "disable the key")
    if not order.key_hash:
        raise StaffActionRefused(f"{order.order_id} holds no key.")
    if order.key_disabled:
        raise StaffActionRefused(f"{order.order_id}: the key is already disabled.")
    with _refused_if_remote_fails(
        OpenRouterError, order, actor, action="disable_key",
        message="Staff tried to disable the key: OpenRouter refused or was unreachable",
        refusal="OpenRouter did not disable the key ({error}); try again.",
    ):
        disabled = order_disable_key(order=order, actor=actor)
    if not disabled:
        raise StaffActionRefused(f"{order.order_id} holds no key.")
    # order_disable_key records the staff event (with the actor) itself.
    logger.info("order=%s staff_action=disable_key actor=%s", order.order_id, _who(actor))
    return f"{order.order_id}: key disabled at OpenRouter."


def order_disable_key(*, order: AITokenOrder, actor=None) -> bool:
    """Disable a delivered key at OpenRouter (abuse, refund): the customer can no longer spend it.

    Returns False when the order holds no key. OpenRouter errors propagate so staff see them.
    """
    if not order.key_hash:
        return False
    info = get_openrouter_client().update_key(order.key_hash, disabled=True)
    AITokenOrder.objects.filter(pk=order.pk).update(
        key_disabled=True,
        key_usage_usd=info.usage,
        key_limit_remaining_usd=info.limit_remaining,
        key_usage_checked_at=timezone.now(),
    )
    order.key_disabled = True
    customer_mail_enqueue(order_pk=order.pk, kind=KEY_DISABLED)
    order_record_event(
        order=order,
        source=EventSource.STAFF,
        message="Key disabled at OpenRouter",
        details={"key_hash": order.key_hash},
        actor=actor,
    )
    return True


def _staff_transition(
    order: AITokenOrder,
    actor,
    *,
    action: str,
    to_status: str,
    message: str,
    details: dict,
    updates: dict,
    reason: str | None = None,
) -> None:
    """Move the order on from the status it was checked in, as staff, unless a refund was started.

    The row lock and the refund check share the transition's transaction. Raises
    `StaffActionRefused` when the order moved meanwhile; `action` names the action in the event
    and the log.
    """
    with transaction.atomic():
        _refuse_if_refund_started(order)
        moved = order_transition(
            order=order, from_status=order.status, to_status=to_status, source=EventSource.STAFF, actor=actor,
            reason=reason, message=message, details={"action": action, **details}, updates=updates,
        )
    if not moved:
        raise _lost_race(order)
    logger.info("order=%s staff_action=%s actor=%s", order.order_id, action, _who(actor))


@contextmanager
def _refused_if_remote_fails(
    errors: type[KryptoExpressError] | type[OpenRouterError],
    order: AITokenOrder,
    actor,
    *,
    action: str,
    message: str,
    refusal: str,
) -> Iterator[None]:
    """Around a staff action's call to a remote service: when the service fails, the order's
    timeline says so and staff get `refusal` (its `{error}` is the error's type), never a 500."""
    try:
        yield
    except errors as exc:
        order_record_event(
            order=order, source=EventSource.STAFF, actor=actor, message=message,
            details={"action": action, "error": type(exc).__name__, "status_code": exc.status_code},
        )
        raise StaffActionRefused(f"{order.order_id}: {refusal.format(error=type(exc).__name__)}") from None


def _refuse_if_refund_started(order: AITokenOrder) -> None:
    """Inside the caller's transaction: lock the order row and refuse if a refund was sent or is in flight.

    The refund service claims its refund under the same row lock, so a staff approval, retry or
    hand-made refund can never interleave with a withdrawal (paying twice).
    """
    AITokenOrder.objects.select_for_update().filter(pk=order.pk).values_list("pk", flat=True).first()
    started = (RefundStatus.SENDING, RefundStatus.UNKNOWN, RefundStatus.SENT)
    if Refund.objects.filter(order_id=order.pk, status__in=started).exists():
        raise StaffActionRefused(
            f"{order.order_id}: a refund to the customer was sent or is in flight; nothing was changed."
        )


def _who(actor) -> str:
    return str(getattr(actor, "pk", None) or "-")


__all__ = [
    "ACTIONS",
    "StaffAction",
    "StaffActionRefused",
    "order_disable_key",
    "order_staff_approve_payment",
    "order_staff_disable_key",
    "order_staff_mark_refunded",
    "order_staff_recheck_payment",
    "order_staff_retry_fulfilment",
    "staff_actions_available",
    "staff_text_clean",
]
