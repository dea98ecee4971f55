"""The customer's order page, its self-refreshing status fragment, and the order JSON API.

Owner only (staff may look); anyone else gets a 404, so order ids cannot be probed. Rendering
reads the database only — never the gateway: the poller and callbacks keep the order fresh.
"""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required
from django.db import DEFAULT_DB_ALIAS
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from orders.models import AITokenOrder, OrderStatus, Refund
from orders.order_epoch import StatusRows
from orders.services.refunds import ADDRESS_CHANGEABLE, refund_can_request, refund_public
from orders.views.order_page_context import (  # noqa: F401 - re-exported for callers of the old names
    FINAL_STATUSES,
    REASON_EXPLANATIONS,
    STATUS_EXPLANATIONS,
    STATUS_POLL_SECONDS,
    order_page_context,
    order_poll_seconds,
    order_rate_text,
    order_status_context,
    order_status_etag,
    plain_amount,
    poll_seconds_since,
)
from storefront.compiled_query import CompiledLookup

S = OrderStatus
# Order ids are "TS-" + token_urlsafe(12); anything else cannot be an order (orders.models.new_order_id).
PLAUSIBLE_ORDER_ID = re.compile(r"TS-[A-Za-z0-9_-]{8,46}")
# The status fragment reads only these columns (one cheap query per poll).
# Every field `order_status_context` and `_status.html` read must be here, or each render pays a
# deferred-field query per missing one (tests/orders/test_order_pages.py counts them).
FRAGMENT_FIELDS = ("pk", "order_id", "user", "status", "reason", "updated_at", "created_at", "paid_at",
                   "delivered_at", "key_disabled", "top_up_of", "refundable_marked_at")
# In the model's column order, as `Model.from_db` wants them.
_FRAGMENT_ATTNAMES = tuple(
    field.attname
    for field in AITokenOrder._meta.concrete_fields
    if field.primary_key or field.name in FRAGMENT_FIELDS
)
# Every open order page polls: the lookup is compiled to SQL once, not per poll (docs/WEB_SPEED.md).
_FRAGMENT_LOOKUP = CompiledLookup(
    lambda order_id: AITokenOrder.objects.filter(order_id=order_id).values(*_FRAGMENT_ATTNAMES),
    order_id=str,
)
# The rows polls read, kept while no order is written (orders/order_epoch.py).
_STATUS_ROWS = StatusRows()
# A client sends back the tags it holds; a long list is junk, not a cache.
_MAX_IF_NONE_MATCH_TAGS = 8


def order_id_or_404(order_id: str) -> str:
    """A NUL or other junk in the URL never reaches the database: it cannot be an order id."""
    if not PLAUSIBLE_ORDER_ID.fullmatch(order_id):
        raise Http404("No such order.")
    return order_id


def _visible_order(request: HttpRequest, order_id: str) -> AITokenOrder:
    """The order if this user may see it (owner or staff); 404 otherwise (no existence leak)."""
    if not request.user.is_authenticated:
        raise Http404("No such order.")
    orders = AITokenOrder.objects.filter(order_id=order_id_or_404(order_id))
    if not request.user.is_staff:
        orders = orders.filter(user_id=request.user.pk)
    return get_object_or_404(orders)


@never_cache  # the delivered key is in the page: no browser or proxy may keep a copy
@login_required
@require_GET
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    """The payment page while unpaid; the order's story (and delivery) afterwards."""
    order = _visible_order(request, order_id)
    return render(request, "orders/detail.html", order_page_context(order=order, viewer=request.user))


@require_GET
def order_status_fragment(request: HttpRequest, order_id: str) -> HttpResponse:
    """The status box alone, polled by htmx. Owner only; 304 when nothing changed.

    The ETag is a MAC of the owner and the state (`order_status_etag`), so a poll presenting the
    current one proves it was given to the owner: its 304 — the usual answer — is sent without
    reading the session, and from the row kept in memory while no order has been written
    (orders/order_epoch.py). Any other answer reads the row from the database (one query for the
    few columns the box needs) and checks the session first. When the status moved on from the
    one the page shows (`?shown=`), the answer is the page's whole main column, swapped in place.
    """
    order_id = order_id_or_404(order_id)
    shown = request.GET.get("shown", "")
    kept = _STATUS_ROWS.get(order_id)
    if kept is not None and not _moved_on(kept, shown) and _if_none_match(request, _row_etag(kept)):
        return _status_response(HttpResponseNotModified(), _row_etag(kept))
    row = _STATUS_ROWS.load(order_id, lambda: _FRAGMENT_LOOKUP.first(order_id=order_id))
    if row is None:
        raise Http404("No such order.")
    etag = _row_etag(row)
    moved_on = _moved_on(row, shown)
    if not moved_on and _if_none_match(request, etag):
        response = HttpResponseNotModified()  # no session read, no model built, nothing rendered
    elif not request.user.is_authenticated or request.user.pk != row["user_id"]:
        raise Http404("No such order.")
    elif moved_on:
        full = AITokenOrder.objects.get(pk=row["id"])
        response = render(request, "orders/_order_main.html", order_page_context(order=full, viewer=request.user))
        response["HX-Retarget"] = "#order-main"
        response["HX-Reswap"] = "outerHTML"
    else:
        order = AITokenOrder.from_db(DEFAULT_DB_ALIAS, _FRAGMENT_ATTNAMES, [row[name] for name in _FRAGMENT_ATTNAMES])
        response = render(request, "orders/_status.html", order_status_context(order=order, is_owner=True))
    return _status_response(response, etag)


