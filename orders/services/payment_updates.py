"""Applying what the gateway says about a payment to its order.

Two independent paths learn about payments — the signed callback and the poller — and either
may run twice, late, or at the same moment as the other. So applying a gateway record is a
pure decision on (order status, record, now) followed by a conditional transition: whoever
moves the order first wins, everyone else changes nothing. Only a payment that matches its
order in every respect (paid, type PAYMENT, USD amount, crypto, hash, in time) becomes `paid`;
anything else that was paid goes to staff review and is never fulfilled automatically.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from orders.models import AITokenOrder, EventSource, OrderReason, OrderStatus
from orders.services.transitions import order_transition
from payments.callbacks import InvalidCallback, parse_callback
from payments.client import KryptoExpressClient, PaymentRecord, get_kryptoexpress_client
from payments.signatures import verify_signature
from storefront.encryption import InvalidToken, decrypt

logger = logging.getLogger("orders.payments")

S = OrderStatus
# Signature failures are counted here for staff alerting (a burst means someone is probing).
SIGNATURE_FAILURES_CACHE_KEY = "orders:callback:signature_failures"
SIGNATURE_FAILURES_WINDOW_SECONDS = 3600
# How often one call re-decides after losing a race to another path.
MAX_DECISION_ROUNDS = 3


@dataclass(frozen=True)
class PaymentDecision:
    """What a gateway record means for an order in a given status."""

    to_status: str
    reason: str
    message: str


def payment_record_details(record: PaymentRecord) -> dict[str, Any]:
    """A JSON-safe, secret-free summary of a gateway payment record for the event log."""

    def text(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    return {
        "id": record.id,
        "payment_type": record.payment_type,
        "fiat_currency": record.fiat_currency,
        "fiat_amount": text(record.fiat_amount),
        "crypto_currency": record.crypto_currency,
        "crypto_amount": text(record.crypto_amount),
        "address": record.address,
        "hash": record.hash,
        "is_paid": record.is_paid,
        "is_withdrawn": record.is_withdrawn,
        "created_at": text(record.created_at),
        "expires_at": text(record.expires_at),
        "paid_at": text(record.paid_at),
    }


def payment_mismatch(*, order: AITokenOrder, record: PaymentRecord) -> str:
    """The reason a paid record does not belong to this order as sold ('' when it matches)."""
    if record.hash != order.payment_hash:
        return OrderReason.WRONG_HASH
    if record.payment_type != "PAYMENT":
        return OrderReason.WRONG_TYPE
    if record.crypto_currency != order.crypto_type or record.fiat_currency != "USD":
        return OrderReason.WRONG_CURRENCY
    if record.fiat_amount != order.total_usd_cost:
        return OrderReason.WRONG_AMOUNT
    if order.crypto_amount is not None and record.crypto_amount != order.crypto_amount:
        return OrderReason.WRONG_AMOUNT
    return ""


def effective_expiry(*, order: AITokenOrder, record: PaymentRecord) -> datetime | None:
    """The earlier of the expiry stored at checkout and the gateway's current one (the stricter)."""
    candidates = [value for value in (order.expires_at, record.expires_at) if value is not None]
    return min(candidates) if candidates else None


def payment_decide(*, order: AITokenOrder, status: str, record: PaymentRecord, now: datetime) -> PaymentDecision | None:
    """Pure rule: what `record` means for `order` currently in `status` (None: nothing to do)."""
    expires_at = effective_expiry(order=order, record=record)
    if status == S.PENDING:
        if record.is_paid:
            mismatch = payment_mismatch(order=order, record=record)
            if mismatch:
                return PaymentDecision(S.NEEDS_REVIEW, mismatch, "Paid, but the payment does not match the order")
            paid_at = record.paid_at or now
            if expires_at is not None and paid_at > expires_at:
                return PaymentDecision(S.NEEDS_REVIEW, OrderReason.PAID_LATE, "Paid after the payment expired")
            return PaymentDecision(S.PAID, "", "Payment confirmed by the gateway")
        if expires_at is not None and now >= expires_at:
            return PaymentDecision(S.EXPIRED, "", "Payment window passed unpaid")
        return None
    if status == S.EXPIRED and record.is_paid:
        return PaymentDecision(S.NEEDS_REVIEW, OrderReason.PAID_LATE, "Paid after the order expired")
    return None


