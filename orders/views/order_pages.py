"""The customer's order page, its self-refreshing status fragment, and the order JSON API.

Owner only (staff may look); anyone else gets a 404, so order ids cannot be probed. Rendering
reads the database only — never the gateway: the poller and callbacks keep the order fresh.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

import segno
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from orders.models import AITokenOrder, OrderReason, OrderStatus
from orders.services.delivery import delivery_context
from orders.services.top_up import STATUS_EXPLANATIONS as TOP_UP_EXPLANATIONS
from payments.currencies import format_amount, get_currency, payment_uri

S = OrderStatus
# Statuses in which nothing more happens on its own: the page stops polling.
FINAL_STATUSES = frozenset({S.DELIVERED, S.EXPIRED, S.FAILED, S.NEEDS_REVIEW, S.REFUNDED})
STATUS_POLL_SECONDS = 5

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
        "Your payment arrived, but we could not buy your tokens automatically. Our staff have been alerted and "
        "will either complete your order or refund you. You don't need to do anything."
    ),
    S.NEEDS_REVIEW: (
        "We received a payment that a person has to check before we can continue. Our staff have been "
        "alerted and will complete your order or refund you. You don't need to do anything."
    ),
    S.REFUNDED: "This order was refunded. Nothing more will happen to it.",
}
REASON_EXPLANATIONS: dict[str, str] = {
    OrderReason.WRONG_AMOUNT: "The amount that arrived is not the amount this order asked for.",
    OrderReason.WRONG_CURRENCY: "The payment arrived in a different currency than this order asked for.",
    OrderReason.WRONG_TYPE: "The payment was not a regular payment for this order.",
    OrderReason.WRONG_HASH: "The payment did not match this order's payment reference.",
    OrderReason.PAID_LATE: "The payment arrived after the payment window had closed.",
}


def _visible_order(request: HttpRequest, order_id: str) -> AITokenOrder:
    """The order if this user may see it (owner or staff); 404 otherwise (no existence leak)."""
    if not request.user.is_authenticated:
        raise Http404("No such order.")
    orders = AITokenOrder.objects.filter(order_id=order_id)
    if not request.user.is_staff:
        orders = orders.filter(user_id=request.user.pk)
    return get_object_or_404(orders)


@never_cache  # the delivered key is in the page: no browser or proxy may keep a copy
@login_required
@require_GET
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    """The payment page while unpaid; the order's story (and delivery) afterwards."""
    order = _visible_order(request, order_id)
    context = _status_context(order)
    context["show_payment"] = order.status == S.PENDING and bool(order.payment_hash)
    if context["show_payment"]:
        context.update(_payment_context(order))
    if order.status == S.EXPIRED:
        context["new_quote_url"] = reverse("orders:new") + "?" + urlencode(
            {"model": order.model_id, "tokens": order.token_count}
        )
    # The delivered key is for its owner's eyes only — staff looking at the page don't get it.
    context["show_delivery"] = order.status == S.DELIVERED and order.user_id == request.user.pk
    if context["show_delivery"]:
        context.update(delivery_context(order))
    return render(request, "orders/detail.html", context)


@login_required
@require_GET
def order_status_fragment(request: HttpRequest, order_id: str) -> HttpResponse:
    """The status box alone, for htmx polling. If the status moved on, reload the whole page."""
    order = _visible_order(request, order_id)
    shown = request.GET.get("shown", "")
    response = render(request, "orders/_status.html", _status_context(order))
    if getattr(request, "htmx", False) and shown and shown != order.status:
        response["HX-Refresh"] = "true"
    return response


@require_GET
def api_order_detail(request: HttpRequest, order_id: str) -> JsonResponse:
    """The order as JSON for its owner: money as strings, never a secret."""
    order = _visible_order(request, order_id)
    events = [
        {
            "at": event.created_at.isoformat(),
            "source": event.source,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "message": event.message,
        }
        for event in order.events.only("created_at", "source", "from_status", "to_status", "message")
    ]
    return JsonResponse(
        {
            "order_id": order.order_id,
            "status": order.status,
            "reason": order.reason,
            "model_id": order.model_id,
            "token_count": order.token_count,
            "base_usd_cost": str(order.base_usd_cost),
            "markup_amount": str(order.markup_amount),
            "total_usd_cost": str(order.total_usd_cost),
            "crypto_type": order.crypto_type,
            "crypto_amount": plain_amount(order.crypto_amount),
            "payment_hash": order.payment_hash,
            "address": order.address,
            "expires_at": order.expires_at.isoformat() if order.expires_at else None,
            "paid_at": order.paid_at.isoformat() if order.paid_at else None,
            "created_at": order.created_at.isoformat(),
            "events": events,
            **_top_up_fields(order),
        }
    )


def _top_up_fields(order: AITokenOrder) -> dict:
    """`top_up_of` (the key's own order id; null for an ordinary order) and, for a key's order, its limit."""
    top_up_of = None
    if order.top_up_of_id is not None:
        top_up_of = AITokenOrder.objects.filter(pk=order.top_up_of_id).values_list("order_id", flat=True).first()
    fields = {"top_up_of": top_up_of}
    if order.top_up_of_id is None and order.key_hash:
        fields["key_limit_usd"] = str(order.confirmed_key_limit)
    return fields


def plain_amount(amount: Decimal | None) -> str | None:
    """The exact amount as plain digits (no exponent, no padding zeros): what a wallet expects."""
    return None if amount is None else format_amount(amount)


def _status_context(order: AITokenOrder) -> dict:
    is_final = order.status in FINAL_STATUSES
    return {
        "order": order,
        "is_final": is_final,
        "explanation": (order.top_up_of_id and TOP_UP_EXPLANATIONS.get(order.status))
        or STATUS_EXPLANATIONS.get(order.status, ""),
        "reason_explanation": REASON_EXPLANATIONS.get(order.reason, ""),
        "status_url": reverse("orders:status_fragment", kwargs={"order_id": order.order_id})
        + "?"
        + urlencode({"shown": order.status}),
        "detail_url": reverse("orders:detail", kwargs={"order_id": order.order_id}),
        "poll_seconds": STATUS_POLL_SECONDS,
    }


def _payment_context(order: AITokenOrder) -> dict:
    currency = get_currency(order.crypto_type)
    # BIP21 (`bitcoin:<address>?amount=<n>`) where the coin has a URI scheme, else the bare address.
    uri = payment_uri(code=order.crypto_type, address=order.address, amount=order.crypto_amount)
    qr_svg = segno.make(uri, error="m").svg_inline(
        scale=4, border=2, omitsize=True, light="#fff", title="Payment QR code"
    )
    return {
        "currency": currency,
        "currency_name": currency.name if currency else order.crypto_type,
        "network": currency.network if currency else order.crypto_type,
        "amount_text": plain_amount(order.crypto_amount),
        "payment_uri": uri,
        "qr_svg": mark_safe(qr_svg),  # noqa: S308 - segno's own SVG markup; the URI inside is escaped by segno
        "expires_iso": order.expires_at.isoformat(timespec="seconds") if order.expires_at else "",
        "sandbox_control_url": _sandbox_control_url(order),
    }


def _sandbox_control_url(order: AITokenOrder) -> str:
    """The gateway sandbox's pay/expire page for this payment — only ever in sandbox mode.

    One helper (the sandbox's own) decides: no link when the sandbox or its route is off.
    """
    from payments.sandbox.links import sandbox_control_url

    return sandbox_control_url(order.payment_hash or "") or ""