def _moved_on(row: dict, shown: str) -> bool:
    return bool(shown) and shown != row["status"]


def _row_etag(row: dict) -> str:
    status, updated_at = row["status"], row["updated_at"]
    poll_seconds = None if status in FINAL_STATUSES else poll_seconds_since(updated_at)
    owner_id = row["user_id"]
    return order_status_etag(
        order_id=row["order_id"], user_id=owner_id, status=status, updated_at=updated_at, poll_seconds=poll_seconds
    )


def _status_response(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    # The browser may keep the fragment but must ask every time (it then gets the cheap 304).
    response["Cache-Control"] = "private, no-cache"
    response["Vary"] = "Cookie, HX-Request"
    return response


def _if_none_match(request: HttpRequest, etag: str) -> bool:
    """Whether the client holds `etag`, compared in constant time (it stands in for the session)."""
    header = request.META.get("HTTP_IF_NONE_MATCH", "")  # request.headers would copy every header
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",", _MAX_IF_NONE_MATCH_TAGS)]
    return any(constant_time_compare(tag, etag) for tag in tags[:_MAX_IF_NONE_MATCH_TAGS])


@login_required
@require_GET
def order_receipt(request: HttpRequest, order_id: str) -> HttpResponse:
    """A printable receipt for a paid order. Owner only: anyone else (staff too) gets a 404."""
    order = get_object_or_404(
        AITokenOrder, order_id=order_id_or_404(order_id), user_id=request.user.pk, paid_at__isnull=False
    )
    context = order_page_context(order=order, viewer=request.user)
    context.pop("delivery", None)  # a receipt never carries the key
    context["rate_text"] = order_rate_text(order=order)
    return render(request, "orders/receipt.html", context)


@require_GET
def api_order_detail(request: HttpRequest, order_id: str) -> JsonResponse:
    """The order as JSON for its owner: money as strings, never a secret, never an internal note.

    The timeline lists status changes in the customer's words; the events' own messages (worker
    errors, staff notes) and internal reason codes stay in the admin.
    """
    order = _visible_order(request, order_id)
    events = [
        {
            "at": event.created_at.isoformat(),
            "from_status": event.from_status,
            "to_status": event.to_status,
            "message": OrderStatus(event.to_status).label,
        }
        for event in order.events.exclude(to_status="").only("created_at", "from_status", "to_status")
    ]
    return JsonResponse(
        {
            "order_id": order.order_id,
            "status": order.status,
            "reason": order.reason if order.reason in REASON_EXPLANATIONS else "",
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
            **_refund_fields(order),
            **_top_up_fields(order),
        }
    )


def _refund_fields(order: AITokenOrder) -> dict:
    """`refund_offered` (the order page asks for a refund address) and `refund` (null when none)."""
    refund = Refund.objects.filter(order_id=order.pk).first()
    offered = refund_can_request(order=order)
    if refund is not None and not offered and refund.status in ADDRESS_CHANGEABLE:
        refund = None  # an address for an offer that no longer stands
    return {"refund_offered": offered, "refund": refund_public(refund)}


def _top_up_fields(order: AITokenOrder) -> dict:
    """`top_up_of` (the key's own order id; null for an ordinary order) and, for a key's order, its limit."""
    top_up_of = None
    if order.top_up_of_id is not None:
        top_up_of = AITokenOrder.objects.filter(pk=order.top_up_of_id).values_list("order_id", flat=True).first()
    fields = {"top_up_of": top_up_of}
    if order.top_up_of_id is None and order.key_hash:
        fields["key_limit_usd"] = str(order.confirmed_key_limit)
    return fields
