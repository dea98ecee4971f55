"""A sandbox payment as the gateway shows it: the record dict and its JSON text.

Shared by the API views, the control page and callback delivery (docs/EXTERNAL_APIS.md,
"KryptoExpress: the payment record").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import simplejson

from payments.client import datetime_to_ms
from payments.currencies import format_amount
from payments.sandbox.models import SandboxPayment


def plain_decimal(value: Decimal) -> Decimal:
    """The same number without trailing zeros or exponent noise (12.30 → 12.3, 97000 stays 97000)."""
    return Decimal(format_amount(value))


def payment_record(payment: SandboxPayment) -> dict[str, Any]:
    """The payment record exactly as the gateway shows it (never with the callback secret)."""
    record: dict[str, Any] = {
        "id": payment.pk,
        "paymentType": payment.payment_type,
        "fiatCurrency": payment.fiat_currency,
    }
    if payment.fiat_amount is not None:
        record["fiatAmount"] = plain_decimal(payment.fiat_amount)
    if payment.crypto_amount is not None:
        record["cryptoAmount"] = plain_decimal(payment.crypto_amount)
    record.update(
        {
            "userId": str(payment.user_id),
            "cryptoCurrency": payment.crypto_currency,
            "expireDatetime": datetime_to_ms(payment.expires_at),
            "createDatetime": datetime_to_ms(payment.created_at),
            "paidAt": datetime_to_ms(payment.paid_at) if payment.paid_at else None,
            "address": payment.address,
            "isPaid": payment.is_paid,
            "isWithdrawn": payment.is_withdrawn,
            "hash": payment.hash,
            "callbackUrl": payment.callback_url or None,
        }
    )
    return record


def record_json(payment: SandboxPayment, *, compact: bool = False, indent: int | None = None) -> str:
    """The record as JSON text, numbers written from Decimal (12.34, 0.00001547), like the gateway."""
    separators = (",", ":") if compact else (",", ": ") if indent else (", ", ": ")
    return simplejson.dumps(payment_record(payment), use_decimal=True, separators=separators, indent=indent)
