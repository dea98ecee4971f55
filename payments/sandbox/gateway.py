"""The imitation KryptoExpress gateway: what its API and control page do, without HTTP.

It follows docs/EXTERNAL_APIS.md ("KryptoExpress") to the letter so the store's real client works against it
unchanged: the same enums and validation (amount ≥ 1.00 USD for PAYMENT, stablecoins
PAYMENT-only), the same record JSON (epoch milliseconds, numbers written from Decimal, never a
callback secret), deterministic demo rates, and signed callbacks with the real retry schedule.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from payments.currencies import CURRENCIES, get_currency
from payments.sandbox.addresses import sandbox_address
from payments.sandbox.delivery import callback_dispatch
from payments.sandbox.models import SandboxPayment
from payments.sandbox.records import plain_decimal

PAYMENT_WINDOW = timedelta(hours=2)
"""How long a payment stays open, like the real gateway (expire = create + 2 h)."""

MIN_PAYMENT_USD = Decimal("1.00")
MAX_FIAT_AMOUNT = Decimal("1000000")
SANDBOX_MERCHANT_ID = uuid.uuid5(uuid.NAMESPACE_URL, "https://kryptoexpress.pro/sandbox/merchant")

DEMO_USD_PRICES: dict[str, Decimal] = {
    "BTC": Decimal("97000"),
    "LTC": Decimal("85"),
    "SOL": Decimal("150"),
    "TRX": Decimal("0.25"),
    "ETH": Decimal("3400"),
    "BNB": Decimal("600"),
    "DOGE": Decimal("0.2"),
    **{code: Decimal("1.00") for code, currency in CURRENCIES.items() if currency.is_stable},
}
"""Deterministic demo prices (USD per unit), so tests and demos get repeatable amounts."""

FIAT_PER_USD: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "JPY": Decimal("150"),
}
"""The gateway's fiat enum with fixed demo exchange rates."""

ACTIONS: dict[str, str] = {
    "pay": "Pay in full",
    "pay_wrong_amount": "Pay the wrong amount (~90%)",
    "expire": "Let it expire unpaid",
    "pay_late": "Pay after expiry",
    "resend_callback": "Resend the last callback",
}


class SandboxValidationError(Exception):
    """The request breaks the gateway's rules; `details` are `{"field", "message"}` pairs."""

    def __init__(self, details: list[dict[str, str]]):
        super().__init__("Validation failed")
        self.details = details


class UnknownAction(ValueError):
    """The control form sent an action the sandbox does not offer."""


@dataclass(frozen=True)
class PriceQuote:
    crypto_currency: str
    fiat_currency: str
    price: Decimal


# --- Prices ------------------------------------------------------------------------------------


def demo_price(*, crypto_currency: str, fiat_currency: str = "USD") -> Decimal:
    """Price of one unit of crypto in fiat at the demo rates (exact: a product, no division)."""
    return plain_decimal(DEMO_USD_PRICES[crypto_currency] * FIAT_PER_USD[fiat_currency])


def sandbox_prices(*, crypto_codes: list[str], fiat_currency: str) -> list[PriceQuote]:
    """Demo prices for `GET /cryptocurrency/price`; raises SandboxValidationError for unknown codes."""
    details = []
    if not crypto_codes:
        details.append({"field": "cryptoCurrency", "message": "cryptoCurrency is required"})
    details += [
        {"field": "cryptoCurrency", "message": f"Unsupported cryptocurrency: {code[:20]}"}
        for code in crypto_codes
        if code not in CURRENCIES
    ]
    if fiat_currency not in FIAT_PER_USD:
        details.append({"field": "fiatCurrency", "message": f"Unsupported fiat currency: {fiat_currency[:20]}"})
    if details:
        raise SandboxValidationError(details)
    return [
        PriceQuote(code, fiat_currency, demo_price(crypto_currency=code, fiat_currency=fiat_currency))
        for code in dict.fromkeys(crypto_codes)
    ]


# --- Creating payments -------------------------------------------------------------------------


def _now_ms() -> datetime:
    """Now, truncated to the millisecond (the record's resolution), so round trips are exact."""
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


