"""Orders: what a customer asked for, what they paid, what the store bought for them.

Status is written by exactly one function, `orders.services.transitions.order_transition`;
nothing else assigns it.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from orders.order_epoch import OrderWritesQuerySet, orders_changed_on_commit

# Money rule 3 (docs/ARCHITECTURE.md, "Money rules") as a database fact: no order row can ever total more than this.
HARD_CAP_USD = Decimal("20.00")
# Money rule 3 again: the markup may be configured lower, never higher.
HARD_MARKUP_RATE = Decimal("0.20")


class TokenPackage(models.Model):
    """A ready-made amount on the catalogue page, as a share of each model's largest order.

    Prices differ by a factor of a thousand between models, so a fixed token count cannot suit
    them all: the seed's packages ran 1 : 5 : 10 : 20 with the largest "the maximum allowed",
    and `orders.pricing.package_token_counts` turns each share into a round, buyable token
    count per model. Staff edit, reorder and hide these rows in the admin.
    """

    name = models.CharField(max_length=60)
    share = models.DecimalField(
        "share of the maximum",
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("1"))],
        help_text="Fraction of the largest order the $ cap allows for each model: 1 = the maximum, 0.05 = a twentieth.",
    )
    position = models.PositiveSmallIntegerField("sort order", default=0, help_text="Lower comes first.")
    active = models.BooleanField("visible", default=True, help_text="Hidden packages are not shown.")

    class Meta:
        ordering = ["position", "share"]
        constraints = [
            models.CheckConstraint(condition=Q(share__gt=0) & Q(share__lte=1), name="package_share_range"),
        ]

    def __str__(self) -> str:
        percent = format((self.share * 100).normalize(), "f")
        return f"{self.name} ({percent}% of the maximum)"


class OrderStatus(models.TextChoices):
    # Choices give a label only where Django's default (the name in title case, "Paid") won't do.
    PENDING = "pending", "Awaiting payment"
    PAID = "paid"
    FULFILLING = "fulfilling", "Buying your tokens"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review", "Under review"
    REFUNDED = "refunded"


class OrderReason(models.TextChoices):
    NONE = "", "—"
    WRONG_AMOUNT = "wrong_amount", "Wrong amount paid"
    WRONG_CURRENCY = "wrong_currency", "Wrong currency"
    WRONG_TYPE = "wrong_type", "Wrong payment type"
    WRONG_HASH = "wrong_hash", "Payment does not match the order"
    PAID_LATE = "paid_late", "Paid after expiry"
    OUT_OF_CREDITS = "out_of_credits", "OpenRouter out of credits"
    CONFIGURATION = "configuration", "OpenRouter configuration error"
    RETRIES_EXHAUSTED = "retries_exhausted", "OpenRouter kept failing"
    RULE_VIOLATION = "rule_violation", "Failed a business rule check"
    STAFF = "staff", "Set by staff"


class EventSource(models.TextChoices):
    CHECKOUT = "checkout"
    CALLBACK = "callback", "Gateway callback"
    POLLER = "poller", "Payment poller"
    WORKER = "worker", "Fulfilment worker"
    RECONCILER = "reconciler"
    STAFF = "staff"
    CUSTOMER = "customer"


def new_order_id() -> str:
    """Public reference: unguessable, URL-safe, short enough to read out on support calls."""
    return "TS-" + secrets.token_urlsafe(12)


# Orders the store may still have to buy tokens for: a failed or under-review order is paid and
# staff may retry or approve it, so its base cost stays promised until it is delivered or refunded.
OPEN_LIABILITY_STATUSES = (
    OrderStatus.PENDING,
    OrderStatus.PAID,
    OrderStatus.FULFILLING,
    OrderStatus.FAILED,
    OrderStatus.NEEDS_REVIEW,
)


class AITokenOrder(models.Model):
    """The seed's `ai_token_orders` row plus what the payment and fulfilment flows need."""

    order_id = models.CharField(max_length=50, unique=True, default=new_order_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    idempotency_key = models.UUIDField(null=True, blank=True, editable=False)

    # What was asked for, and the price snapshot it was sold at.
    token_count = models.PositiveIntegerField()
    model_id = models.CharField(max_length=200)
    prompt_price = models.DecimalField(max_digits=24, decimal_places=15)
    completion_price = models.DecimalField(max_digits=24, decimal_places=15)
    price_per_token = models.DecimalField(max_digits=26, decimal_places=16)
    markup_rate = models.DecimalField(max_digits=5, decimal_places=4)
    base_usd_cost = models.DecimalField(max_digits=10, decimal_places=2)
    markup_amount = models.DecimalField(max_digits=10, decimal_places=2)
    total_usd_cost = models.DecimalField(max_digits=10, decimal_places=2)

    # The gateway payment.
    crypto_type = models.CharField(max_length=20)
    crypto_amount = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    payment_id = models.CharField(max_length=50, blank=True)
    payment_hash = models.CharField(max_length=128, null=True, blank=True, unique=True)
    address = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    callback_secret_encrypted = models.TextField(blank=True, editable=False)
    paid_at = models.DateTimeField(null=True, blank=True)
    # The payment poller's bookkeeping: parallel pollers skip orders another one has leased.
    payment_checked_at = models.DateTimeField(null=True, blank=True)
    poll_lease_until = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    reason = models.CharField(max_length=30, choices=OrderReason.choices, blank=True, default="")

    # Fulfilment.
    fulfil_attempts = models.PositiveSmallIntegerField(default=0)
    fulfilling_since = models.DateTimeField(null=True, blank=True)
    # Backoff after a transient OpenRouter error: no fulfil attempt starts before this time.
    fulfil_retry_at = models.DateTimeField(null=True, blank=True)
    # The claim is a lease (orders/services/fulfil_lease.py): the live attempt keeps it fresh before each
    # OpenRouter call; once it lapses (a killed worker) the next task or the reconciler takes over.
    fulfil_lease_until = models.DateTimeField(null=True, blank=True)
    fulfil_lease_owner = models.CharField(max_length=200, blank=True, default="")
    key_hash = models.CharField(max_length=128, null=True, blank=True, unique=True)
    key_encrypted = models.TextField(blank=True, editable=False)
    key_usage_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    key_limit_remaining_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    key_usage_checked_at = models.DateTimeField(null=True, blank=True)
    key_disabled = models.BooleanField(default=False)
    key_expires_at = models.DateTimeField(null=True, blank=True, help_text="As sent to OpenRouter; empty: never.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    refund_reference = models.CharField(max_length=200, blank=True)
    # Staff offered a refund on an order that is not refundable by its status (a delivered or an
    # expired order): only then may it go to `refunded` (orders/services/refund_marks.py).
    refundable_marked_at = models.DateTimeField(null=True, blank=True)
    refundable_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refundable_reason = models.CharField(
        max_length=250, blank=True, help_text="Staff only; never shown to the customer."
    )

    # Top-ups (orders/services/top_up.py). A top-up names the order that delivered the key; the
    # key's own order keeps the limit OpenRouter last confirmed (empty: its base cost).
    top_up_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="top_ups",
        help_text="The delivered order whose key this order adds tokens to (empty: a new key).",
    )
    top_up_target_limit_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="Absolute key limit this top-up sets, decided and stored before OpenRouter is called.",
    )
    key_limit_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="The key's USD limit as last confirmed by OpenRouter (empty: the base cost).",
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrderWritesQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "AI token order"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(condition=Q(token_count__gte=100), name="order_min_tokens"),
            models.CheckConstraint(condition=Q(base_usd_cost__gt=0), name="order_base_positive"),
            models.CheckConstraint(condition=Q(markup_amount__gte=0), name="order_markup_non_negative"),
            models.CheckConstraint(condition=Q(total_usd_cost__lte=HARD_CAP_USD), name="order_total_capped"),
            models.CheckConstraint(
                condition=Q(crypto_amount__isnull=True) | Q(crypto_amount__gt=0), name="order_crypto_positive"
            ),
            models.CheckConstraint(
                condition=Q(top_up_target_limit_usd__isnull=True) | Q(top_up_target_limit_usd__gt=0),
                name="order_top_up_target_positive",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="order_idempotency_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
            models.Index(fields=["user", "-created_at"], name="order_user_created_idx"),
            models.Index(fields=["status", "expires_at"], name="order_status_expiry_idx"),
            # Staff admin filters (reason / crypto / model), each newest first.
            models.Index(fields=["reason", "created_at"], name="order_reason_created_idx"),
            models.Index(fields=["crypto_type", "created_at"], name="order_crypto_created_idx"),
            models.Index(fields=["model_id", "created_at"], name="order_model_created_idx"),
            # Staff search by payment address (order id, payment hash and key hash are unique already).
            models.Index(fields=["address"], name="order_address_idx"),
            # The admin's "refund offered" filter: the few marked orders, newest first.
            models.Index(
                fields=["-created_at"], condition=Q(refundable_marked_at__isnull=False), name="order_refund_offered_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.order_id

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        orders_changed_on_commit(kwargs.get("using") or self._state.db)

    def delete(self, *args, **kwargs):
        deleted = super().delete(*args, **kwargs)
        orders_changed_on_commit(kwargs.get("using") or self._state.db)
        return deleted

    @property
    def is_top_up(self) -> bool:
        return self.top_up_of_id is not None

    @property
    def confirmed_key_limit(self) -> Decimal:
        """The key's USD limit as OpenRouter last confirmed it (its base cost until topped up)."""
        return self.key_limit_usd if self.key_limit_usd is not None else self.base_usd_cost


class OrderEvent(models.Model):
    """Append-only history: every status change and every outside observation that mattered."""

    order = models.ForeignKey(AITokenOrder, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    source = models.CharField(max_length=20, choices=EventSource.choices)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    message = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="event_order_created_idx")]

    def __str__(self) -> str:
        if self.to_status:
            return f"{self.from_status or '∅'} → {self.to_status} ({self.source})"
        return f"{self.message} ({self.source})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Order events are append-only.")
        super().save(*args, **kwargs)


