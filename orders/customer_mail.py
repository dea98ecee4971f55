"""Mail to the customer for every state they care about — one table decides which.

`MAIL_AFTER_TRANSITION` maps a status change to the mail it sends; the transition effects
(`orders.transition_effects`) call `customer_mail_after_transition` once the change has committed
(a rolled-back change sends nothing) and sent by a Celery task that retries while the mail server
is down. Four mails have no status change of their own: `placed` (the payment link, sent once the
gateway payment exists), `key_disabled` (staff disabled a delivered key), `refund_offered` (staff
marked a delivered or expired order refundable: the customer is asked for an address) and
`refund_offer_withdrawn` (staff took that mark back before a refund started).

A refund offer can be made, withdrawn and made again, so those two mails are keyed by the offer
(its mark's time, the "occasion"): each offer gets its mail, and a withdrawal is mailed only when
the customer was told of that offer. An offer withdrawn before its mail went out sends neither.

Every mail links to the order page and never contains a key or secret; the "delayed" mail for a
failed fulfilment never names the internal cause (OpenRouter credits, configuration).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from orders.models import AITokenOrder, OrderStatus
from payments.addresses import NETWORK_LABELS, refund_network
from payments.currencies import format_amount, get_currency
from payments.explorers import explorer_tx_url

logger = logging.getLogger("orders.customer_mail")

# The Celery task that sends one mail (orders/tasks/mail.py), enqueued by name: tasks sit above this module.
SEND_CUSTOMER_MAIL_TASK = "orders.tasks.send_customer_mail"
S = OrderStatus

PLACED = "placed"
PAID = "paid"
DELIVERED = "delivered"
EXPIRED = "expired"
UNDER_REVIEW = "under_review"
DELAYED = "delayed"
REFUNDED = "refunded"
KEY_DISABLED = "key_disabled"
TOKENS_ADDED = "tokens_added"  # a delivered top-up: the same `delivered` change, its own words
REFUND_OFFERED = "refund_offered"
REFUND_OFFER_WITHDRAWN = "refund_offer_withdrawn"


@dataclass(frozen=True)
class CustomerMail:
    kind: str
    subject: str  # formatted with the order id

    @property
    def template(self) -> str:
        return f"emails/customer/{self.kind}"


MAILS: dict[str, CustomerMail] = {
    mail.kind: mail
    for mail in (
        CustomerMail(PLACED, "Your order {order_id}: how to pay"),
        CustomerMail(PAID, "Payment received — order {order_id}"),
        CustomerMail(DELIVERED, "Your tokens are ready — order {order_id}"),
        CustomerMail(EXPIRED, "Order {order_id} expired unpaid"),
        CustomerMail(UNDER_REVIEW, "Order {order_id} is being checked by our staff"),
        CustomerMail(DELAYED, "Order {order_id} is delayed — we're on it"),
        CustomerMail(REFUNDED, "Order {order_id} was refunded"),
        CustomerMail(KEY_DISABLED, "The API key of order {order_id} was disabled"),
        CustomerMail(TOKENS_ADDED, "Tokens added to your key — order {order_id}"),
        CustomerMail(REFUND_OFFERED, "A refund is offered for order {order_id}: where should we send it?"),
        CustomerMail(REFUND_OFFER_WITHDRAWN, "The refund offered for order {order_id} was withdrawn"),
    )
}

# (from, to) → mail; `None` as `from` means "from any status". Re-entering `paid` from
# `fulfilling` (a worker retry) or from `failed` (staff retry) is internal and sends nothing.
MAIL_AFTER_TRANSITION: dict[tuple[str | None, str], str] = {
    (S.PENDING, S.PAID): PAID,
    (S.NEEDS_REVIEW, S.PAID): PAID,
    (None, S.DELIVERED): DELIVERED,
    (None, S.EXPIRED): EXPIRED,
    (None, S.NEEDS_REVIEW): UNDER_REVIEW,
    (None, S.FAILED): DELAYED,
    (None, S.REFUNDED): REFUNDED,
}
# A mail goes out at most once per order and kind (and occasion), even if a task is delivered twice.
SENT_MARKER_SECONDS = 7 * 24 * 3600
# A refund offer's marker also tells a later withdrawal whether the customer heard of the offer.
OFFER_MARKER_SECONDS = 180 * 24 * 3600
SENT, SKIPPED = 1, "skipped"


def refund_offer_occasion(marked_at: datetime) -> str:
    """The key of one refund offer in its mails: the mark's time, in microseconds."""
    return str(round(marked_at.timestamp() * 1_000_000))


def customer_mail_for_transition(*, from_status: str, to_status: str) -> str | None:
    """Which mail (if any) the customer gets when their order moves `from_status` → `to_status`."""
    return MAIL_AFTER_TRANSITION.get((from_status, to_status)) or MAIL_AFTER_TRANSITION.get((None, to_status))