def _validate_callback_url(value: object, details: list[dict[str, str]]) -> str:
    if not isinstance(value, str) or not value:
        details.append({"field": "callbackUrl", "message": "callbackUrl is required"})
        return ""
    parts = urlsplit(value)
    if len(value) > 2000 or parts.scheme not in ("http", "https") or not parts.netloc:
        details.append({"field": "callbackUrl", "message": "callbackUrl must be an http(s) URL"})
    return value


def sandbox_payment_create(*, payload: object) -> SandboxPayment:
    """Create a payment the way `POST /payment` does, or raise SandboxValidationError.

    Mirrors the gateway's rules: known enums; `fiatAmount` required for PAYMENT, a number with
    at most two decimals, worth at least 1.00 USD; stablecoins accept PAYMENT only; a callback
    URL. The crypto amount is the fiat amount at the demo rate, rounded up to the currency's
    decimals (the same rounding as the store's preview, so the two agree).
    """
    if not isinstance(payload, dict):
        raise SandboxValidationError([{"field": "body", "message": "Request body must be a JSON object"}])
    details: list[dict[str, str]] = []

    payment_type = payload.get("paymentType")
    if payment_type not in SandboxPayment.PaymentType.values:
        details.append({"field": "paymentType", "message": "paymentType must be PAYMENT or DEPOSIT"})
    fiat_currency = payload.get("fiatCurrency")
    if fiat_currency not in FIAT_PER_USD:
        details.append({"field": "fiatCurrency", "message": f"fiatCurrency must be one of {', '.join(FIAT_PER_USD)}"})
    crypto_code = payload.get("cryptoCurrency")
    currency = get_currency(crypto_code)
    if currency is None:
        details.append({"field": "cryptoCurrency", "message": "Unsupported cryptoCurrency"})
    elif currency.is_stable and payment_type == SandboxPayment.PaymentType.DEPOSIT:
        details.append({"field": "cryptoCurrency", "message": "Stablecoins support paymentType PAYMENT only"})

    fiat_amount: Decimal | None = None
    if payment_type == SandboxPayment.PaymentType.PAYMENT:
        raw_amount = payload.get("fiatAmount")
        fiat_amount = _number(raw_amount)
        if raw_amount is None:
            details.append({"field": "fiatAmount", "message": "fiatAmount is required for PAYMENT"})
        elif fiat_amount is None:
            details.append({"field": "fiatAmount", "message": "fiatAmount must be a number"})
        elif abs(fiat_amount) > MAX_FIAT_AMOUNT:
            details.append({"field": "fiatAmount", "message": "fiatAmount is out of range"})
            fiat_amount = None
        elif fiat_amount != fiat_amount.quantize(Decimal("0.01")):
            details.append({"field": "fiatAmount", "message": "fiatAmount must have at most 2 decimal places"})
            fiat_amount = None
        elif fiat_currency in FIAT_PER_USD and fiat_amount / FIAT_PER_USD[fiat_currency] < MIN_PAYMENT_USD:
            details.append({"field": "fiatAmount", "message": "Minimum payment amount is the equivalent of 1.00 USD"})
            fiat_amount = None

    callback_url = _validate_callback_url(payload.get("callbackUrl"), details)
    callback_secret = payload.get("callbackSecret")
    if callback_secret is None:
        callback_secret = ""
    elif not isinstance(callback_secret, str) or len(callback_secret) > 256:
        details.append(
            {"field": "callbackSecret", "message": "callbackSecret must be a string of at most 256 characters"}
        )
        callback_secret = ""

    if details:
        raise SandboxValidationError(details)
    assert currency is not None

    crypto_amount = None
    if fiat_amount is not None:
        crypto_amount = crypto_for_fiat(code=currency.code, fiat_amount=fiat_amount, fiat_currency=fiat_currency)
    now = _now_ms()
    return SandboxPayment.objects.create(
        hash=secrets.token_hex(32),
        payment_type=payment_type,
        fiat_currency=fiat_currency,
        fiat_amount=fiat_amount,
        crypto_amount=crypto_amount,
        requested_fiat_amount=fiat_amount,
        requested_crypto_amount=crypto_amount,
        crypto_currency=currency.code,
        address=sandbox_address(currency.code),
        user_id=SANDBOX_MERCHANT_ID,
        callback_url=callback_url,
        callback_secret=callback_secret,
        created_at=now,
        expires_at=now + PAYMENT_WINDOW,
    )


