"""The OpenRouter model catalogue as the store last saw it."""

from __future__ import annotations

from django.db import models


class AIModelQuerySet(models.QuerySet):
    def orderable(self) -> AIModelQuerySet:
        """Models a customer can buy: offered by staff, still in OpenRouter's catalogue, priced."""
        return self.filter(
            offered=True,
            available=True,
            pricing_issue="",
            prompt_price__gt=0,
            completion_price__gt=0,
        )


class AIModel(models.Model):
    """One OpenRouter model. Prices are USD per token, exactly as OpenRouter's strings say."""

    id = models.CharField(primary_key=True, max_length=200)
    name = models.CharField(max_length=300)
    context_length = models.PositiveIntegerField(null=True, blank=True)
    # USD per token; real prices go down to 1e-10, so 15 decimal places with room above.
    prompt_price = models.DecimalField(max_digits=24, decimal_places=15, null=True, blank=True)
    completion_price = models.DecimalField(max_digits=24, decimal_places=15, null=True, blank=True)
    offered = models.BooleanField(default=False, help_text="Staff choose which models the store sells.")
    available = models.BooleanField(default=True, help_text="Present in OpenRouter's catalogue at the last sync.")
    pricing_issue = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="Why the last sync found this model unsellable (free, variable, missing price...); empty if priced.",
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AIModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "AI model"
        indexes = [models.Index(fields=["offered", "available"], name="aimodel_orderable_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def is_priced(self) -> bool:
        return bool(self.prompt_price and self.completion_price and self.prompt_price > 0 and self.completion_price > 0)
