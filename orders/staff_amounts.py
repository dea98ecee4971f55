"""Expected and received crypto amounts for staff, trimmed to the currency's own precision.

The gateway's record of what actually arrived lives in the order's events (`details.payment`);
staff approving or refunding a payment need it side by side with what the order asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from orders.models import AITokenOrder
from payments.currencies import format_quoted, get_currency


@dataclass(frozen=True)
class ReceivedPayment:
    crypto_amount: str  # trimmed to the currency's precision, with its code
    fiat_amount: str
    at: str


def staff_amount(amount: Decimal | None, code: str) -> str:
    """`0.000023000000000000` BTC → "0.00002300 BTC" (the currency's decimals, nothing dropped)."""
    if amount is None:
        return "—"
    currency = get_currency(code)
    return f"{format_quoted(amount, code)} {currency.symbol if currency else code}"


def order_received_payment(*, order: AITokenOrder, timeline: list | None = None) -> ReceivedPayment | None:
    """What the gateway last reported as paid for this order (None if nothing arrived).

    One query; none when `timeline` (all the order's events, oldest first, as the admin's order
    page loads them anyway) is given — the same 20 newest payment events are read either way.
    """
    if timeline is None:
        events = order.events.filter(details__has_key="payment").order_by("-created_at", "-id").only("details")[:20]
    else:
        events = [e for e in reversed(timeline) if isinstance(e.details, dict) and "payment" in e.details][:20]
    for event in events:
        payment = event.details.get("payment") or {}
        if not payment.get("is_paid"):
            continue
        try:
            crypto = Decimal(str(payment.get("crypto_amount")))
        except (InvalidOperation, ValueError):
            continue
        code = str(payment.get("crypto_currency") or order.crypto_type)
        return ReceivedPayment(
            crypto_amount=staff_amount(crypto, code),
            fiat_amount=f"${payment.get('fiat_amount')} {payment.get('fiat_currency') or ''}".strip(),
            at=str(payment.get("paid_at") or ""),
        )
    return None
