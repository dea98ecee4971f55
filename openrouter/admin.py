"""Staff view of the model catalogue: choose what the store sells; prices come from the sync."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry

from openrouter.catalogue_sync import catalogue_set_offered, is_offerable
from openrouter.models import AIModel

MILLION = Decimal(1_000_000)


def per_million(price: Decimal | None) -> str:
    """USD per million tokens for display: "$3.00", "$0.075"; "—" when there is no usable price."""
    if price is None or price <= 0:
        return "—"
    value = (price * MILLION).normalize()
    if value == value.to_integral_value() or -value.as_tuple().exponent < 2:
        value = value.quantize(Decimal("0.01"))
    return f"${value:f}"


class AIModelChangeListForm(forms.ModelForm):
    """The list's ``offered`` toggle refuses models that cannot be sold (unpriced or gone)."""

    class Meta:
        model = AIModel
        fields = ["offered"]

    def clean_offered(self):
        offered = self.cleaned_data["offered"]
        if offered and not self.instance.offered and not is_offerable(self.instance):
            gone = "not in the catalogue" if not self.instance.available else "unpriced"
            reason = self.instance.pricing_issue or gone
            raise forms.ValidationError(f"Cannot be offered: {reason}.")
        return offered


class AIModelForm(AIModelChangeListForm):
    class Meta(AIModelChangeListForm.Meta):
        fields = ["offered"]


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "prompt_per_million",
        "completion_per_million",
        "blended_per_million",
        "offered",
        "available",
        "pricing_issue",
        "last_seen_at",
    )
    list_editable = ("offered",)
    list_filter = ("offered", "available", "pricing_issue")
    search_fields = ("id", "name")
    ordering = ("-offered", "name")
    list_per_page = 100
    actions = ("offer", "withdraw")
    form = AIModelForm
    readonly_fields = (
        "id",
        "name",
        "context_length",
        "prompt_price",
        "completion_price",
        "prompt_per_million",
        "completion_per_million",
        "blended_per_million",
        "pricing_issue",
        "available",
        "last_seen_at",
        "created_at",
        "updated_at",
    )
    fields = ("offered", *readonly_fields)

    def get_changelist_form(self, request, **kwargs):
        kwargs.setdefault("form", AIModelChangeListForm)
        return super().get_changelist_form(request, **kwargs)

    def has_add_permission(self, request):
        return False  # models arrive from OpenRouter's catalogue, never by hand

    def has_delete_permission(self, request, obj=None):
        return False  # orders keep referring to model ids; withdraw instead

    @admin.display(description="Prompt / M tokens", ordering="prompt_price")
    def prompt_per_million(self, obj: AIModel) -> str:
        return per_million(obj.prompt_price)

    @admin.display(description="Completion / M tokens", ordering="completion_price")
    def completion_per_million(self, obj: AIModel) -> str:
        return per_million(obj.completion_price)

    @admin.display(description="Blended / M tokens (what customers pay, before markup)")
    def blended_per_million(self, obj: AIModel) -> str:
        if not obj.is_priced:
            return "—"
        return per_million((obj.prompt_price + obj.completion_price) / 2)

    def _log(self, request, queryset, message: str) -> None:
        LogEntry.objects.log_actions(request.user.pk, queryset, CHANGE, change_message=message)

    @admin.action(description="Offer the selected models to customers")
    def offer(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        result = catalogue_set_offered(model_ids=ids, offered=True)
        self._log(request, AIModel.objects.filter(pk__in=set(ids) - set(result.refused)), "Offered")
        self.message_user(request, f"{result.changed} model(s) now offered.", messages.SUCCESS)
        if result.refused:
            shown = ", ".join(result.refused[:10]) + (" …" if len(result.refused) > 10 else "")
            self.message_user(
                request,
                f"Not offered (unpriced, free, variable price or gone from the catalogue): {shown}",
                messages.WARNING,
            )

    @admin.action(description="Withdraw the selected models from sale")
    def withdraw(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        result = catalogue_set_offered(model_ids=ids, offered=False)
        self._log(request, AIModel.objects.filter(pk__in=ids), "Withdrawn")
        self.message_user(request, f"{result.changed} model(s) withdrawn.", messages.SUCCESS)
