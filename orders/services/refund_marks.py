"""Staff offer a refund on an order its status does not make refundable: "Mark refundable".

A failed or under-review order is refundable by its status (`orders.services.refunds`). A delivered
order (a customer complaint) or an expired one (money that arrived after all) is refundable only
once staff mark it, with a reason kept for the admin — never shown to the customer (it sits in the
event's details, not its message, which the customer's order API lists). The mark is what lets the
order leave `delivered` / `expired` for `refunded`: the lifecycle table lists those edges in
`NEEDS_REFUNDABLE_MARK` and `order_transition` adds the mark to its UPDATE's condition, so no path
can refund an unmarked order.

Marking changes no status. It is a conditional UPDATE under the order's row lock (the same lock the
refund claim and the staff status actions take), so a mark racing a status change or a refund
either sees the new state and refuses or is seen by it. Once marked, the order page asks the
customer for an address and the customer gets a "refund offered" mail (once per offer). The mark
can be withdrawn until a refund starts, and the customer is then told the offer is withdrawn; the
refund's own checks (live or used key, funds already withdrawn) still apply when staff send it.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from orders.customer_mail import REFUND_OFFER_WITHDRAWN, REFUND_OFFERED, customer_mail_enqueue, refund_offer_occasion
from orders.models import AITokenOrder, EventSource, OrderStatus, Refund, RefundStatus
from orders.services.refunds import MARKABLE_STATUSES, REFUNDABLE_STATUSES, TOP_UP_IN_FLIGHT
from orders.services.staff_actions import NOTE_MAX, NOTE_MIN, StaffActionRefused, staff_text_clean
from orders.services.transitions import order_record_event
from payments.addresses import refund_network
from payments.client import KryptoExpressClient, KryptoExpressError, get_kryptoexpress_client

logger = logging.getLogger("orders.staff")

S = OrderStatus
STARTED = (RefundStatus.SENDING, RefundStatus.UNKNOWN, RefundStatus.SENT)


def _status_refusal(order: AITokenOrder) -> str:
    """Why this order's status cannot be marked ('' when it can)."""
    label = S(order.status).label.lower()
    if order.status == S.REFUNDED:
        return f"{order.order_id} is already refunded."
    if order.status in REFUNDABLE_STATUSES:
        return f"{order.order_id} is {label}: it is refundable already, no mark needed."
    if order.status not in MARKABLE_STATUSES:
        return f"{order.order_id} is {label}: its payment or fulfilment is still in progress; only delivered or " \
            "expired orders can be marked refundable."
    return ""


def refund_mark_refusal(order: AITokenOrder) -> str:
    """Everything checkable without the gateway ('' when the order may be marked). Database only."""
    problem = _status_refusal(order)
    if problem:
        return problem
    if order.refundable_marked_at is not None:
        return f"{order.order_id} is already marked refundable."
    if not order.payment_id or not order.payment_id.isdigit() or not order.payment_hash:
        return f"{order.order_id} has no gateway payment, so there is nothing to refund."
    if refund_network(order.crypto_type) is None:
        return f"{order.order_id} was paid in {order.crypto_type}, which cannot be refunded to an address."
    if order.top_up_of_id is None and order.key_hash and order.top_ups.filter(status__in=TOP_UP_IN_FLIGHT).exists():
        return f"{order.order_id}: a top-up of its key is being applied; wait until it is delivered or failed."
    return ""


