"""State of the local OpenRouter imitation. Kept in the database so every process (web, worker,
tests over real HTTP) sees the same keys, credits and injected faults."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

USD = {"max_digits": 20, "decimal_places": 8}


class SandboxAccount(models.Model):
    """The single OpenRouter account behind the sandbox's management key (row pk=1)."""

    total_credits = models.DecimalField(**USD, default=Decimal("100.00"))
    total_usage = models.DecimalField(**USD, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sandbox account"

    def __str__(self) -> str:
        return f"credits {self.total_credits} / usage {self.total_usage}"

    @classmethod
    def load(cls) -> SandboxAccount:
        account, _ = cls.objects.get_or_create(pk=1)
        return account


class SandboxKey(models.Model):
    """An API key the sandbox issued. Only a SHA-256 of the plaintext is kept (as ``hash``)."""

    hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=500)
    label = models.CharField(max_length=40)
    disabled = models.BooleanField(default=False)
    limit = models.DecimalField(**USD, null=True, blank=True)
    usage = models.DecimalField(**USD, default=Decimal("0"))
    limit_reset = models.CharField(max_length=20, blank=True, default="")
    include_byok_in_limit = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "sandbox key"

    def __str__(self) -> str:
        return f"{self.name} ({self.label})"

    @property
    def limit_remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return max(self.limit - self.usage, Decimal(0))


class FaultKind(models.TextChoices):
    STATUS = "status", "Answer with an error status"
    LATENCY = "latency", "Add latency"
    LOSE_RESPONSE = "lose_response", "Do the work, then lose the response"


class SandboxFaultQuerySet(models.QuerySet):
    def active(self) -> SandboxFaultQuerySet:
        return self.filter(Q(remaining__isnull=True) | Q(remaining__gt=0))


class SandboxFault(models.Model):
    """A fault the sandbox injects into matching API calls, ``remaining`` times (None = until cleared).

    - ``status``: answer ``status_code`` (with ``Retry-After`` for 429) instead of doing anything;
    - ``latency``: wait ``latency_ms`` before handling the call;
    - ``lose_response``: handle the call and commit, then either answer ``status_code`` (e.g. 504)
      or, without one, sleep ``latency_ms`` (default: the client's read timeout + 1 s) so the
      caller times out although the work was done.
    """

    kind = models.CharField(max_length=20, choices=FaultKind.choices, default=FaultKind.STATUS)
    method = models.CharField(max_length=10, blank=True, default="", help_text="GET, POST...; empty = any")
    path_prefix = models.CharField(
        max_length=200, blank=True, default="", help_text="Relative to /api/v1, e.g. /keys; empty = any"
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    retry_after = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds, sent with 429")
    message = models.CharField(max_length=200, blank=True, default="")
    remaining = models.PositiveIntegerField(null=True, blank=True, help_text="Calls left; empty = until cleared")
    hits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SandboxFaultQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = "sandbox fault"

    def __str__(self) -> str:
        target = f"{self.method or '*'} {self.path_prefix or '/'}"
        return f"{self.kind} {self.status_code or ''} {target} ({'∞' if self.remaining is None else self.remaining})"


class SandboxModelOverride(models.Model):
    """Changes one catalogue entry (hide it, or change its prices) so demos can make models come and go."""

    model_id = models.CharField(max_length=200, unique=True)
    hidden = models.BooleanField(default=False)
    name = models.CharField(max_length=300, blank=True, default="")
    prompt = models.CharField(max_length=40, blank=True, default="", help_text="Price string; empty = unchanged")
    completion = models.CharField(max_length=40, blank=True, default="", help_text="Price string; empty = unchanged")

    class Meta:
        ordering = ["model_id"]
        verbose_name = "sandbox model override"

    def __str__(self) -> str:
        return self.model_id
