"""A thin, typed client for the KryptoExpress payment gateway (docs/EXTERNAL_APIS.md, "KryptoExpress").

One `requests.Session`, explicit timeouts, no retries (callers decide: the poller simply asks
again next cycle). Amounts are parsed from the JSON text straight into `Decimal` and sent back
as JSON numbers written from `Decimal`, so no float ever touches money. Epoch-millisecond
times become aware UTC datetimes. Errors become one small exception tree; neither the API key
nor a callback secret ever appears in an exception, a log line or `PaymentRecord.raw`.

Why this module is long: it is the whole of the gateway's vocabulary (exception tree, the typed
record and its parser, the three calls); the shared plumbing lives in `storefront.http`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings

from storefront.http import ServiceClient, json_dumps, json_loads, pooled_session, retry_after_seconds, scrub

logger = logging.getLogger("payments.client")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECRET_FIELDS = frozenset({"callbackSecret", "callback_secret", "secret", "apiKey", "api_key"})
_MAX_MESSAGE_CHARS = 300


# --- Exceptions --------------------------------------------------------------------------------


class KryptoExpressError(Exception):
    """Any failure talking to the gateway. `status_code` is None when no HTTP answer arrived.

    `details` lists the gateway's per-field complaints as `{"field": ..., "message": ...}`.
    """

    def __init__(self, message: str, *, status_code: int | None = None, details: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.details: list[dict[str, str]] = details or []


class KryptoExpressValidationError(KryptoExpressError):
    """400: the gateway refused the request's content (e.g. an amount under its 1.00 USD minimum)."""


class KryptoExpressAuthError(KryptoExpressError):
    """401/403: the API key is missing, wrong or not allowed to do this."""


class KryptoExpressNotFound(KryptoExpressError):
    """404: no such payment."""


class KryptoExpressRateLimited(KryptoExpressError):
    """429: slow down; `retry_after` is the gateway's hint in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class KryptoExpressGatewayError(KryptoExpressError):
    """5xx, or a 2xx whose body is not what the contract promises: the gateway's fault."""


class KryptoExpressNetworkError(KryptoExpressError):
    """Timeout or connection failure: no answer at all (status_code is None)."""


TRANSIENT_ERRORS: tuple[type[KryptoExpressError], ...] = (
    KryptoExpressRateLimited,
    KryptoExpressGatewayError,
    KryptoExpressNetworkError,
)
"""Errors worth trying again later; the others need a person or a different request."""


# --- Records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentRecord:
    """A gateway payment, as `POST /payment`, `GET /payment?hash=` and callbacks describe it.

    `raw` is the record as received, made JSON-safe for storing in an event: numbers with a
    fraction are kept as their exact decimal text (strings), and secret-looking fields are dropped.
    """

    id: int
    payment_type: str
    fiat_currency: str
    fiat_amount: Decimal
    crypto_currency: str
    crypto_amount: Decimal | None
    address: str
    hash: str
    is_paid: bool
    is_withdrawn: bool
    created_at: datetime | None
    expires_at: datetime | None
    paid_at: datetime | None
    callback_url: str | None
    raw: dict = field(repr=False, compare=False)


def ms_to_datetime(value: object) -> datetime | None:
    """Epoch milliseconds (as the gateway sends them) to an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("boolean is not a timestamp")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError("timestamp is not a whole number of milliseconds")
        value = int(value)
    if not isinstance(value, int):
        raise ValueError("timestamp is not a number")
    return EPOCH + timedelta(milliseconds=value)


def datetime_to_ms(value: datetime) -> int:
    """An aware datetime as epoch milliseconds (exact, no float)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _decimal(value: object, name: str, *, required: bool) -> Decimal | None:
    if value is None:
        if required:
            raise ValueError(f"{name} is missing")
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name} is not a number") from None
    else:
        raise ValueError(f"{name} is not a number")
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} is not a non-negative finite number")
    return number