def order_apply_payment(*, order: AITokenOrder, record: PaymentRecord, source: str, actor=None) -> bool:
    """Apply one gateway observation to its order; True if this call changed the order.

    Idempotent and race-safe: duplicates and replays find nothing to do, and a call that loses
    the race to another path re-reads the status and decides again. The decision is based on
    `order.status` as passed in (the poller's fresh batch) and re-checked by the conditional
    transition. Customer emails and staff alerts hang off the committed change
    (`orders.transition_effects`).
    """
    status = order.status
    for _ in range(MAX_DECISION_ROUNDS):
        now = timezone.now()
        decision = payment_decide(order=order, status=status, record=record, now=now)
        if decision is None:
            return False
        updates: dict[str, Any] = {}
        if record.is_paid:
            updates["paid_at"] = record.paid_at or order.paid_at or now
        if decision.to_status == S.EXPIRED:
            updates["expires_at"] = effective_expiry(order=order, record=record)
        details = {"payment": payment_record_details(record)}
        if decision.reason:
            details["reason"] = decision.reason
        changed = order_transition(
            order=order, from_status=status, to_status=decision.to_status, source=source, actor=actor,
            message=decision.message, reason=decision.reason, details=details, updates=updates,
        )
        if changed:
            return True
        fresh = AITokenOrder.objects.filter(pk=order.pk).values_list("status", flat=True).first()
        if fresh is None or fresh == status:
            return False
        status = fresh
        order.status = fresh
    return False


def order_refresh_payment(
    *, order: AITokenOrder, source: str, actor=None, client: KryptoExpressClient | None = None
) -> bool:
    """Re-read the order's payment from the gateway (`GET /payment?hash=`) and apply it.

    A callback is only a hint, and a staff "refresh" must see the truth: both come here. Raises
    the client's `KryptoExpressError` when the gateway cannot be read (the order is unchanged).
    """
    if not order.payment_hash:
        return False
    record = (client or get_kryptoexpress_client()).get_payment(order.payment_hash)
    return order_apply_payment(order=order, record=record, source=source, actor=actor)


class CallbackRejected(Exception):
    """A callback the store will not act on; `status_code` is the HTTP answer (4xx)."""

    def __init__(self, status_code: int, reason: str):
        self.status_code = status_code
        self.reason = reason
        super().__init__(reason)


def payment_callback_handle(*, raw_body: bytes, signature: str | None) -> bool:
    """Verify a gateway callback against its order's own secret, then refresh that order.

    Raises `CallbackRejected` (400 malformed, 404 unknown payment, 403 bad or missing
    signature) — nothing changes then. A verified callback is treated as a hint: the payment is
    re-read from the gateway (`KryptoExpressError` propagates so the gateway retries later).
    Returns True if the order changed; duplicates and replays return False.
    """
    try:
        payload = parse_callback(raw_body)
    except InvalidCallback:
        logger.warning("callback rejected: malformed body (%d bytes)", len(raw_body))
        raise CallbackRejected(400, "malformed") from None
    order = AITokenOrder.objects.filter(payment_hash=payload.payment_hash).first()
    if order is None:
        logger.warning("callback rejected: unknown payment hash")
        raise CallbackRejected(404, "unknown payment")
    try:
        secret = decrypt(order.callback_secret_encrypted) if order.callback_secret_encrypted else ""
    except InvalidToken:
        secret = ""
        logger.error("order=%s callback secret cannot be decrypted (encryption keys?)", order.order_id)
    if not secret or not verify_signature(raw_body=raw_body, signature=signature, secret=secret):
        count = _count_signature_failure()
        logger.warning(
            "order=%s callback rejected: %s signature (failures this hour: %d)",
            order.order_id, "missing" if not signature else "invalid", count,
        )
        raise CallbackRejected(403, "bad signature")
    return order_refresh_payment(order=order, source=EventSource.CALLBACK)


def callback_signature_failures() -> int:
    """Callbacks rejected for their signature within the current window (for staff alerting)."""
    return int(cache.get(SIGNATURE_FAILURES_CACHE_KEY, 0) or 0)


def _count_signature_failure() -> int:
    cache.add(SIGNATURE_FAILURES_CACHE_KEY, 0, SIGNATURE_FAILURES_WINDOW_SECONDS)
    try:
        return cache.incr(SIGNATURE_FAILURES_CACHE_KEY)
    except ValueError:  # expired between add and incr
        cache.set(SIGNATURE_FAILURES_CACHE_KEY, 1, SIGNATURE_FAILURES_WINDOW_SECONDS)
        return 1


__all__ = [
    "CallbackRejected",
    "PaymentDecision",
    "callback_signature_failures",
    "effective_expiry",
    "order_apply_payment",
    "order_refresh_payment",
    "payment_callback_handle",
    "payment_decide",
    "payment_mismatch",
    "payment_record_details",
]