def crypto_for_fiat(*, code: str, fiat_amount: Decimal, fiat_currency: str = "USD") -> Decimal:
    """`fiat_amount` in crypto at the demo rate, rounded up to the currency's decimals."""
    currency = get_currency(code)
    if currency is None:
        raise ValueError(f"unknown crypto currency {code!r}")
    with localcontext() as context:
        context.prec = 50
        price = demo_price(crypto_currency=code, fiat_currency=fiat_currency)
        return (fiat_amount / price).quantize(currency.quantum, rounding=ROUND_UP)


def sandbox_payment_get(*, payment_hash: str) -> SandboxPayment | None:
    """The payment `GET /payment?hash=` shows, or None."""
    if not isinstance(payment_hash, str) or not payment_hash or len(payment_hash) > 128:
        return None
    return SandboxPayment.objects.filter(hash=payment_hash).first()


# --- The control page's actions ----------------------------------------------------------------


def _settle(payment: SandboxPayment, *, fraction: Decimal | None, now: datetime) -> None:
    """Mark paid; `fraction` < 1 means only that share of the requested amount arrived."""
    base_fiat = payment.requested_fiat_amount
    base_crypto = payment.requested_crypto_amount
    if base_fiat is None:  # a DEPOSIT: pretend the customer sent the equivalent of 10.00
        base_fiat = Decimal("10.00")
        base_crypto = crypto_for_fiat(
            code=payment.crypto_currency, fiat_amount=base_fiat, fiat_currency=payment.fiat_currency
        )
    if fraction is None:
        payment.fiat_amount, payment.crypto_amount = base_fiat, base_crypto
    else:
        quantum = get_currency(payment.crypto_currency).quantum  # type: ignore[union-attr]
        payment.fiat_amount = (base_fiat * fraction).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        payment.crypto_amount = (base_crypto * fraction).quantize(quantum, rounding=ROUND_DOWN)
    payment.is_paid = True
    payment.paid_at = now


def _restore_unpaid(payment: SandboxPayment) -> None:
    payment.fiat_amount = payment.requested_fiat_amount
    payment.crypto_amount = payment.requested_crypto_amount
    payment.is_paid = False
    payment.paid_at = None


def sandbox_payment_act(*, payment_hash: str, action: str) -> SandboxPayment:
    """Apply a control-page action and send the signed callback once it is committed.

    - `pay`: the full amount arrived (isPaid, paidAt now).
    - `pay_wrong_amount`: paid, but only ~90% arrived: the record's fiatAmount and cryptoAmount
      say so, and the store must notice the mismatch.
    - `expire`: the payment window closed unpaid (expireDatetime in the past).
    - `pay_late`: the window closed, then the full amount arrived after it.
    - `resend_callback`: no change; the current record is sent again (duplicate/replay tests).

    Raises `UnknownAction` for anything else and `SandboxPayment.DoesNotExist` for an unknown hash.
    """
    if action not in ACTIONS:
        raise UnknownAction(action)
    now = _now_ms()
    with transaction.atomic():
        payment = SandboxPayment.objects.select_for_update().get(hash=payment_hash)
        if action == "pay":
            _settle(payment, fraction=None, now=now)
        elif action == "pay_wrong_amount":
            _settle(payment, fraction=Decimal("0.9"), now=now)
        elif action == "expire":
            _restore_unpaid(payment)
            payment.expires_at = min(payment.expires_at, now - timedelta(seconds=1))
        elif action == "pay_late":
            payment.expires_at = min(payment.expires_at, now - timedelta(minutes=5))
            _settle(payment, fraction=None, now=now)
        payment.last_action = action
        payment.save()
        callback_dispatch(payment=payment, action=action)
    return payment


def payment_status_label(payment: SandboxPayment, *, now: datetime | None = None) -> str:
    """A plain-words state for the control page."""
    now = now or timezone.now()
    if payment.is_paid:
        if payment.paid_at and payment.paid_at > payment.expires_at:
            return "paid after expiry"
        if payment.requested_fiat_amount is not None and payment.fiat_amount != payment.requested_fiat_amount:
            return "paid (wrong amount)"
        return "paid"
    if payment.expires_at <= now:
        return "expired"
    return "waiting for payment"
