"""Helpers for the checkout/payment suites: gateway records shaped exactly like KryptoExpress's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import responses
import simplejson
from django.utils import timezone

from orders.models import AITokenOrder
from payments.client import PaymentRecord, datetime_to_ms, payment_record_from_json
from payments.signatures import sign_body

GATEWAY_URL = "https://gateway.test/api"

# Token counts a customer might type that are not a buyable number, with the message they get
# (the same on the catalogue page and from the quote API).
UNREADABLE_TOKEN_COUNTS = [
    ("", "Enter a number of tokens."),
    ("abc", "Enter the number of tokens in digits, e.g. 250000."),
    ("1.5", "Tokens are counted in whole numbers — no decimals."),
    ("-5", "The number of tokens can't be negative."),
    ("0", "The smallest order is 100 tokens."),
    ("99", "The smallest order is 100 tokens."),
    ("1e9", "Write the number of tokens out in full, without an exponent (e.g. 1000000, not 1e6)."),
    ("10**30", "Enter the number of tokens in digits, e.g. 250000."),
    (str(10**30), "That's far more tokens than any order can hold."),
    ("１０００", "Use the digits 0–9 only."),
    ("١٠٠٠", "Use the digits 0–9 only."),
    ("9" * 10_240, "That's far more than a number of tokens. Enter digits only, e.g. 250000."),
]
CALLBACK_SECRET = "per-order-secret-for-tests-only"


def ms(value: datetime | None) -> int | None:
    return None if value is None else datetime_to_ms(value)


def record_json(order: AITokenOrder, **overrides: Any) -> dict[str, Any]:
    """The gateway's JSON record for `order` (unpaid unless overridden), as Decimals."""
    created = order.created_at or timezone.now()
    data: dict[str, Any] = {
        "id": int(order.payment_id or 634),
        "paymentType": "PAYMENT",
        "fiatCurrency": "USD",
        "fiatAmount": order.total_usd_cost,
        "cryptoAmount": order.crypto_amount,
        "userId": "7afca8a2-0000-0000-0000-000000000000",
        "cryptoCurrency": order.crypto_type,
        "expireDatetime": ms(order.expires_at),
        "createDatetime": ms(created),
        "paidAt": None,
        "address": order.address,
        "isPaid": False,
        "isWithdrawn": False,
        "hash": order.payment_hash,
        "callbackUrl": "https://shop.test/payments/kryptoexpress/callback/",
    }
    data.update(overrides)
    return data


def paid_json(order: AITokenOrder, paid_at: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    return record_json(order, isPaid=True, paidAt=ms(paid_at or timezone.now()), **overrides)


def record_for(order: AITokenOrder, **overrides: Any) -> PaymentRecord:
    """A parsed record (through the real client's parser)."""
    return payment_record_from_json(json.loads(body_of(record_json(order, **overrides)), parse_float=Decimal))


def paid_record(order: AITokenOrder, paid_at: datetime | None = None, **overrides: Any) -> PaymentRecord:
    return record_for(order, isPaid=True, paidAt=ms(paid_at or timezone.now()), **overrides)


def body_of(data: dict[str, Any]) -> bytes:
    """Compact JSON written from Decimal, like the gateway sends."""
    return simplejson.dumps(data, use_decimal=True, separators=(",", ":")).encode()


def signed(data: dict[str, Any], secret: str = CALLBACK_SECRET) -> tuple[bytes, str]:
    body = body_of(data)
    return body, sign_body(body, secret)


@contextmanager
def mocked_gateway(settings, *, all_requests_fired: bool = False) -> Iterator[responses.RequestsMock]:
    """The store's gateway client pointed at GATEWAY_URL, answered by `responses` (no network).

    `all_requests_fired=True` also fails the test when a served answer was never asked for.
    """
    settings.KRYPTO_EXPRESS_API_URL = GATEWAY_URL
    with responses.RequestsMock(assert_all_requests_are_fired=all_requests_fired) as rsps:
        yield rsps


def serve_usd_rates(gateway: responses.RequestsMock, *, btc: float, usdt: float = 1) -> None:
    """The gateway's price list (what the rates task reads) answers with these USD rates."""
    gateway.get(
        GATEWAY_URL + "/cryptocurrency/price",
        json=[
            {"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": btc},
            {"cryptoCurrency": "USDT_TRC20", "fiatCurrency": "USD", "price": usdt},
        ],
    )
