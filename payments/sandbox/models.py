"""Sandbox state: the imitation gateway's payments and its callback deliveries.

Only the sandbox (offline mode, tests) uses these tables. Like the real gateway, the sandbox
keeps each payment's callback secret to sign callbacks with, and never shows it to anyone.
"""

from __future__ import annotations

from django.db import models


class SandboxPayment(models.Model):
    """One payment created through the sandbox's `POST /payment`."""

    class PaymentType(models.TextChoices):
        PAYMENT = "PAYMENT", "Payment (exact amount)"
        DEPOSIT = "DEPOSIT", "Deposit (any amount)"

    hash = models.CharField(max_length=64, unique=True)
    payment_type = models.CharField(max_length=10, choices=PaymentType.choices)
    fiat_currency = models.CharField(max_length=3)
    # What the record currently says (a wrong-amount payment lowers these) ...
    fiat_amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    crypto_amount = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    # ... and what was asked for when the payment was created.
    requested_fiat_amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    requested_crypto_amount = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    crypto_currency = models.CharField(max_length=16)
    address = models.CharField(max_length=128)
    user_id = models.UUIDField()
    callback_url = models.CharField(max_length=2000, blank=True)
    callback_secret = models.CharField(max_length=256, blank=True)
    is_paid = models.BooleanField(default=False)
    is_withdrawn = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    last_action = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "sandbox payment"

    def __str__(self) -> str:
        amount = self.requested_fiat_amount if self.requested_fiat_amount is not None else "any"
        return f"#{self.pk} {self.payment_type} {amount} {self.fiat_currency} in {self.crypto_currency}"


class SandboxCallbackAttempt(models.Model):
    """One attempt to deliver a callback (shown on the control page, for debugging)."""

    payment = models.ForeignKey(SandboxPayment, on_delete=models.CASCADE, related_name="callback_attempts")
    created_at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=32, blank=True)
    attempt = models.PositiveSmallIntegerField()
    url = models.CharField(max_length=2000)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "sandbox callback attempt"

    def __str__(self) -> str:
        return f"callback #{self.attempt} for payment {self.payment_id}: {self.status_code or self.error}"


class SandboxWithdrawal(models.Model):
    """One real (not dry-run) withdrawal made through the sandbox's `POST /wallet/withdrawal`."""

    withdraw_type = models.CharField(max_length=10)
    payment = models.OneToOneField(
        SandboxPayment, null=True, blank=True, on_delete=models.PROTECT, related_name="withdrawal"
    )
    crypto_currency = models.CharField(max_length=16)
    to_address = models.CharField(max_length=128)
    tx_ids = models.JSONField(default=list)
    receiving_amount = models.DecimalField(max_digits=36, decimal_places=18)
    blockchain_fee_amount = models.DecimalField(max_digits=36, decimal_places=18)
    service_fee_amount = models.DecimalField(max_digits=36, decimal_places=18)
    total_withdrawal_amount = models.DecimalField(max_digits=36, decimal_places=18)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        verbose_name = "sandbox withdrawal"

    def __str__(self) -> str:
        return f"withdrawal #{self.pk} {self.withdraw_type} {self.total_withdrawal_amount} {self.crypto_currency}"
