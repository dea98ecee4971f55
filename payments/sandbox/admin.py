"""Sandbox payments in the admin (sandbox mode only; the callback secret is never shown)."""

from django.conf import settings
from django.contrib import admin

from payments.sandbox.models import SandboxCallbackAttempt, SandboxPayment


class SandboxCallbackAttemptInline(admin.TabularInline):
    model = SandboxCallbackAttempt
    extra = 0
    can_delete = False
    fields = ("created_at", "action", "attempt", "status_code", "ok", "error", "url")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class SandboxPaymentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "payment_type",
        "requested_fiat_amount",
        "fiat_currency",
        "crypto_currency",
        "is_paid",
        "created_at",
        "expires_at",
        "last_action",
    )
    list_filter = ("is_paid", "crypto_currency", "payment_type")
    search_fields = ("hash", "address")
    exclude = ("callback_secret",)
    readonly_fields = [f.name for f in SandboxPayment._meta.fields if f.name != "callback_secret"]
    inlines = [SandboxCallbackAttemptInline]

    def has_add_permission(self, request) -> bool:
        return False


if settings.SANDBOX:
    admin.site.register(SandboxPayment, SandboxPaymentAdmin)