class RefundStatus(models.TextChoices):
    """Where a refund stands. Only `orders.services.refunds` moves it, with conditional updates.

    requested → sending → sent; sending → unknown when the gateway's answer was lost (never
    resent automatically: staff reconcile by re-reading the payment); sending → refused when the
    gateway refused (nothing left the wallet; the address may change and staff may try again).
    """

    REQUESTED = "requested", "Address given — waiting for staff"
    SENDING = "sending", "Sending (intent recorded)"
    UNKNOWN = "unknown", "Outcome unknown — staff must check"
    SENT = "sent"
    REFUSED = "refused", "Refused by the gateway — nothing sent"


class Refund(models.Model):
    """The one refund of an order: where the customer wants the money, and what the gateway did.

    One per order (the one-to-one key is a unique constraint). The row is moved to `sending`
    *before* the gateway is asked to withdraw, so a crash at any point leaves a trace that stops
    a second withdrawal: only `requested` and `refused` can be claimed for sending.
    """

    order = models.OneToOneField(AITokenOrder, on_delete=models.PROTECT, related_name="refund")
    address = models.CharField(max_length=128)
    network = models.CharField(max_length=20)
    status = models.CharField(max_length=20, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    attempts = models.PositiveSmallIntegerField(default=0)
    sending_since = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    withdrawal_id = models.BigIntegerField(null=True, blank=True)
    tx_ids = models.JSONField(default=list, blank=True)
    total_amount = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    blockchain_fee_amount = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    service_fee_amount = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    receiving_amount = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RefundStatus.values), name="refund_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=RefundStatus.SENT) | Q(refunded_at__isnull=False), name="refund_sent_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[RefundStatus.SENDING, RefundStatus.UNKNOWN]) | Q(sending_since__isnull=False),
                name="refund_sending_has_time",
            ),
            models.CheckConstraint(
                condition=(Q(receiving_amount__isnull=True) | Q(receiving_amount__gt=0))
                & (Q(blockchain_fee_amount__isnull=True) | Q(blockchain_fee_amount__gte=0))
                & (Q(service_fee_amount__isnull=True) | Q(service_fee_amount__gte=0)),
                name="refund_amounts_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="refund_status_updated_idx")]

    def __str__(self) -> str:
        return f"refund of {self.order_id} ({self.status})"

    @property
    def fee_amount(self):
        if self.blockchain_fee_amount is None and self.service_fee_amount is None:
            return None
        return (self.blockchain_fee_amount or Decimal("0")) + (self.service_fee_amount or Decimal("0"))
