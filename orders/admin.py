"""The admin as the shop's control room: find any order fast, read its history, fix what broke.

Order pages are read-only: nothing here assigns a field of an order. Every change goes through
`orders.services.staff_actions` (which uses the one status door, `order_transition`) and is
recorded as a staff event naming the acting user. The delivered key and the callback secret are
never shown — only the key's hash and usage.

Built to stay fast with 100,000+ orders: `list_select_related`, no per-row queries, filters
backed by indexes and by small tables (never `SELECT DISTINCT` over the orders), no full count
per page (`show_full_result_count = False` and an estimated count for the unfiltered list on
PostgreSQL), and exact-match search on indexed columns.

Why this module is long: one ModelAdmin and the staff-action views it routes; its filters are in
`orders.admin_filters` and the actions themselves are services in `orders.services.staff_actions`.
"""

from __future__ import annotations

import json
from functools import cached_property

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from accounts.models import User
from orders import admin_refunds
from orders.admin_filters import CryptoFilter, ModelFilter, RefundFilter
from orders.admin_readonly import ReadOnlyInlineMixin
from orders.models import AITokenOrder, OrderEvent, OrderReason, OrderStatus, TokenPackage
from orders.services import refund_marks, staff_actions
from orders.services.staff_actions import ACTIONS, StaffActionRefused, staff_actions_available
from orders.staff_amounts import order_received_payment, staff_amount
from storefront.catalogue_version import catalogue_version_bump

admin.site.site_header = "Token Store admin"
admin.site.site_title = "Token Store admin"
admin.site.index_title = "Control room"

# Below this many rows an exact COUNT(*) is cheap and an estimate would only confuse.
ESTIMATE_COUNT_ABOVE = 10_000
BULK_ACTION_MAX = 50


class EstimatedCountPaginator(Paginator):
    """Exact counts for filtered lists; the planner's row estimate for the whole table on PostgreSQL.

    COUNT(*) over a large table is a full scan on PostgreSQL; `pg_class.reltuples` (kept fresh by
    autovacuum/ANALYZE) is instant and close enough for "page 1 of ~2,000".
    """

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if isinstance(qs, QuerySet) and not qs.query.where and not qs.query.distinct:
            estimate = _estimated_rows(qs)
            if estimate is not None and estimate > ESTIMATE_COUNT_ABOVE:
                return estimate
        return super().count


def _estimated_rows(qs: QuerySet) -> int | None:
    connection = connections[qs.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(qs.model._meta.db_table)],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


class OrderEventInline(ReadOnlyInlineMixin, admin.TabularInline):
    """The order's history, oldest first. Append-only: no add, change or delete."""

    model = OrderEvent
    template = "admin/orders/edit_inline/readonly_tabular.html"
    fields = ("created_at", "source", "transition", "message", "details_json", "actor")
    readonly_fields = fields
    show_change_link = False
    verbose_name = "event"
    verbose_name_plural = "Timeline"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor").order_by("created_at", "id")

    @admin.display(description="Status")
    def transition(self, event: OrderEvent) -> str:
        if not event.to_status:
            return "—"
        return f"{event.from_status or '∅'} → {event.to_status}"

    @admin.display(description="Details")
    def details_json(self, event: OrderEvent) -> str:
        if not event.details:
            return "—"
        text = json.dumps(event.details, default=str, sort_keys=True)
        return format_html('<code class="event-details">{}</code>', text[:1500])


