"""KryptoExpressClient against recorded HTTP (responses): shapes, Decimal exactness, errors, secrecy."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from payments.client import (
    TRANSIENT_ERRORS,
    KryptoExpressAuthError,
    KryptoExpressClient,
    KryptoExpressError,
    KryptoExpressGatewayError,
    KryptoExpressNetworkError,
    KryptoExpressNotFound,
    KryptoExpressRateLimited,
    KryptoExpressValidationError,
    get_kryptoexpress_client,
    ms_to_datetime,
)

BASE = "https://gateway.test/api"
API_KEY = "live-api-key-DO-NOT-LEAK-1234"
SECRET = "per-order-callback-secret-XYZ"
HASH = "079fbfc747c726204154b102412a1a17fdb399c20d9acc18a2760c2984d26a67"

RECORD_TEXT = (
    '{"id": 634, "paymentType": "PAYMENT", "fiatCurrency": "USD", "fiatAmount": 12.34,'
    ' "cryptoAmount": 0.00001547, "userId": "7afca8a2-9262-4844-be82-107d7d3bcd72", "cryptoCurrency": "BTC",'
    ' "expireDatetime": 1745241933410, "createDatetime": 1745234733410, "paidAt": null,'
    ' "address": "bc1q6guwyuy6h0astkys3u7auput0wzcpxtad4dgwg", "isPaid": false, "isWithdrawn": false,'
    f' "hash": "{HASH}", "callbackUrl": "https://shop.example/payments/kryptoexpress/callback/"}}'
)


@pytest.fixture
def ke():
    return KryptoExpressClient(base_url=BASE + "/", api_key=API_KEY, timeout=(1.5, 4.0))


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _create(ke, amount=Decimal("12.34")):
    return ke.create_payment(
        fiat_amount=amount,
        crypto_currency="BTC",
        callback_url="https://shop.example/payments/kryptoexpress/callback/",
        callback_secret=SECRET,
    )


# --- create_payment ----------------------------------------------------------------------------


def test_create_payment_sends_payment_in_usd_with_key_and_exact_amount(ke, mocked):
    mocked.post(BASE + "/payment", body=RECORD_TEXT, status=201, content_type="application/json")
    # when
    _create(ke)
    # then
    request = mocked.calls[0].request
    assert request.headers["X-Api-Key"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    sent = json.loads(request.body, parse_float=Decimal)
    assert sent == {
        "fiatCurrency": "USD",
        "paymentType": "PAYMENT",
        "fiatAmount": Decimal("12.34"),
        "cryptoCurrency": "BTC",
        "callbackUrl": "https://shop.example/payments/kryptoexpress/callback/",
        "callbackSecret": SECRET,
    }
    assert b'"fiatAmount": 12.34' in request.body  # a JSON number, written from the Decimal's digits
    assert request.req_kwargs["timeout"] == (1.5, 4.0)


@pytest.mark.parametrize("amount", ["1.00", "19.99", "0.10", "12.345678901234567890"])
def test_create_payment_amount_text_is_the_decimal_text(ke, mocked, amount):
    mocked.post(BASE + "/payment", body=RECORD_TEXT, status=201)
    _create(ke, Decimal(amount))
    assert f'"fiatAmount": {amount}'.encode() in mocked.calls[0].request.body


def test_create_payment_parses_the_record_exactly(ke, mocked):
    mocked.post(BASE + "/payment", body=RECORD_TEXT, status=201)
    record = _create(ke)
    assert record.id == 634
    assert record.payment_type == "PAYMENT"
    assert record.fiat_currency == "USD"
    assert record.fiat_amount == Decimal("12.34") and str(record.fiat_amount) == "12.34"
    assert str(record.crypto_amount) == "0.00001547"  # never through float (1.547e-05)
    assert record.crypto_amount.as_tuple() == Decimal("0.00001547").as_tuple()
    assert record.crypto_currency == "BTC"
    assert record.address == "bc1q6guwyuy6h0astkys3u7auput0wzcpxtad4dgwg"
    assert record.hash == HASH
    assert record.is_paid is False and record.is_withdrawn is False
    assert record.created_at == datetime(2025, 4, 21, 11, 25, 33, 410000, tzinfo=UTC)
    assert record.expires_at == datetime(2025, 4, 21, 13, 25, 33, 410000, tzinfo=UTC)
    assert record.expires_at - record.created_at == (datetime(2, 1, 1, 2) - datetime(2, 1, 1))
    assert record.paid_at is None
    assert record.callback_url == "https://shop.example/payments/kryptoexpress/callback/"


@pytest.mark.parametrize("amount", [12.34, 12, "12.34", None])
def test_create_payment_refuses_non_decimal_amounts_without_calling(ke, mocked, amount):
    with pytest.raises(TypeError):
        _create(ke, amount)
    assert len(mocked.calls) == 0


def test_create_payment_refuses_empty_secret(ke, mocked):
    with pytest.raises(ValueError):
        ke.create_payment(
            fiat_amount=Decimal("5.00"), crypto_currency="BTC", callback_url="https://x/", callback_secret=""
        )
    assert len(mocked.calls) == 0


def test_integer_amounts_and_paid_at_parse(ke, mocked):
    text = RECORD_TEXT.replace('"fiatAmount": 12.34', '"fiatAmount": 12').replace(
        '"paidAt": null', '"paidAt": 1745235000001'
    )
    text = text.replace('"cryptoAmount": 0.00001547', '"cryptoAmount": 5').replace('"isPaid": false', '"isPaid": true')
    mocked.get(BASE + "/payment", body=text)
    record = ke.get_payment(HASH)
    assert record.fiat_amount == Decimal(12) and isinstance(record.fiat_amount, Decimal)
    assert record.crypto_amount == Decimal(5) and isinstance(record.crypto_amount, Decimal)
    assert record.paid_at == datetime(2025, 4, 21, 11, 30, 0, 1000, tzinfo=UTC)
    assert record.is_paid is True


def test_raw_is_json_safe_exact_and_secret_free(ke, mocked):
    # given: a gateway that (against its docs) echoes the callback secret
    text = RECORD_TEXT[:-1] + f', "callbackSecret": "{SECRET}"}}'
    mocked.post(BASE + "/payment", body=text, status=201)
    record = _create(ke)
    # then
    assert "callbackSecret" not in record.raw
    dumped = json.dumps(record.raw)
    assert SECRET not in dumped and SECRET not in repr(record)
    assert record.raw["cryptoAmount"] == "0.00001547"
    assert record.raw["id"] == 634 and record.raw["hash"] == HASH


# --- get_payment -------------------------------------------------------------------------------


def test_get_payment_is_unauthenticated_and_passes_hash(ke, mocked):
    mocked.get(BASE + "/payment", body=RECORD_TEXT, match=[matchers.query_param_matcher({"hash": HASH})])
    record = ke.get_payment(HASH)
    assert record.hash == HASH
    assert "X-Api-Key" not in mocked.calls[0].request.headers


@pytest.mark.parametrize("bad_hash", ["", None, 123])
def test_get_payment_refuses_empty_hash(ke, mocked, bad_hash):
    with pytest.raises(ValueError):
        ke.get_payment(bad_hash)
    assert len(mocked.calls) == 0


# --- Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, KryptoExpressValidationError),
        (401, KryptoExpressAuthError),
        (403, KryptoExpressAuthError),
        (404, KryptoExpressNotFound),
        (429, KryptoExpressRateLimited),
        (500, KryptoExpressGatewayError),
        (502, KryptoExpressGatewayError),
        (503, KryptoExpressGatewayError),
    ],
)
def test_error_statuses_map_to_types(ke, mocked, status, exc_type):
    mocked.get(BASE + "/payment", json={"message": "nope", "error": "Err"}, status=status)
    with pytest.raises(exc_type) as excinfo:
        ke.get_payment(HASH)
    assert excinfo.value.status_code == status
    assert "nope" in str(excinfo.value)
    assert isinstance(excinfo.value, KryptoExpressError)
    assert isinstance(excinfo.value, TRANSIENT_ERRORS) == (status == 429 or status >= 500)


def test_unexpected_status_is_the_base_error(ke, mocked):
    mocked.get(BASE + "/payment", body="teapot", status=418)
    with pytest.raises(KryptoExpressError) as excinfo:
        ke.get_payment(HASH)
    assert type(excinfo.value) is KryptoExpressError and excinfo.value.status_code == 418


def test_validation_error_carries_details(ke, mocked):
    mocked.post(
        BASE + "/payment",
        status=400,
        json={
            "message": "Validation failed",
            "error": "Bad Request",
            "details": [{"field": "fiatAmount", "message": "Minimum payment amount is 1.00 USD"}, "junk"],
        },
    )
    with pytest.raises(KryptoExpressValidationError) as excinfo:
        _create(ke, Decimal("0.50"))
    assert excinfo.value.details == [{"field": "fiatAmount", "message": "Minimum payment amount is 1.00 USD"}]


def test_rate_limited_reads_retry_after_from_body(ke, mocked):
    mocked.get(BASE + "/payment", status=429, json={"message": "slow down", "retryAfter": 30})
    with pytest.raises(KryptoExpressRateLimited) as excinfo:
        ke.get_payment(HASH)
    assert excinfo.value.retry_after == 30.0


def test_rate_limited_falls_back_to_header(ke, mocked):
    mocked.get(BASE + "/payment", status=429, body="", headers={"Retry-After": "12"})
    with pytest.raises(KryptoExpressRateLimited) as excinfo:
        ke.get_payment(HASH)
    assert excinfo.value.retry_after == 12.0


def test_rate_limited_without_hint(ke, mocked):
    mocked.get(BASE + "/payment", status=429, json={"retryAfter": "soon"})
    with pytest.raises(KryptoExpressRateLimited) as excinfo:
        ke.get_payment(HASH)
    assert excinfo.value.retry_after is None


@pytest.mark.parametrize(
    "failure", [requests.ConnectTimeout("t"), requests.ReadTimeout("t"), requests.ConnectionError("refused")]
)
def test_network_failures(ke, mocked, failure):
    mocked.get(BASE + "/payment", body=failure)
    with pytest.raises(KryptoExpressNetworkError) as excinfo:
        ke.get_payment(HASH)
    assert excinfo.value.status_code is None


@pytest.mark.parametrize(
    "body",
    [
        "<html>oops</html>",
        "",
        "[]",
        '{"id": "634"}',
        RECORD_TEXT.replace('"fiatAmount": 12.34', '"fiatAmount": NaN'),
        RECORD_TEXT.replace('"fiatAmount": 12.34', '"fiatAmount": -1'),
        RECORD_TEXT.replace('"fiatAmount": 12.34', '"fiatAmount": "a lot"'),
        RECORD_TEXT.replace('"fiatAmount": 12.34, ', ""),
        RECORD_TEXT.replace('"isPaid": false', '"isPaid": "yes"'),
        RECORD_TEXT.replace('"expireDatetime": 1745241933410', '"expireDatetime": "tomorrow"'),
        RECORD_TEXT.replace('"expireDatetime": 1745241933410', '"expireDatetime": 1745241933410.5'),
        RECORD_TEXT.replace(f'"hash": "{HASH}"', '"hash": null'),
    ],
)
def test_malformed_success_responses_are_gateway_errors(ke, mocked, body):
    mocked.get(BASE + "/payment", body=body, status=200)
    with pytest.raises(KryptoExpressGatewayError):
        ke.get_payment(HASH)


def test_api_key_and_secret_never_in_exception_text_or_logs(ke, mocked, caplog):
    # given: a gateway error that quotes the key and the secret back
    mocked.post(
        BASE + "/payment",
        status=401,
        json={
            "message": f"Invalid key {API_KEY} for secret {SECRET}",
            "details": [{"field": API_KEY, "message": f"secret {SECRET} rejected"}],
        },
    )
    caplog.set_level(logging.DEBUG)
    # when
    with pytest.raises(KryptoExpressAuthError) as excinfo:
        _create(ke)
    # then
    rendered = str(excinfo.value) + repr(excinfo.value) + repr(excinfo.value.details) + repr(ke)
    assert API_KEY not in rendered and SECRET not in rendered
    assert "[redacted]" in str(excinfo.value)
    assert API_KEY not in caplog.text and SECRET not in caplog.text


def test_api_key_not_in_logs_on_network_failure(ke, mocked, caplog):
    mocked.post(BASE + "/payment", body=requests.ConnectionError(f"boom {API_KEY}"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KryptoExpressNetworkError) as excinfo:
        _create(ke)
    assert API_KEY not in str(excinfo.value) and API_KEY not in caplog.text
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


def test_redaction_happens_before_truncation(ke, mocked):
    # A key straddling the truncation point must not leak as a prefix.
    message = "x" * 290 + API_KEY
    mocked.get(BASE + "/payment", status=400, json={"message": message})
    with pytest.raises(KryptoExpressValidationError) as excinfo:
        ke.get_payment(HASH)
    assert API_KEY[:10] not in str(excinfo.value)


# --- Prices ------------------------------------------------------------------------------------


def test_get_prices_list_response(ke, mocked):
    mocked.get(
        BASE + "/cryptocurrency/price",
        body='[{"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": 97000.12},'
        ' {"cryptoCurrency": "USDT_TRC20", "fiatCurrency": "USD", "price": 1.0001}]',
        match=[matchers.query_param_matcher({"cryptoCurrency": "BTC,USDT_TRC20", "fiatCurrency": "USD"})],
    )
    prices = ke.get_prices(["BTC", "USDT_TRC20"])
    assert prices == {"BTC": Decimal("97000.12"), "USDT_TRC20": Decimal("1.0001")}
    assert str(prices["BTC"]) == "97000.12"
    assert "X-Api-Key" not in mocked.calls[0].request.headers


def test_get_prices_single_object_response(ke, mocked):
    mocked.get(
        BASE + "/cryptocurrency/price", body='{"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": 97000.0}'
    )
    assert ke.get_prices(["BTC"]) == {"BTC": Decimal("97000.0")}


def test_get_prices_skips_unrequested_malformed_and_other_fiat(ke, mocked):
    mocked.get(
        BASE + "/cryptocurrency/price",
        json=[
            {"cryptoCurrency": "ETH", "fiatCurrency": "USD", "price": 3000},
            {"cryptoCurrency": "BTC", "fiatCurrency": "EUR", "price": 90000},
            {"cryptoCurrency": "USDT_TRC20", "fiatCurrency": "USD", "price": "n/a"},
            {"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": 0},
        ],
    )
    assert ke.get_prices(["BTC", "USDT_TRC20"]) == {}


def test_get_prices_with_no_codes_makes_no_call(ke, mocked):
    assert ke.get_prices([]) == {}
    assert len(mocked.calls) == 0


def test_get_prices_unexpected_shape(ke, mocked):
    mocked.get(BASE + "/cryptocurrency/price", json=["BTC"])
    with pytest.raises(KryptoExpressGatewayError):
        ke.get_prices(["BTC"])


# --- Helpers and factory -----------------------------------------------------------------------


def test_ms_to_datetime_is_exact():
    assert ms_to_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert ms_to_datetime(1745234733411).microsecond == 411000
    assert ms_to_datetime(Decimal("1745234733411")).microsecond == 411000
    assert ms_to_datetime(None) is None
    for bad in (True, "1", 1.5, Decimal("1.5"), Decimal("NaN")):
        with pytest.raises(ValueError):
            ms_to_datetime(bad)


def test_factory_reads_settings_at_call_time(settings, mocked):
    settings.KRYPTO_EXPRESS_API_URL = "https://elsewhere.test/api"
    settings.KRYPTO_EXPRESS_API_KEY = "k-from-settings"
    settings.HTTP_TIMEOUT = (2.0, 7.0)
    mocked.post("https://elsewhere.test/api/payment", body=RECORD_TEXT, status=201)
    client = get_kryptoexpress_client()
    _create(client)
    request = mocked.calls[0].request
    assert request.headers["X-Api-Key"] == "k-from-settings"
    assert request.req_kwargs["timeout"] == (2.0, 7.0)
    assert "k-from-settings" not in repr(client)
