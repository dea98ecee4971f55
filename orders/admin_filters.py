"""The order list's own filters. Each one is a WHERE the list's indexes answer: option lists come
from small tables or settings, never from a `SELECT DISTINCT` over the orders."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet

from openrouter.models import AIModel
from orders.models import Refund, RefundStatus


class ModelFilter(admin.SimpleListFilter):
    """Offered models, from the small catalogue table."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        ids = list(AIModel.objects.filter(offered=True).order_by("id").values_list("id", flat=True))
        current = self.value()
        if current and current not in ids:
            ids.append(current)
        return [(model_id, model_id) for model_id in ids]

    def queryset(self, request, queryset):
        return queryset.filter(model_id=self.value()) if self.value() else queryset


class CryptoFilter(admin.SimpleListFilter):
    title = "crypto"
    parameter_name = "crypto"

    def lookups(self, request, model_admin):
        return [(code, code) for code in settings.PAYMENT_CURRENCIES]

    def queryset(self, request, queryset):
        return queryset.filter(crypto_type=self.value()) if self.value() else queryset


# Refund stages staff work through, each with the refund statuses it covers.
REFUND_STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "requested": ("Address given, not sent", (RefundStatus.REQUESTED,)),
    "attention": ("Needs staff (unknown or refused)", (RefundStatus.UNKNOWN, RefundStatus.REFUSED)),
    "sending": ("Sending", (RefundStatus.SENDING,)),
    "sent": ("Sent", (RefundStatus.SENT,)),
}


class RefundFilter(admin.SimpleListFilter):
    """Orders staff offered a refund on (the mark), and orders by where their refund stands.

    The stages read the small refund table and match orders by primary key; "offered" uses the
    partial index over marked orders. An unknown value shows the whole list, like Django's own.
    """

    title = "refund"
    parameter_name = "refund"

    def lookups(self, request, model_admin):
        return [("offered", "Offered by staff (marked refundable)")] + [
            (slug, label) for slug, (label, _) in REFUND_STAGES.items()
        ]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "offered":
            return queryset.filter(refundable_marked_at__isnull=False)
        if value in REFUND_STAGES:
            statuses = REFUND_STAGES[value][1]
            return queryset.filter(pk__in=Refund.objects.filter(status__in=statuses).values("order_id"))
        return queryset