def _str(value: object, name: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    return value


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items() if k not in _SECRET_FIELDS}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def payment_record_from_json(data: object) -> PaymentRecord:
    """Build a `PaymentRecord` from a parsed gateway record (ValueError if it breaks the contract)."""
    if not isinstance(data, dict):
        raise ValueError("payment record is not a JSON object")
    record_id = data.get("id")
    if isinstance(record_id, bool) or not isinstance(record_id, int):
        raise ValueError("id is not an integer")
    is_paid = data.get("isPaid", False)
    is_withdrawn = data.get("isWithdrawn", False)
    if not isinstance(is_paid, bool) or not isinstance(is_withdrawn, bool):
        raise ValueError("isPaid/isWithdrawn are not booleans")
    callback_url = data.get("callbackUrl")
    if callback_url is not None and not isinstance(callback_url, str):
        raise ValueError("callbackUrl is not a string")
    payment_type = _str(data.get("paymentType"), "paymentType")
    return PaymentRecord(
        id=record_id,
        payment_type=payment_type,
        fiat_currency=_str(data.get("fiatCurrency"), "fiatCurrency"),
        # A DEPOSIT has no fiat amount until paid; a PAYMENT always has one.
        fiat_amount=_decimal(data.get("fiatAmount"), "fiatAmount", required=payment_type == "PAYMENT") or Decimal("0"),
        crypto_currency=_str(data.get("cryptoCurrency"), "cryptoCurrency"),
        crypto_amount=_decimal(data.get("cryptoAmount"), "cryptoAmount", required=False),
        address=_str(data.get("address"), "address", required=False),
        hash=_str(data.get("hash"), "hash"),
        is_paid=is_paid,
        is_withdrawn=is_withdrawn,
        created_at=ms_to_datetime(data.get("createDatetime")),
        expires_at=ms_to_datetime(data.get("expireDatetime")),
        paid_at=ms_to_datetime(data.get("paidAt")),
        callback_url=callback_url,
        raw=_json_safe(data),
    )


@dataclass(frozen=True)
class Withdrawal:
    """A gateway withdrawal (`POST /wallet/withdrawal`): a dry run when `only_calculate` is true.

    Amounts are crypto units of `crypto_currency`. `tx_ids` is empty on a dry run.
    """

    id: int | None
    withdraw_type: str
    payment_id: int | None
    crypto_currency: str
    to_address: str
    tx_ids: tuple[str, ...]
    receiving_amount: Decimal
    blockchain_fee_amount: Decimal
    service_fee_amount: Decimal
    total_withdrawal_amount: Decimal
    only_calculate: bool
    created_at: datetime | None
    raw: dict = field(repr=False, compare=False)


def withdrawal_from_json(data: object) -> Withdrawal:
    """Build a `Withdrawal` from a parsed gateway answer (ValueError if it breaks the contract)."""
    if not isinstance(data, dict):
        raise ValueError("withdrawal is not a JSON object")
    ids = {}
    for name in ("id", "paymentId"):
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} is not an integer")
        ids[name] = value
    tx_ids = data.get("txIdList") or []
    if not isinstance(tx_ids, list) or not all(isinstance(t, str) and t for t in tx_ids):
        raise ValueError("txIdList is not a list of strings")
    only_calculate = data.get("onlyCalculate")
    if not isinstance(only_calculate, bool):
        raise ValueError("onlyCalculate is not a boolean")
    return Withdrawal(
        id=ids["id"],
        withdraw_type=_str(data.get("withdrawType"), "withdrawType"),
        payment_id=ids["paymentId"],
        crypto_currency=_str(data.get("cryptoCurrency"), "cryptoCurrency"),
        to_address=_str(data.get("toAddress"), "toAddress"),
        tx_ids=tuple(tx_ids),
        receiving_amount=_decimal(data.get("receivingAmount"), "receivingAmount", required=True),
        blockchain_fee_amount=_decimal(data.get("blockchainFeeAmount"), "blockchainFeeAmount", required=False)
        or Decimal("0"),
        service_fee_amount=_decimal(data.get("serviceFeeAmount"), "serviceFeeAmount", required=False) or Decimal("0"),
        total_withdrawal_amount=_decimal(data.get("totalWithdrawalAmount"), "totalWithdrawalAmount", required=False)
        or Decimal("0"),
        only_calculate=only_calculate,
        created_at=ms_to_datetime(data.get("createDatetime")),
        raw=_json_safe(data),
    )


# --- Client ------------------------------------------------------------------------------------


def _error_details(body: object, clean: Callable[[str], str]) -> list[dict[str, str]]:
    """The gateway's per-field complaints, secrets redacted *before* truncation."""
    if not isinstance(body, dict) or not isinstance(body.get("details"), list):
        return []
    details = []
    for item in body["details"][:50]:
        if isinstance(item, dict):
            details.append(
                {
                    "field": clean(str(item.get("field", "")))[:100],
                    "message": clean(str(item.get("message", "")))[:_MAX_MESSAGE_CHARS],
                }
            )
    return details


