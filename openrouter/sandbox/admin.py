"""Sandbox state in the admin (sandbox mode only): keys to inspect, faults and credits to tweak."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin

from openrouter.sandbox.models import SandboxAccount, SandboxFault, SandboxKey, SandboxModelOverride


class SandboxKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "label", "disabled", "limit", "usage", "expires_at", "created_at")
    list_filter = ("disabled",)
    search_fields = ("name", "hash")
    readonly_fields = (
        "hash",
        "name",
        "label",
        "limit",
        "usage",
        "limit_reset",
        "include_byok_in_limit",
        "expires_at",
        "created_at",
        "updated_at",
    )
    fields = ("disabled", *readonly_fields)

    def has_add_permission(self, request):
        return False  # keys are created through POST /keys, like on OpenRouter


class SandboxAccountAdmin(admin.ModelAdmin):
    list_display = ("pk", "total_credits", "total_usage", "updated_at")

    def has_add_permission(self, request):
        return not SandboxAccount.objects.exists()


class SandboxFaultAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "kind",
        "status_code",
        "method",
        "path_prefix",
        "latency_ms",
        "remaining",
        "hits",
        "created_at",
    )
    list_filter = ("kind",)
    readonly_fields = ("hits", "created_at")


class SandboxModelOverrideAdmin(admin.ModelAdmin):
    list_display = ("model_id", "hidden", "name", "prompt", "completion")


if settings.SANDBOX:
    admin.site.register(SandboxKey, SandboxKeyAdmin)
    admin.site.register(SandboxAccount, SandboxAccountAdmin)
    admin.site.register(SandboxFault, SandboxFaultAdmin)
    admin.site.register(SandboxModelOverride, SandboxModelOverrideAdmin)