def customer_mail_after_transition(*, order_pk: int, from_status: str, to_status: str) -> None:
    """The hook `order_transition` calls inside its transaction: enqueue the mail on commit."""
    kind = customer_mail_for_transition(from_status=from_status, to_status=to_status)
    if kind:
        customer_mail_enqueue(order_pk=order_pk, kind=kind)


def customer_mail_enqueue(*, order_pk: int, kind: str, occasion: str = "") -> None:
    """Send mail `kind` through Celery once the current transaction commits (now, outside one).

    A broker that is down must not undo or hide a committed change: the failure is logged.
    """
    if kind not in MAILS:
        raise ValueError(f"unknown customer mail {kind!r}")
    def enqueue() -> None:
        try:
            current_app.tasks[SEND_CUSTOMER_MAIL_TASK].delay(order_pk, kind, occasion)
        except Exception as exc:  # the broker, not the change, failed
            logger.error("order_pk=%s customer mail %s not enqueued (%s)", order_pk, kind, type(exc).__name__)

    transaction.on_commit(enqueue)


def _marker(order_pk: int, kind: str, occasion: str) -> str:
    return f"customer-mail:{order_pk}:{kind}" + (f":{occasion}" if occasion else "")


def _refund_offer_mail_due(order: AITokenOrder, kind: str, occasion: str) -> bool:
    """Whether a refund-offer mail still says something true (see the module's docstring)."""
    if kind == REFUND_OFFERED:
        marked = order.refundable_marked_at
        return marked is not None and (not occasion or refund_offer_occasion(marked) == occasion)
    # A withdrawal: atomically stop the offer's own mail if it has not gone out, and then say nothing.
    offer = _marker(order.pk, REFUND_OFFERED, occasion)
    return not cache.add(offer, SKIPPED, OFFER_MARKER_SECONDS) and cache.get(offer) == SENT


def customer_mail_send(*, order: AITokenOrder, kind: str, occasion: str = "") -> bool:
    """Render and send one mail (text and HTML). False when it was already sent for this order,
    or when a refund-offer mail has been overtaken by the offer's withdrawal."""
    mail = MAILS[TOKENS_ADDED if kind == DELIVERED and order.top_up_of_id else kind]
    marker = _marker(order.pk, kind, occasion)
    if cache.get(marker):
        return False
    offer_mail = kind in (REFUND_OFFERED, REFUND_OFFER_WITHDRAWN)
    lifetime = OFFER_MARKER_SECONDS if offer_mail else SENT_MARKER_SECONDS
    if offer_mail and not _refund_offer_mail_due(order, kind, occasion):
        cache.set(marker, SKIPPED, lifetime)
        logger.info("order=%s customer_mail=%s skipped: the refund offer changed first", order.order_id, kind)
        return False
    context = customer_mail_context(order=order)
    message = EmailMultiAlternatives(
        subject=mail.subject.format(order_id=order.order_id),
        body=render_to_string(f"{mail.template}.txt", context),
        to=[order.user.email],
    )
    message.attach_alternative(render_to_string(f"{mail.template}.html", context), "text/html")
    message.send()
    cache.set(marker, SENT, lifetime)
    logger.info("order=%s customer_mail=%s sent", order.order_id, kind)
    return True


def customer_mail_context(*, order: AITokenOrder) -> dict:
    """What every mail template may use. Deliberately no key, key hash or internal reason."""
    currency = get_currency(order.crypto_type)
    detail = reverse("orders:detail", kwargs={"order_id": order.order_id})
    return {
        "order": order,
        "order_url": settings.SITE_URL + detail,
        "receipt_url": settings.SITE_URL + reverse("orders:receipt", kwargs={"order_id": order.order_id}),
        "site_url": settings.SITE_URL,
        "support_email": settings.SUPPORT_EMAIL,
        "currency_name": currency.display_name if currency else order.crypto_type,
        "currency_symbol": currency.symbol if currency else order.crypto_type,
        "refund_network": NETWORK_LABELS.get(refund_network(order.crypto_type) or "", order.crypto_type),
        **_refund_context(order),
    }


def _refund_context(order: AITokenOrder) -> dict:
    """A refund the store sent itself: where it went, what arrives, and each transaction with its explorer link."""
    refund = getattr(order, "refund", None) if order.status == S.REFUNDED else None
    if refund is None or not refund.address:
        return {}
    return {
        "refund": refund,
        "refund_receiving": format_amount(refund.receiving_amount) if refund.receiving_amount is not None else "",
        "refund_transactions": [
            {"tx_id": tx, "url": explorer_tx_url(crypto_type=order.crypto_type, tx_id=tx)} for tx in refund.tx_ids or []
        ],
    }


__all__ = [
    "MAILS",
    "MAIL_AFTER_TRANSITION",
    "customer_mail_after_transition",
    "customer_mail_enqueue",
    "customer_mail_for_transition",
    "customer_mail_send",
    "refund_offer_occasion",
]