class OrderActionForm(forms.Form):
    """Action forms know their order (for validation that depends on it)."""

    def __init__(self, *args, order: AITokenOrder, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order


class ApprovePaymentForm(OrderActionForm):
    """The service re-checks everything; the form only gives quick feedback without losing input."""

    def clean_confirmation(self) -> str:
        value = self.cleaned_data["confirmation"].strip()
        if value != self.order.order_id:
            raise forms.ValidationError(f"Type the order id {self.order.order_id} exactly.")
        return value

    confirmation = forms.CharField(
        label="Type the order id to confirm", max_length=60,
        help_text="Approving overrides the automatic review: the tokens will be bought and delivered.",
    )
    note = forms.CharField(
        label="Why is this payment acceptable?", widget=forms.Textarea(attrs={"rows": 3}),
        min_length=staff_actions.NOTE_MIN, max_length=staff_actions.NOTE_MAX,
    )


class MarkRefundedForm(OrderActionForm):
    refund_reference = forms.CharField(
        label="Refund transaction reference", max_length=staff_actions.REFERENCE_MAX, min_length=4,
        help_text="The transaction id (or gateway reference) of the crypto sent back to the customer.",
    )
    note = forms.CharField(
        label="Note (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        max_length=staff_actions.NOTE_MAX,
    )


class RefundMarkForm(OrderActionForm):
    """Marking an order refundable, or withdrawing the mark: the reason goes to the timeline (staff only)."""

    note = forms.CharField(
        label="Reason (staff only)", widget=forms.Textarea(attrs={"rows": 3}),
        min_length=staff_actions.NOTE_MIN, max_length=staff_actions.NOTE_MAX,
        help_text="Kept in the order's timeline; the customer never sees it.",
    )


class ConfirmForm(OrderActionForm):
    """No input: the POST itself is the confirmation."""


ACTION_FORMS: dict[str, type[OrderActionForm]] = {
    "approve-payment": ApprovePaymentForm,
    "mark-refunded": MarkRefundedForm,
    "mark-refundable": RefundMarkForm,
    "unmark-refundable": RefundMarkForm,
}
ACTION_SERVICES = {
    "recheck-payment": staff_actions.order_staff_recheck_payment,
    "retry-fulfilment": staff_actions.order_staff_retry_fulfilment,
    "approve-payment": staff_actions.order_staff_approve_payment,
    "mark-refunded": staff_actions.order_staff_mark_refunded,
    "disable-key": staff_actions.order_staff_disable_key,
    "mark-refundable": refund_marks.order_staff_mark_refundable,
    "unmark-refundable": refund_marks.order_staff_unmark_refundable,
}

SUMMARY_FIELDS = ("order_id", "user", "status", "reason", "created_at", "updated_at", "age")
SNAPSHOT_FIELDS = (
    "model_id", "token_count", "prompt_price", "completion_price", "price_per_token", "markup_rate",
    "base_usd_cost", "markup_amount", "total_usd_cost",
)
PAYMENT_FIELDS = (
    "crypto_type", "expected_amount", "received_amount", "payment_id", "payment_hash", "address", "expires_at",
    "paid_at", "payment_checked_at", "refund_reference",
    # Staff offered a refund on a delivered / expired order (orders/services/refund_marks.py).
    "refundable_marked_at", "refundable_marked_by", "refundable_reason",
)
KEY_FIELDS = (
    "fulfil_attempts", "fulfilling_since", "fulfil_retry_at", "delivered_at", "key_hash", "key_usage_usd",
    "key_limit_remaining_usd", "key_usage_checked_at", "key_disabled",
    # Top-ups (orders/services/top_up.py): the key's order, the absolute target, the confirmed limit.
    "top_up_of", "top_up_target_limit_usd", "key_limit_usd",
)


def _form_page_action(slug: str, description: str):
    """A changelist action that opens the staff-action page `slug` for the one selected order."""

    @admin.action(description=description, permissions=["change"])
    def action(modeladmin, request, queryset):
        return modeladmin._one_with_form(request, queryset, slug)

    action.__name__ = slug.replace("-", "_")
    return action


@admin.register(AITokenOrder)
class AITokenOrderAdmin(admin.ModelAdmin):
    list_display = (
        "order_id", "status_with_reason", "customer_email", "model_id", "tokens", "total_usd", "crypto_type",
        "placed", "age",
    )
    list_filter = (
        "status", "reason", RefundFilter, CryptoFilter, ModelFilter, ("created_at", admin.DateFieldListFilter)
    )
    list_select_related = ("user",)
    list_per_page = 50
    list_max_show_all = 500
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would COUNT every filter option over the table
    paginator = EstimatedCountPaginator
    sortable_by = ("order_id", "model_id", "tokens", "total_usd", "crypto_type", "status_with_reason", "placed")
    search_fields = ("order_id",)  # shows the box; matching is get_search_results below
    search_help_text = "Exact order id (TS-…), customer email, payment hash, payment address or key hash."
    ordering = ("-created_at",)
    fieldsets = (
        (None, {"fields": SUMMARY_FIELDS}),
        ("What was sold (price snapshot at checkout)", {"fields": SNAPSHOT_FIELDS}),
        ("Payment", {"fields": PAYMENT_FIELDS}),
        ("Fulfilment and key (the key itself is never shown)", {"fields": KEY_FIELDS}),
    )
    readonly_fields = SUMMARY_FIELDS + SNAPSHOT_FIELDS + PAYMENT_FIELDS + KEY_FIELDS
    inlines = (admin_refunds.RefundInline, OrderEventInline)
    actions = (
        "recheck_payment", "retry_fulfilment", "approve_payment", "mark_refunded", "disable_key",
        "refund_to_customer", "recheck_refund", "mark_refundable", "unmark_refundable",
    )

    class Media:
        css = {"all": ("css/staff.css",)}

    # --- Permissions: orders are made by checkout and changed only through actions ----------

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    # --- List columns (no query per row: user comes from list_select_related) ---------------

    @admin.display(description="Customer")
    def customer_email(self, order: AITokenOrder) -> str:
        return order.user.email

    @admin.display(description="Tokens", ordering="token_count")
    def tokens(self, order: AITokenOrder) -> str:
        return f"{order.token_count:,}"

    @admin.display(description="Total USD", ordering="total_usd_cost")
    def total_usd(self, order: AITokenOrder) -> str:
        return f"${order.total_usd_cost}"

    @admin.display(description="Status", ordering="status")
    def status_with_reason(self, order: AITokenOrder) -> str:
        reason = OrderReason(order.reason).label if order.reason else ""
        return format_html(
            '<span class="order-status status-{}">{}</span>{}',
            order.status,
            OrderStatus(order.status).label,
            format_html('<br><span class="order-reason">{}</span>', reason) if reason else "",
        )

    @admin.display(description="Placed (UTC)", ordering="created_at")
    def placed(self, order: AITokenOrder) -> str:
        return order.created_at.strftime("%Y-%m-%d %H:%M:%S") if order.created_at else "—"

    @admin.display(description="Expected amount")
    def expected_amount(self, order: AITokenOrder) -> str:
        return staff_amount(order.crypto_amount, order.crypto_type)

    @admin.display(description="Received amount (gateway)")
    def received_amount(self, order: AITokenOrder) -> str:
        received = order_received_payment(order=order, timeline=getattr(order, "admin_timeline", None))
        if received is None:
            return "nothing received yet"
        return f"{received.crypto_amount} ({received.fiat_amount}) at {received.at}"

    @admin.display(description="Age")
    def age(self, order: AITokenOrder) -> str:
        return timesince(order.created_at) if order.created_at else "—"

    # --- Search: exact matches on indexed columns ------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term:
            return queryset, False
        return queryset.filter(order_search_q(term)), False

    # --- The read-only order page with its action buttons ----------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            # Nothing on an order is edited by hand; status moves through the actions only.
            self.message_user(request, "Orders cannot be edited; use the actions.", messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(
            show_save=False,
            show_save_and_continue=False,
            show_save_and_add_another=False,
            show_delete=False,
            staff_actions=[
                (action, reverse("admin:orders_aitokenorder_staff_action", args=[obj.pk, action.slug]))
                for action in staff_actions_available(obj)
            ]
            if obj is not None and self.has_change_permission(request, obj)
            else [],
        )
        if obj is not None:
            # "Received amount" reads the timeline this page loads anyway instead of its own query.
            obj.admin_timeline = next(
                (list(inline.formset.get_queryset()) for inline in context.get("inline_admin_formsets", ())
                 if inline.formset.model is OrderEvent),
                None,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        """Never: an order row is only written by the services."""

    def save_related(self, request, form, formsets, change):
        """Never (the timeline is append-only)."""

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/staff/<slug:action>/",
                self.admin_site.admin_view(self.staff_action_view),
                name="orders_aitokenorder_staff_action",
            ),
        ]
        return custom + admin_refunds.refund_urls(self) + super().get_urls()

    def staff_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """GET: the confirmation page (with its form). POST: run the action through its service."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        spec = ACTIONS.get(action)
        if spec is None:
            raise Http404("Unknown action")
        order = get_object_or_404(self.get_queryset(request), pk=object_id)
        change_url = reverse("admin:orders_aitokenorder_change", args=[order.pk])
        form_class = ACTION_FORMS.get(action, ConfirmForm)
        if request.method == "POST":
            form = form_class(request.POST, order=order)
            if form.is_valid():
                try:
                    message = ACTION_SERVICES[action](order=order, actor=request.user, **form.cleaned_data)
                except StaffActionRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        else:
            refusal = _action_refusal(order, spec)
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
                return HttpResponseRedirect(change_url)
            form = form_class(order=order)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": order,
            "order": order,
            "action": spec,
            "form": form,
            "change_url": change_url,
            "expected_amount": staff_amount(order.crypto_amount, order.crypto_type),
            "received": order_received_payment(order=order),
            "title": f"{spec.label}: {order.order_id}",
        }
        return TemplateResponse(request, "admin/orders/aitokenorder/staff_action.html", context)

    # --- Changelist actions ------------------------------------------------------------------

    def _run_each(self, request, queryset, service) -> None:
        orders = list(queryset[: BULK_ACTION_MAX + 1])
        if len(orders) > BULK_ACTION_MAX:
            self.message_user(request, f"Select at most {BULK_ACTION_MAX} orders at a time.", messages.ERROR)
            return
        for order in orders:  # one service call per selected order (each writes its own event)
            try:
                self.message_user(request, service(order=order, actor=request.user), messages.SUCCESS)
            except StaffActionRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)

    def _one_with_form(self, request, queryset, slug: str):
        orders = list(queryset[:2])
        if len(orders) != 1:
            self.message_user(request, f"“{ACTIONS[slug].label}” works on one order at a time.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:orders_aitokenorder_staff_action", args=[orders[0].pk, slug]))

    @admin.action(description="Re-check payment now", permissions=["change"])
    def recheck_payment(self, request, queryset):
        self._run_each(request, queryset, staff_actions.order_staff_recheck_payment)

    @admin.action(description="Retry fulfilment (failed → paid)", permissions=["change"])
    def retry_fulfilment(self, request, queryset):
        self._run_each(request, queryset, staff_actions.order_staff_retry_fulfilment)

    # Actions that need a note or a reference open their one-order page.
    approve_payment = _form_page_action("approve-payment", "Approve reviewed payment…")
    mark_refunded = _form_page_action("mark-refunded", "Mark refunded…")
    disable_key = _form_page_action("disable-key", "Disable delivered key…")
    mark_refundable = _form_page_action("mark-refundable", "Mark refundable (offer the customer a refund)…")
    unmark_refundable = _form_page_action("unmark-refundable", "Withdraw refund offer…")

    @admin.action(description="Refund to customer…", permissions=["change"])
    def refund_to_customer(self, request, queryset):
        return admin_refunds.refund_action(self, request, queryset)

    @admin.action(description="Re-check refund with the gateway", permissions=["change"])
    def recheck_refund(self, request, queryset):
        return admin_refunds.recheck_action(self, request, queryset)


def _action_refusal(order: AITokenOrder, spec) -> str:
    """Why the action's page is not offered for this order now ('' when it is)."""
    status = OrderStatus(order.status).label.lower()
    if order.status not in spec.statuses:
        return f"{order.order_id}: “{spec.label}” is not possible while the order is {status}."
    if spec.slug == "mark-refundable":
        return refund_marks.refund_mark_refusal(order)
    if spec.slug in ("mark-refunded", "unmark-refundable") and spec not in staff_actions_available(order):
        marked = "marked refundable" if order.refundable_marked_at else "not marked refundable"
        return f"{order.order_id}: “{spec.label}” is not possible while the order is {status} and {marked}."
    return ""


def order_search_q(term: str) -> Q:
    """Exact matches only, each on an indexed column, OR-ed (PostgreSQL: one bitmap-OR scan)."""
    q = Q(order_id=term) | Q(payment_hash=term) | Q(address=term) | Q(key_hash=term)
    if not term.startswith("TS-"):
        q |= Q(order_id="TS-" + term)
    if "@" in term:
        # Emails are stored lower-cased; resolve the user first so the OR stays index-only.
        user_ids = list(User.objects.filter(email=term.lower()).values_list("pk", flat=True)[:1])
        if user_ids:
            q |= Q(user_id__in=user_ids)
    return q


@admin.register(TokenPackage)
class TokenPackageAdmin(admin.ModelAdmin):
    """Packages on the catalogue page: edit the share, reorder (sort order) and hide (visible) from the list.

    A package is a share of each model's largest order, so one row sizes the package for every
    model; the catalogue shows the resulting token counts.
    """

    list_display = ("name", "share", "position", "active")
    list_display_links = ("name",)
    list_editable = ("share", "position", "active")
    list_filter = ("active",)
    ordering = ("position", "share")
    actions = ("hide_packages", "show_packages")

    @admin.action(description="Hide selected packages", permissions=["change"])
    def hide_packages(self, request, queryset):
        count = queryset.update(active=False)
        catalogue_version_bump()  # a bulk update sends no save signal
        self.message_user(request, f"{count} package(s) hidden.", messages.SUCCESS)

    @admin.action(description="Show selected packages", permissions=["change"])
    def show_packages(self, request, queryset):
        count = queryset.update(active=True)
        catalogue_version_bump()  # a bulk update sends no save signal
        self.message_user(request, f"{count} package(s) shown.", messages.SUCCESS)
