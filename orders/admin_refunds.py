"""Admin side of refunds: "Refund to customer" (dry run, then confirm) and "Re-check refund".

Hooked into `AITokenOrderAdmin` by a few lines (URLs, two changelist actions, one inline). The
confirmation page shows the gateway's dry run — amount, network fee, service fee, what the
customer receives, the address — and only its POST sends, through `refund_confirm`, which sends
at most once per order whoever clicks and however often.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from orders.admin_readonly import ReadOnlyInlineMixin
from orders.models import Refund, RefundStatus
from orders.services import refunds
from payments.currencies import format_amount


class RefundInline(ReadOnlyInlineMixin, admin.StackedInline):
    """The order's refund, read-only (only the refund service writes it)."""

    model = Refund
    template = "admin/orders/edit_inline/readonly_stacked.html"
    fields = (
        "status", "address", "network", "attempts", "sending_since", "confirmed_by", "withdrawal_id", "tx_ids",
        "total_amount", "blockchain_fee_amount", "service_fee_amount", "receiving_amount", "refunded_at",
        "last_error",
    )
    readonly_fields = fields
    verbose_name = verbose_name_plural = "Refund to the customer"


def refund_urls(model_admin) -> list:
    wrap = model_admin.admin_site.admin_view
    return [
        path("<path:object_id>/refund/", wrap(lambda r, object_id: refund_view(model_admin, r, object_id)),
             name="orders_aitokenorder_refund"),
    ]


def _one(model_admin, request, queryset, name: str):
    orders = list(queryset[:2])
    if len(orders) != 1:
        model_admin.message_user(request, "Refunds work on one order at a time.", messages.ERROR)
        return None
    return HttpResponseRedirect(reverse(name, args=[orders[0].pk]))


def refund_action(model_admin, request, queryset):
    return _one(model_admin, request, queryset, "admin:orders_aitokenorder_refund")


def recheck_action(model_admin, request, queryset) -> None:
    """Re-read `isWithdrawn` for refunds left sending/unknown and settle them (never resends)."""
    orders = list(queryset[:51])
    if len(orders) > 50:
        model_admin.message_user(request, "Select at most 50 orders at a time.", messages.ERROR)
        return
    for order in orders:
        try:
            message = refunds.refund_reconcile(order=order, actor=request.user)
            model_admin.message_user(request, message, messages.SUCCESS)
        except refunds.RefundRefused as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)


def refund_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """GET: the gateway's dry run and a confirm button. POST (`confirm`): send the refund."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    order = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    change_url = reverse("admin:orders_aitokenorder_change", args=[order.pk])
    if request.method == "POST":
        if "confirm" not in request.POST:
            return HttpResponseRedirect(change_url)
        try:
            refund = refunds.refund_confirm(
                order=order, actor=request.user, expected_address=request.POST.get("address", "")
            )
        except refunds.RefundRefused as exc:
            model_admin.message_user(request, f"Refund refused: {exc}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        if refund.status == RefundStatus.SENT:
            model_admin.message_user(
                request, f"{order.order_id}: refund sent ({', '.join(refund.tx_ids) or 'transaction id unknown'}).",
                messages.SUCCESS,
            )
        elif refund.status == RefundStatus.REFUSED:
            model_admin.message_user(
                request, f"{order.order_id}: the gateway refused the refund; nothing was sent ({refund.last_error}).",
                messages.ERROR,
            )
        else:
            model_admin.message_user(
                request, f"{order.order_id}: the outcome is unknown — NOT resent. Staff were alerted; use "
                "“Re-check refund” later (it reads the payment's isWithdrawn).", messages.WARNING,
            )
        return HttpResponseRedirect(change_url)
    try:
        quote = refunds.refund_quote(order=order)
    except refunds.RefundRefused as exc:
        model_admin.message_user(request, f"Refund refused: {exc}", messages.ERROR)
        return HttpResponseRedirect(change_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": order,
        "order": order,
        "quote": quote,
        "figures": [
            ("Amount paid (withdrawn from the gateway)", format_amount(quote.total)),
            ("Network fee", format_amount(quote.blockchain_fee)),
            ("Gateway service fee", format_amount(quote.service_fee)),
            ("The customer receives", format_amount(quote.receiving)),
        ],
        "change_url": change_url,
        "title": f"Refund to customer: {order.order_id}",
    }
    return TemplateResponse(request, "admin/orders/aitokenorder/refund_confirm.html", context)