class KryptoExpressClient(ServiceClient):
    """The gateway's API. Build it with `get_kryptoexpress_client()` unless a test needs otherwise."""

    def default_session(self) -> requests.Session:
        return _new_session()

    # --- Public calls ----------------------------------------------------------------------

    def create_payment(
        self, *, fiat_amount: Decimal, crypto_currency: str, callback_url: str, callback_secret: str
    ) -> PaymentRecord:
        """Ask the gateway for a `PAYMENT` of exactly `fiat_amount` USD in `crypto_currency`.

        Always `paymentType: PAYMENT` and `fiatCurrency: USD` (money rule 2, docs/ARCHITECTURE.md: crypto only in return
        for tokens, at the order's exact total). The gateway signs its callbacks with
        `callback_secret`; it is sent here and nowhere else.
        """
        if not isinstance(fiat_amount, Decimal) or not fiat_amount.is_finite():
            raise TypeError("fiat_amount must be a finite Decimal")
        if not callback_secret:
            raise ValueError("callback_secret must not be empty")
        payload = {
            "fiatCurrency": "USD",
            "paymentType": "PAYMENT",
            "fiatAmount": fiat_amount,
            "cryptoCurrency": crypto_currency,
            "callbackUrl": callback_url,
            "callbackSecret": callback_secret,
        }
        body = self._request("POST", "/payment", payload=payload, authenticated=True, secrets=(callback_secret,))
        return self._record(body, "POST /payment")

    def get_payment(self, payment_hash: str) -> PaymentRecord:
        """The gateway's current view of a payment (no authentication, per the contract)."""
        if not isinstance(payment_hash, str) or not payment_hash:
            raise ValueError("payment_hash must be a non-empty string")
        body = self._request("GET", "/payment", params={"hash": payment_hash})
        return self._record(body, "GET /payment")

    def get_prices(self, codes: Iterable[str], fiat_currency: str = "USD") -> dict[str, Decimal]:
        """Price of one unit of each crypto code in `fiat_currency`; codes the gateway omits are absent."""
        wanted = [code for code in dict.fromkeys(codes) if code]
        if not wanted:
            return {}
        params = {"cryptoCurrency": ",".join(wanted), "fiatCurrency": fiat_currency}
        body = self._request("GET", "/cryptocurrency/price", params=params)
        items = body if isinstance(body, list) else [body]
        prices: dict[str, Decimal] = {}
        for item in items:
            if not isinstance(item, dict):
                raise KryptoExpressGatewayError("GET /cryptocurrency/price: unexpected response shape", status_code=200)
            code = item.get("cryptoCurrency")
            if code not in wanted or item.get("fiatCurrency", fiat_currency) != fiat_currency:
                continue
            try:
                price = _decimal(item.get("price"), "price", required=True)
            except ValueError:
                logger.warning("kryptoexpress price for %s is malformed; skipped", code)
                continue
            if price and price > 0:
                prices[code] = price
        return prices

    def get_wallet(self) -> dict[str, Decimal]:
        """`GET /wallet`: the balance per currency code of paid payments not yet withdrawn."""
        body = self._request("GET", "/wallet", authenticated=True)
        if not isinstance(body, dict):
            raise KryptoExpressGatewayError("GET /wallet: unexpected response shape", status_code=200)
        balances: dict[str, Decimal] = {}
        for code, value in body.items():
            try:
                amount = _decimal(value, str(code), required=False)
            except ValueError:
                raise KryptoExpressGatewayError(f"GET /wallet: balance of {str(code)[:20]} is malformed") from None
            if amount is not None:
                balances[str(code)] = amount
        return balances

    def withdraw_payment(
        self, *, payment_id: int, crypto_currency: str, to_address: str, only_calculate: bool
    ) -> Withdrawal:
        """`POST /wallet/withdrawal`, `withdrawType: SINGLE`: send one payment's funds to `to_address`.

        With `only_calculate` nothing is sent (the dry run's fees and received amount). Without
        it this moves money: the caller must have recorded its intent first, and must treat a
        `KryptoExpressNetworkError` or `KryptoExpressGatewayError` as "may have happened" — never
        as "did not happen" — because the gateway may have sent the funds before the answer was lost.
        """
        if isinstance(payment_id, bool) or not isinstance(payment_id, int) or payment_id <= 0:
            raise ValueError("payment_id must be a positive integer")
        if not to_address:
            raise ValueError("to_address must not be empty")
        payload = {
            "withdrawType": "SINGLE",
            "paymentId": payment_id,
            "cryptoCurrency": crypto_currency,
            "toAddress": to_address,
            "onlyCalculate": bool(only_calculate),
        }
        body = self._request("POST", "/wallet/withdrawal", payload=payload, authenticated=True)
        try:
            withdrawal = withdrawal_from_json(body)
        except ValueError as exc:
            what = "POST /wallet/withdrawal"
            raise KryptoExpressGatewayError(f"{what}: malformed withdrawal ({exc})", status_code=200) from None
        if withdrawal.payment_id not in (None, payment_id) or withdrawal.only_calculate != bool(only_calculate):
            raise KryptoExpressGatewayError(
                "POST /wallet/withdrawal: answer is for a different request", status_code=200
            )
        return withdrawal

    # --- Plumbing --------------------------------------------------------------------------

    def _record(self, body: object, what: str) -> PaymentRecord:
        try:
            return payment_record_from_json(body)
        except ValueError as exc:
            raise KryptoExpressGatewayError(f"{what}: malformed payment record ({exc})", status_code=200) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        authenticated: bool = False,
        secrets: Iterable[str] = (),
    ) -> Any:
        secrets = tuple(secrets)
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json_dumps(payload)
            headers["Content-Type"] = "application/json"
        if authenticated:
            headers["X-Api-Key"] = self._api_key
        what = f"{method} {path}"
        started = time.monotonic()
        try:
            response = self.session.request(
                method, self.base_url + path, params=params, data=data, headers=headers, timeout=self.timeout
            )
        except requests.Timeout:
            logger.warning("kryptoexpress %s timed out", what)
            raise KryptoExpressNetworkError(f"{what}: timed out") from None
        except requests.RequestException as exc:
            logger.warning("kryptoexpress %s failed: %s", what, type(exc).__name__)
            raise KryptoExpressNetworkError(f"{what}: connection failed ({type(exc).__name__})") from None
        elapsed_ms = (time.monotonic() - started) * 1000
        status = response.status_code
        logger.debug("kryptoexpress %s -> %s in %.0f ms", what, status, elapsed_ms)

        try:
            body = json_loads(response.content) if response.content else None
            parsed = True
        except (ValueError, RecursionError):
            body, parsed = None, False

        if 200 <= status < 300:
            if not parsed or body is None:
                raise KryptoExpressGatewayError(f"{what}: response is not JSON", status_code=status)
            return body
        raise self._error(what, status, body, response, secrets)

    def _error(
        self, what: str, status: int, body: object, response: requests.Response, secrets: tuple[str, ...]
    ) -> KryptoExpressError:
        def clean(text: str) -> str:
            return scrub(text, (self._api_key, *secrets))

        message = ""
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error") or "")
        message = clean(message)[:_MAX_MESSAGE_CHARS] or response.reason or "error"
        details = _error_details(body, clean)
        text = f"{what} -> HTTP {status}: {message}"
        logger.warning("kryptoexpress %s -> HTTP %s", what, status)
        kwargs: dict[str, Any] = {"status_code": status, "details": details}
        if status == 400 or status == 422:
            return KryptoExpressValidationError(text, **kwargs)
        if status in (401, 403):
            return KryptoExpressAuthError(text, **kwargs)
        if status == 404:
            return KryptoExpressNotFound(text, **kwargs)
        if status == 429:
            return KryptoExpressRateLimited(text, retry_after=retry_after_seconds(
                body.get("retryAfter") if isinstance(body, dict) else None, response.headers.get("Retry-After")
            ), **kwargs)
        if status >= 500:
            return KryptoExpressGatewayError(text, **kwargs)
        return KryptoExpressError(text, **kwargs)


def _new_session() -> requests.Session:
    """A session whose connection pool fits the poller's thread pool (no pool-full churn)."""
    pool = max(10, int(getattr(settings, "PAYMENT_POLL_CONCURRENCY", 10)))
    return pooled_session(pool_connections=4, pool_maxsize=pool)


def get_kryptoexpress_client(*, session: requests.Session | None = None) -> KryptoExpressClient:
    """A client configured from settings as they are now (tests may change them at any time)."""
    return KryptoExpressClient(
        base_url=settings.KRYPTO_EXPRESS_API_URL,
        api_key=settings.KRYPTO_EXPRESS_API_KEY,
        timeout=settings.HTTP_TIMEOUT,
        session=session,
    )
