"""What the customer's order page shows, built in one place (`order_page_context`).

The page and its status fragment both render from this context, so the fragment can swap the
page's main column in place when the status moves on. Sections added later (refunds, top-ups)
add their keys here and one `{% include %}` line to `orders/_order_main.html`.

Customers read explanations written for them; internal reasons (OpenRouter credits, configuration,
business-rule checks) are shown to staff only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.safestring import mark_safe

from orders.models import AITokenOrder, OrderReason, OrderStatus
from orders.services.top_up import STATUS_EXPLANATIONS as TOP_UP_EXPLANATIONS
from orders.views.delivery_context import delivery_context
from payments.currencies import format_amount, format_quoted, get_currency, payment_uri
from payments.dev_hooks import payment_control_url

S = OrderStatus
# Statuses in which nothing more happens on its own: the page stops polling.
FINAL_STATUSES = frozenset({S.DELIVERED, S.EXPIRED, S.FAILED, S.NEEDS_REVIEW, S.REFUNDED})
# Statuses that need a person: the page shows what happens next and how to reach support.
PROBLEM_STATUSES = frozenset({S.EXPIRED, S.FAILED, S.NEEDS_REVIEW, S.REFUNDED})
STATUS_POLL_SECONDS = 5
# Polling backs off the longer nothing happens: (seconds since the last change, poll delay).
POLL_BACKOFF: tuple[tuple[int, int], ...] = ((60, 3), (300, 5), (900, 10), (3600, 20))
POLL_MAX_SECONDS = 30
STATUS_ETAG_SALT = "orders.status-fragment-etag"

CUSTOMER_STATUS_LABELS: dict[str, str] = {
    S.PENDING: "Awaiting payment",
    S.PAID: "Payment received",
    S.FULFILLING: "Buying your tokens",
    S.DELIVERED: "Delivered",
    S.EXPIRED: "Expired",
    S.FAILED: "Delayed",
    S.NEEDS_REVIEW: "Under review",
    S.REFUNDED: "Refunded",
}
STATUS_EXPLANATIONS: dict[str, str] = {
    S.PENDING: (
        "We're waiting for your payment. Send exactly the amount below to the address below before the "
        "timer runs out. This page notices the payment by itself."
    ),
    S.PAID: "Your payment has arrived. We're buying your tokens now — this takes a few seconds.",
    S.FULFILLING: "Your payment has arrived and we're creating your OpenRouter API key right now.",
    S.DELIVERED: "All done: your OpenRouter API key is ready below.",
    S.EXPIRED: (
        "The payment window closed before a payment arrived, so this order expired and nothing was charged. "
        "Prices and rates move, so get a new quote to order again. If you did send a payment, we keep watching "
        "for it and our staff will contact you."
    ),
    S.FAILED: (
        "Your payment arrived, but we could not finish setting up your tokens automatically. Your money is safe: "
        "our staff have been alerted and will either complete your order or refund you, usually within one "
        "business day. If a refund is the answer, the order page asks for your wallet address; "
        "we'll email you either way."
    ),
    S.NEEDS_REVIEW: (
        "We received a payment that a person has to check before we can continue. Our staff have been "
        "alerted and will complete your order or refund you, usually within one business day. "
        "If a refund is the answer, the order page asks for your wallet address; we'll email you either way."
    ),
    S.REFUNDED: "This order was refunded. Nothing more will happen to it.",
}
# A delivered or expired order staff marked refundable (orders/services/refund_marks.py): the refund
# section below asks for an address. The staff member's reason is never shown.
REFUND_OFFERED_EXPLANATIONS: dict[str, str] = {
    S.DELIVERED: (
        "We are offering you a refund for this order. Give us an address of your own wallet in the Refund "
        "section below and our staff will send your payment back; once it is sent, this order's API key no "
        "longer works."
    ),
    S.EXPIRED: (
        "The payment window closed, but a payment for this order reached us. We are offering to send it back: "
        "give us an address of your own wallet in the Refund section below."
    ),
}
# Reasons a customer may read (about their own payment). Any other reason is internal: staff only.
REASON_EXPLANATIONS: dict[str, str] = {
    OrderReason.WRONG_AMOUNT: "The amount that arrived is not the amount this order asked for.",
    OrderReason.WRONG_CURRENCY: "The payment arrived in a different currency than this order asked for.",
    OrderReason.WRONG_TYPE: "The payment was not a regular payment for this order.",
    OrderReason.WRONG_HASH: "The payment did not match this order's payment reference.",
    OrderReason.PAID_LATE: "The payment arrived after the payment window had closed.",
}


@dataclass(frozen=True)
class TimelineStep:
    label: str
    at: datetime | None
    state: str  # "done", "current", "todo" or "problem"


def order_page_context(*, order: AITokenOrder, viewer) -> dict:
    """Everything `orders/detail.html` and its includes need; reads the database only.

    `viewer` is the signed-in user: the owner gets the key and live polling, staff see the
    internal reason but never the key.
    """
    is_owner = order.user_id == viewer.pk
    context = order_status_context(order=order, is_owner=is_owner, is_staff=viewer.is_staff)
    context["show_payment"] = order.status == S.PENDING and bool(order.payment_hash)
    if context["show_payment"]:
        context.update(order_payment_context(order=order))
    if order.status == S.EXPIRED:
        context["new_quote_url"] = reverse("orders:new") + "?" + urlencode(
            {"model": order.model_id, "tokens": order.token_count}
        )
    # The delivered key is for its owner's eyes only — staff looking at the page don't get it.
    context["show_delivery"] = order.status == S.DELIVERED and is_owner
    if context["show_delivery"]:
        context.update(delivery_context(order))
    context["currency_label"] = _currency_label(order.crypto_type)
    context["crypto_amount_text"] = (
        format_quoted(order.crypto_amount, order.crypto_type) if order.crypto_amount is not None else ""
    )
    context["receipt_url"] = (
        reverse("orders:receipt", kwargs={"order_id": order.order_id}) if order.paid_at and is_owner else ""
    )
    return context


def order_status_context(*, order: AITokenOrder, is_owner: bool, is_staff: bool = False) -> dict:
    """The status box: label, explanation, timeline, support, and how the page keeps itself fresh."""
    is_final = order.status in FINAL_STATUSES
    poll = is_owner and not is_final
    return {
        "order": order,
        "is_final": is_final,
        "is_problem": order.status in PROBLEM_STATUSES or (order.status == S.DELIVERED and order.key_disabled),
        "status_label": CUSTOMER_STATUS_LABELS.get(order.status, order.status),
        "explanation": (order.refundable_marked_at and REFUND_OFFERED_EXPLANATIONS.get(order.status))
        or (order.top_up_of_id and TOP_UP_EXPLANATIONS.get(order.status))
        or STATUS_EXPLANATIONS.get(order.status, ""),
        "reason_explanation": REASON_EXPLANATIONS.get(order.reason, ""),
        "staff_reason": order.get_reason_display() if is_staff and order.reason else "",
        "timeline": order_timeline(order=order),
        "support_email": settings.SUPPORT_EMAIL,
        "poll": poll,
        "poll_seconds": order_poll_seconds(order=order) if poll else None,
        "status_url": reverse("orders:status_fragment", kwargs={"order_id": order.order_id})
        + "?"
        + urlencode({"shown": order.status}),
        "detail_url": reverse("orders:detail", kwargs={"order_id": order.order_id}),
    }


def order_timeline(*, order: AITokenOrder) -> list[TimelineStep]:
    """placed → payment received → tokens delivered, with times; a problem state shows where it stopped."""
    status = order.status
    placed = TimelineStep("Order placed", order.created_at, "done")
    paid_done = order.paid_at is not None
    paid = TimelineStep("Payment received", order.paid_at, "done" if paid_done else "todo")
    delivered = TimelineStep("Tokens delivered", order.delivered_at, "done" if order.delivered_at else "todo")
    if status == S.PENDING:
        paid = TimelineStep("Payment received", None, "current")
    elif status in (S.PAID, S.FULFILLING):
        delivered = TimelineStep("Tokens delivered", None, "current")
    problem = {
        S.EXPIRED: "Expired unpaid",
        S.NEEDS_REVIEW: "Under review",
        S.FAILED: "Delayed — staff are on it",
        S.REFUNDED: "Refunded",
    }.get(status)
    if problem is None:
        return [placed, paid, delivered]
    stop = TimelineStep(problem, order.updated_at, "problem")
    if status == S.EXPIRED:
        return [placed, stop]
    if status == S.NEEDS_REVIEW and not paid_done:
        return [placed, stop, delivered]
    if status == S.REFUNDED:
        return [placed, *([paid] if paid_done else []), stop]
    return [placed, paid, stop, delivered]


def order_poll_seconds(*, order: AITokenOrder, now: datetime | None = None) -> int:
    """How long the page waits before asking again: quick right after a change, slower later."""
    return poll_seconds_since(order.updated_at, now=now)


def poll_seconds_since(updated_at: datetime, *, now: datetime | None = None) -> int:
    """`order_poll_seconds` from the last change alone (the status poll has no order object)."""
    elapsed = ((now or timezone.now()) - updated_at).total_seconds()
    for limit, seconds in POLL_BACKOFF:
        if elapsed < limit:
            return seconds
    return POLL_MAX_SECONDS


def order_status_etag(
    *, order_id: str, user_id: int, status: str, updated_at: datetime, poll_seconds: int | None
) -> str:
    """Changes whenever the status box would render differently (status, last change, poll delay).

    It is a MAC of the owner and the state, keyed by SECRET_KEY: only the owner was ever sent it,
    so a poll that presents the current one may have its 304 without the session being read
    (docs/WEB_SPEED.md, "The order status poll").
    """
    raw = f"{order_id}|{user_id}|{status}|{updated_at.isoformat()}|{poll_seconds}"
    return '"' + salted_hmac(STATUS_ETAG_SALT, raw, algorithm="sha256").hexdigest()[:32] + '"'


def order_payment_context(*, order: AITokenOrder) -> dict:
    """The payment box: exact amount, address, wallet link (BIP21), QR, rate, countdown."""
    currency = get_currency(order.crypto_type)
    # BIP21 (`bitcoin:<address>?amount=<n>&label=…`) where the coin has a URI scheme, else the bare address.
    uri = payment_uri(
        code=order.crypto_type, address=order.address, amount=order.crypto_amount,
        label=f"Token Store order {order.order_id}",
    )
    qr_svg = segno.make(uri, error="m").svg_inline(
        scale=4, border=2, omitsize=True, light="#fff", title="Payment QR code"
    )
    amount_text = format_quoted(order.crypto_amount, order.crypto_type) if order.crypto_amount else ""
    return {
        "currency": currency,
        "currency_name": _currency_label(order.crypto_type),
        "currency_symbol": currency.symbol if currency else order.crypto_type,
        # The network in words customers recognise ("USDT on TRON (TRC-20)", "Bitcoin").
        "network": currency.display_name if currency and currency.label else (
            currency.network if currency else order.crypto_type
        ),
        "amount_text": amount_text,
        "payment_uri": uri,
        "wallet_uri": uri if currency and currency.uri_scheme else "",
        "is_tron_token": order.crypto_type.endswith("_TRC20"),
        "qr_svg": mark_safe(qr_svg),  # noqa: S308 - segno's own SVG markup; the URI inside is escaped by segno
        "expires_iso": order.expires_at.isoformat(timespec="seconds") if order.expires_at else "",
        "rate_text": order_rate_text(order=order),
        "sandbox_control_url": _sandbox_control_url(order),
    }


def order_rate_text(*, order: AITokenOrder) -> str:
    """"1 BTC = $67,312.40": the rate the gateway fixed when the payment was created."""
    currency = get_currency(order.crypto_type)
    if not order.crypto_amount or currency is None:
        return ""
    rate = (order.total_usd_cost / order.crypto_amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"1 {currency.symbol} = ${rate:,}"


def plain_amount(amount: Decimal | None) -> str | None:
    """The exact amount as plain digits (no exponent, no padding zeros): what a wallet expects."""
    return None if amount is None else format_amount(amount)


def _currency_label(code: str) -> str:
    currency = get_currency(code)
    return currency.display_name if currency else code


def _sandbox_control_url(order: AITokenOrder) -> str:
    """The gateway sandbox's pay/expire page for this payment — only ever in sandbox mode.

    The sandbox app registers the link builder when it is installed; otherwise there is none.
    """
    return payment_control_url(order.payment_hash or "") or ""