def order_staff_mark_refundable(
    *, order: AITokenOrder, actor, note: str, client: KryptoExpressClient | None = None
) -> str:
    """Offer the customer a refund of a delivered or expired order (the order page asks for an address).

    An expired order normally received nothing: the gateway is asked whether the payment was paid,
    and an unpaid one is refused (nothing to refund). A delivered order was paid by definition.
    """
    order.refresh_from_db()
    note = staff_text_clean(note, field="reason", minimum=NOTE_MIN, maximum=NOTE_MAX)
    problem = refund_mark_refusal(order)
    if problem:
        raise StaffActionRefused(problem)
    gateway_says = None
    if order.paid_at is None:
        gateway_says = _gateway_paid(order, client or get_kryptoexpress_client())
    now = timezone.now()
    with transaction.atomic():
        locked = AITokenOrder.objects.select_for_update().get(pk=order.pk)
        problem = refund_mark_refusal(locked)
        if problem:
            raise StaffActionRefused(f"{problem} (it changed meanwhile; nothing was done)")
        marked = AITokenOrder.objects.filter(
            pk=order.pk, status=locked.status, refundable_marked_at__isnull=True
        ).update(
            refundable_marked_at=now, refundable_marked_by=actor if getattr(actor, "pk", None) else None,
            refundable_reason=note, updated_at=now,
        )
        if marked != 1:  # cannot happen under the lock; never mark twice
            raise StaffActionRefused(f"{order.order_id} changed meanwhile; nothing was done.")
        order_record_event(
            order=locked, source=EventSource.STAFF, actor=actor, message="Staff marked the order refundable",
            details={"action": "mark_refundable", "note": note, "status": locked.status,
                     "gateway_is_paid": gateway_says},
        )
        customer_mail_enqueue(order_pk=order.pk, kind=REFUND_OFFERED, occasion=refund_offer_occasion(now))
    order.refresh_from_db()
    logger.info("order=%s staff_action=mark_refundable actor=%s", order.order_id, getattr(actor, "pk", "-"))
    follow_up = ""
    if order.key_hash and not order.key_disabled:
        follow_up = " Its key is still live: disable it before sending the refund."
    return (
        f"{order.order_id}: marked refundable — the customer is asked for a refund address and was emailed."
        f"{follow_up}"
    )


def order_staff_unmark_refundable(*, order: AITokenOrder, actor, note: str) -> str:
    """Withdraw the refund offer, as long as no refund has started (the customer's address is kept)."""
    order.refresh_from_db()
    note = staff_text_clean(note, field="reason", minimum=NOTE_MIN, maximum=NOTE_MAX)
    with transaction.atomic():
        locked = AITokenOrder.objects.select_for_update().get(pk=order.pk)
        if locked.status == S.REFUNDED or Refund.objects.filter(order_id=order.pk, status__in=STARTED).exists():
            raise StaffActionRefused(
                f"{order.order_id}: a refund to the customer was sent or is in flight; the mark stays."
            )
        if locked.refundable_marked_at is None or locked.status not in MARKABLE_STATUSES:
            raise StaffActionRefused(f"{order.order_id} is not marked refundable; nothing was done.")
        AITokenOrder.objects.filter(pk=order.pk, refundable_marked_at__isnull=False).update(
            refundable_marked_at=None, refundable_marked_by=None, refundable_reason="", updated_at=timezone.now()
        )
        order_record_event(
            order=locked, source=EventSource.STAFF, actor=actor, message="Staff withdrew the refund offer",
            details={"action": "unmark_refundable", "note": note, "previous_reason": locked.refundable_reason},
        )
        customer_mail_enqueue(
            order_pk=order.pk, kind=REFUND_OFFER_WITHDRAWN, occasion=refund_offer_occasion(locked.refundable_marked_at)
        )
    order.refresh_from_db()
    logger.info("order=%s staff_action=unmark_refundable actor=%s", order.order_id, getattr(actor, "pk", "-"))
    return f"{order.order_id}: the refund offer was withdrawn and the customer is told by email."


def _gateway_paid(order: AITokenOrder, client: KryptoExpressClient) -> bool:
    """Ask the gateway whether this payment was paid (an expired order); refuse when not or unknown."""
    try:
        record = client.get_payment(order.payment_hash or "")
    except KryptoExpressError as exc:
        raise StaffActionRefused(
            f"{order.order_id}: the gateway could not be read ({type(exc).__name__}); nothing was done."
        ) from None
    if not record.is_paid:
        raise StaffActionRefused(
            f"{order.order_id}: the gateway shows no payment received for this order, so there is nothing to refund."
        )
    return True


__all__ = ["order_staff_mark_refundable", "order_staff_unmark_refundable", "refund_mark_refusal"]
