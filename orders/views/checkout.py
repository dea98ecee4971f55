"""Checkout: review a quote, place the order; and the customer's list of orders.

Views only parse input and call one service (`checkout_preview`, `order_place`); every price
shown or charged comes from the server.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import is_ratelimited

from orders.forms import CheckoutForm, QuoteRequestForm
from orders.models import AITokenOrder
from orders.services.placing import (
    CheckoutPreview,
    CheckoutUnavailable,
    OrderRejected,
    QuoteChanged,
    checkout_preview,
    order_place,
)
from orders.services.top_up import top_up_carry
from storefront.rate_limited import rate_limited

ORDERS_PER_PAGE = 20
LIST_FIELDS = (
    "order_id", "created_at", "model_id", "token_count", "total_usd_cost", "crypto_type", "crypto_amount", "status",
    "reason",
)


@login_required
@require_GET
def order_new(request: HttpRequest) -> HttpResponse:
    """Review page: the server's quote, the crypto choice, and a fresh idempotency key."""
    form = QuoteRequestForm(request.GET)
    if not form.is_valid():
        return _render_review(request, preview=None, form_errors=_error_list(form), status=400)
    top_up = top_up_carry(user=request.user, top_up_of=form.cleaned_data["top_up_of"])
    if "top_up_error" in top_up:
        return _render_review(request, preview=None, form_errors=[top_up["top_up_error"]], status=400)
    preview = checkout_preview(model_id=form.cleaned_data["model"], token_count=form.cleaned_data["tokens"])
    return _render_review(request, preview=preview, extra=top_up)


@login_required
@require_http_methods(["GET", "POST"])
def order_list_or_create(request: HttpRequest) -> HttpResponse:
    """`GET /orders/`: the customer's orders; `POST /orders/`: place an order."""
    if request.method == "POST":
        return _order_create(request)
    orders = AITokenOrder.objects.filter(user=request.user).only(*LIST_FIELDS).order_by("-created_at", "-pk")
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "orders/list.html", {"page": page, "orders": page.object_list})


def _order_create(request: HttpRequest) -> HttpResponse:
    if is_ratelimited(
        request, group="orders:create", key="user", rate=settings.ORDER_RATE_LIMIT, method="POST", increment=True
    ):
        return rate_limited(request)
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        for error in _error_list(form):
            messages.error(request, error)
        preview = None
        if "model" in form.cleaned_data and form.cleaned_data.get("tokens"):
            preview = checkout_preview(model_id=form.cleaned_data["model"], token_count=form.cleaned_data["tokens"])
        return _render_review(request, preview=preview, form=form, status=400)
    data = form.cleaned_data
    try:
        order = order_place(
            user=request.user,
            model_id=data["model"],
            token_count=data["tokens"],
            crypto_type=data["crypto"],
            seen_total=data["seen_total"],
            idempotency_key=data["idempotency_key"],
            top_up_of=data["top_up_of"] or None,
        )
    except QuoteChanged as changed:
        preview = checkout_preview(model_id=data["model"], token_count=data["tokens"])
        return _render_review(
            request, preview=preview, form=form, template="orders/confirm.html",
            extra={"previous_total": data["seen_total"], "new_total": changed.quote.total_usd_cost},
        )
    except OrderRejected as rejected:
        for text in rejected.messages:
            messages.error(request, text)
        preview = checkout_preview(model_id=data["model"], token_count=data["tokens"])
        return _render_review(request, preview=preview, form=form, status=400)
    except CheckoutUnavailable as unavailable:
        messages.error(request, unavailable.message)
        preview = checkout_preview(model_id=data["model"], token_count=data["tokens"])
        return _render_review(request, preview=preview, form=form, status=503)
    return redirect("orders:detail", order_id=order.order_id)


def _render_review(
    request: HttpRequest,
    *,
    preview: CheckoutPreview | None,
    form: CheckoutForm | None = None,
    form_errors: list[str] | None = None,
    template: str = "orders/new.html",
    status: int = 200,
    extra: dict | None = None,
) -> HttpResponse:
    """Render the review (or confirm) page; a resubmission keeps its idempotency key."""
    extra = {**_carried_top_up(request, form), **(extra or {})}
    key = form.cleaned_data.get("idempotency_key") if form is not None and hasattr(form, "cleaned_data") else None
    selected = form.cleaned_data.get("crypto") if form is not None and hasattr(form, "cleaned_data") else None
    currencies = preview.currencies if preview else ()
    context = {
        "preview": preview,
        "quote": preview.quote if preview else None,
        "currencies": currencies,
        "selected_crypto": selected or (currencies[0].code if currencies else ""),
        "idempotency_key": key or uuid.uuid4(),
        "form_errors": form_errors or [],
        **(extra or {}),
    }
    return render(request, template, context, status=status)


FIELD_LABELS = {
    "model": "Model", "tokens": "Tokens", "crypto": "Cryptocurrency", "seen_total": "Total", "top_up_of": "Key",
}


def _carried_top_up(request: HttpRequest, form) -> dict:
    """A re-rendered checkout form keeps the top-up it was for (only while the key can take tokens)."""
    cleaned = getattr(form, "cleaned_data", None) or {}
    if not cleaned.get("top_up_of"):
        return {}
    carried = top_up_carry(user=request.user, top_up_of=cleaned["top_up_of"])
    return carried if "top_up" in carried else {}  # a refusal is already in the page's messages


def _error_list(form) -> list[str]:
    errors = []
    for field, field_errors in form.errors.items():
        if field == "idempotency_key":
            errors.append("This form is out of date. Please review your order and confirm again.")
            continue
        errors.extend(f"{FIELD_LABELS.get(field, 'Form')}: {error}" for error in field_errors)
    return errors
