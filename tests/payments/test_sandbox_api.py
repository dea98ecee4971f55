"""The KryptoExpress sandbox in-process (Django test client): the API's rules and shapes, the control page."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import NoReverseMatch, clear_url_caches, reverse

from payments.callbacks import parse_callback
from payments.client import payment_record_from_json
from payments.sandbox import delivery, gateway
from payments.sandbox.links import sandbox_control_url
from payments.sandbox.models import SandboxPayment
from payments.signatures import verify_signature

API = "/sandbox/kryptoexpress/api"
SECRET = "order-secret-0123456789abcdef"
CALLBACK_URL = "https://shop.example/payments/kryptoexpress/callback/"

pytestmark = pytest.mark.django_db


def _payload(**overrides):
    payload = {
        "fiatCurrency": "USD",
        "paymentType": "PAYMENT",
        "fiatAmount": 12.34,
        "cryptoCurrency": "BTC",
        "callbackUrl": CALLBACK_URL,
        "callbackSecret": SECRET,
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not ...}


def _post(client, settings, payload, key=None, raw=None):
    headers = {} if key is False else {"HTTP_X_API_KEY": key or settings.KRYPTO_EXPRESS_API_KEY}
    body = raw if raw is not None else json.dumps(payload)
    return client.post(API + "/payment", data=body, content_type="application/json", **headers)


def _record(response):
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content, parse_float=Decimal)


def _fields(response):
    return {d["field"] for d in _record(response).get("details", [])}


# --- POST /payment -----------------------------------------------------------------------------


def test_create_returns_a_realistic_record(client, settings):
    # when
    response = _post(client, settings, _payload())
    # then
    assert response.status_code == 201
    record = _record(response)
    assert set(record) == {
        "id", "paymentType", "fiatCurrency", "fiatAmount", "cryptoAmount", "userId", "cryptoCurrency",
        "expireDatetime", "createDatetime", "paidAt", "address", "isPaid", "isWithdrawn", "hash", "callbackUrl",
    }  # fmt: skip
    assert record["paymentType"] == "PAYMENT" and record["fiatCurrency"] == "USD"
    assert record["fiatAmount"] == Decimal("12.34")
    assert record["cryptoAmount"] == Decimal("0.00012722")  # 12.34 / 97000 = 0.000127216... rounded up
    assert re.fullmatch(r"[0-9a-f]{64}", record["hash"])
    assert re.fullmatch(r"bc1q[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{38}", record["address"])
    assert record["expireDatetime"] - record["createDatetime"] == 2 * 3600 * 1000
    now_ms = time.time() * 1000
    assert abs(record["createDatetime"] - now_ms) < 60_000
    assert record["paidAt"] is None and record["isPaid"] is False and record["isWithdrawn"] is False
    assert record["callbackUrl"] == CALLBACK_URL
    assert isinstance(record["id"], int)


def test_create_never_echoes_the_secret(client, settings):
    response = _post(client, settings, _payload())
    assert SECRET.encode() not in response.content
    assert b"callbackSecret" not in response.content and b"ecret" not in response.content
    lookup = client.get(API + "/payment", {"hash": _record(response)["hash"]})
    assert SECRET.encode() not in lookup.content and b"ecret" not in lookup.content


def test_amounts_are_json_numbers_not_strings(client, settings):
    response = _post(client, settings, _payload())
    assert b'"fiatAmount": 12.34' in response.content
    assert b'"cryptoAmount": 0.00012722' in response.content


def test_tron_address_for_usdt_trc20(client, settings):
    record = _record(_post(client, settings, _payload(cryptoCurrency="USDT_TRC20", fiatAmount=5)))
    assert re.fullmatch(r"T[1-9A-HJ-NP-Za-km-z]{33}", record["address"])
    assert record["cryptoAmount"] == Decimal("5")


@pytest.mark.parametrize(
    ("code", "pattern"),
    [
        ("ETH", r"0x[0-9a-f]{40}"),
        ("USDC_BEP20", r"0x[0-9a-f]{40}"),
        ("LTC", r"ltc1q[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{38}"),
        ("SOL", r"[1-9A-HJ-NP-Za-km-z]{44}"),
        ("DOGE", r"D[1-9A-HJ-NP-Za-km-z]{33}"),
        ("TRX", r"T[1-9A-HJ-NP-Za-km-z]{33}"),
    ],
)
def test_addresses_look_like_their_network(client, settings, code, pattern):
    record = _record(_post(client, settings, _payload(cryptoCurrency=code)))
    assert re.fullmatch(pattern, record["address"])


def test_minimum_payment_is_exactly_one_dollar(client, settings):
    assert _post(client, settings, _payload(fiatAmount=1.00)).status_code == 201
    refused = _post(client, settings, _payload(fiatAmount=0.99))
    assert refused.status_code == 400
    assert _fields(refused) == {"fiatAmount"}
    assert "1.00" in json.dumps(_record(refused)["details"])
    assert SandboxPayment.objects.count() == 1


def test_minimum_applies_to_the_usd_equivalent(client, settings):
    assert _post(client, settings, _payload(fiatCurrency="EUR", fiatAmount=0.95)).status_code == 201  # ≈ 1.03 USD
    assert _post(client, settings, _payload(fiatCurrency="EUR", fiatAmount=0.90)).status_code == 400  # ≈ 0.98 USD


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cryptoCurrency": "XMR"}, "cryptoCurrency"),
        ({"cryptoCurrency": "btc"}, "cryptoCurrency"),
        ({"cryptoCurrency": None}, "cryptoCurrency"),
        ({"paymentType": "REFUND"}, "paymentType"),
        ({"paymentType": ...}, "paymentType"),
        ({"fiatCurrency": "CHF"}, "fiatCurrency"),
        ({"fiatAmount": ...}, "fiatAmount"),
        ({"fiatAmount": "12.34"}, "fiatAmount"),
        ({"fiatAmount": True}, "fiatAmount"),
        ({"fiatAmount": 12.345}, "fiatAmount"),
        ({"fiatAmount": -5}, "fiatAmount"),
        ({"fiatAmount": 0}, "fiatAmount"),
        ({"fiatAmount": 1e30}, "fiatAmount"),
        ({"fiatAmount": [12]}, "fiatAmount"),
        ({"callbackUrl": ...}, "callbackUrl"),
        ({"callbackUrl": "javascript:alert(1)"}, "callbackUrl"),
        ({"callbackUrl": "ftp://x.example/"}, "callbackUrl"),
        ({"callbackSecret": 12345}, "callbackSecret"),
        ({"callbackSecret": "x" * 300}, "callbackSecret"),
    ],
)
def test_validation_failures_name_the_field(client, settings, overrides, field):
    response = _post(client, settings, _payload(**overrides))
    assert response.status_code == 400
    body = _record(response)
    assert body["message"] and body["error"] == "Bad Request"
    assert field in _fields(response)
    assert SandboxPayment.objects.count() == 0


@pytest.mark.parametrize("code", ["USDT_TRC20", "USDT_ERC20", "USDC_SOL"])
def test_stablecoins_refuse_deposit(client, settings, code):
    response = _post(client, settings, _payload(paymentType="DEPOSIT", cryptoCurrency=code, fiatAmount=...))
    assert response.status_code == 400
    assert _fields(response) == {"cryptoCurrency"}


def test_deposit_in_a_coin_needs_no_amount(client, settings):
    response = _post(client, settings, _payload(paymentType="DEPOSIT", fiatAmount=...))
    assert response.status_code == 201
    record = _record(response)
    assert "fiatAmount" not in record and "cryptoAmount" not in record


@pytest.mark.parametrize("key", [False, "", "wrong-key", "sandbox-api-key "])
def test_wrong_or_missing_key_is_401(client, settings, key):
    response = _post(client, settings, _payload(), key=key if key != "" else False)
    assert response.status_code == 401
    assert _record(response)["error"] == "Unauthorized"
    assert SandboxPayment.objects.count() == 0


def test_key_is_checked_against_settings_at_request_time(client, settings):
    settings.KRYPTO_EXPRESS_API_KEY = "rotated-key"
    assert _post(client, settings, _payload(), key="sandbox-api-key").status_code == 401
    assert _post(client, settings, _payload(), key="rotated-key").status_code == 201


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[]", b'"x"', b'{"fiatAmount": NaN}', b"[" * 5000, b'{"a": "' + b"x" * 20_000 + b'"}']
)
def test_malformed_bodies_are_400(client, settings, raw):
    response = _post(client, settings, None, raw=raw)
    assert response.status_code == 400
    assert _record(response)["message"]


def test_other_methods_are_405(client):
    assert client.put(API + "/payment").status_code == 405
    assert client.delete(API + "/payment").status_code == 405


# --- GET /payment ------------------------------------------------------------------------------


def test_get_returns_the_same_record_without_auth(client, settings):
    created = _record(_post(client, settings, _payload()))
    response = client.get(API + "/payment", {"hash": created["hash"]})
    assert response.status_code == 200
    assert _record(response) == created


def test_get_unknown_hash_is_404_json(client):
    response = client.get(API + "/payment", {"hash": "0" * 64})
    assert response.status_code == 404
    assert _record(response)["message"] == "Payment not found"


@pytest.mark.parametrize("query", [{}, {"hash": ""}, {"hash": "x" * 500}, {"hash": "' OR 1=1 --"}])
def test_get_bad_hash(client, query):
    response = client.get(API + "/payment", query)
    assert response.status_code in (400, 404)
    assert _record(response)["message"]


def test_record_parses_with_the_store_client(client, settings):
    created = _post(client, settings, _payload())
    record = payment_record_from_json(json.loads(created.content, parse_float=Decimal))
    assert record.crypto_amount == Decimal("0.00012722")
    assert record.expires_at.tzinfo is UTC
    assert record.created_at.microsecond % 1000 == 0


# --- Prices and currency lists -----------------------------------------------------------------


def test_price_for_one_code_is_an_object(client):
    response = client.get(API + "/cryptocurrency/price", {"cryptoCurrency": "BTC", "fiatCurrency": "USD"})
    assert response.status_code == 200
    assert _record(response) == {"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": Decimal("97000")}


def test_price_for_several_codes_is_a_list(client):
    response = client.get(API + "/cryptocurrency/price", {"cryptoCurrency": "BTC,USDT_TRC20"})
    assert _record(response) == [
        {"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": Decimal("97000")},
        {"cryptoCurrency": "USDT_TRC20", "fiatCurrency": "USD", "price": Decimal("1")},
    ]


def test_price_in_another_fiat(client):
    response = client.get(API + "/cryptocurrency/price", {"cryptoCurrency": "BTC", "fiatCurrency": "EUR"})
    assert _record(response)["price"] == Decimal("89240")


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"cryptoCurrency": ""},
        {"cryptoCurrency": "XMR"},
        {"cryptoCurrency": "BTC,NOPE"},
        {"cryptoCurrency": "BTC", "fiatCurrency": "XYZ"},
    ],
)
def test_price_validation(client, query):
    response = client.get(API + "/cryptocurrency/price", query)
    assert response.status_code == 400
    assert _record(response)["details"]


def test_currency_lists(client):
    native = _record(client.get(API + "/cryptocurrency"))
    everything = _record(client.get(API + "/cryptocurrency/all"))
    stable = _record(client.get(API + "/cryptocurrency/stable"))
    assert "BTC" in native and "USDT_TRC20" not in native
    assert set(stable) == {"USDT_TRC20", "USDT_ERC20", "USDT_BEP20", "USDT_SOL", "USDC_ERC20", "USDC_BEP20", "USDC_SOL"}
    assert sorted(everything) == sorted(native + stable) and len(everything) == 14


def test_added_latency_setting(client, settings):
    settings.SANDBOX_KRYPTO_EXPRESS_LATENCY_MS = 60
    started = time.monotonic()
    client.get(API + "/cryptocurrency/price", {"cryptoCurrency": "BTC"})
    assert time.monotonic() - started >= 0.06


# --- Control page ------------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch):
    """Callbacks the sandbox would send (captured instead of delivered)."""
    captured = []
    monkeypatch.setattr(delivery, "start_delivery", captured.append)
    return captured


def _create(client, settings, **overrides):
    return _record(_post(client, settings, _payload(**overrides)))


def _control(payment_hash):
    return reverse("kryptoexpress_sandbox:control", args=[payment_hash])


def _act(client, payment_hash, action, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(_control(payment_hash), {"action": action})


def test_control_page_shows_payment_and_buttons(client, settings):
    record = _create(client, settings)
    response = client.get(_control(record["hash"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert record["address"] in html and record["hash"] in html
    assert "0.00012722" in html and "12.34" in html
    for action in ("pay", "pay_wrong_amount", "expire", "pay_late"):
        assert f'name="action" value="{action}"' in html
    assert SECRET not in html
    assert "<script>" not in html  # CSP: no inline scripts


def test_control_page_unknown_hash_is_404(client):
    assert client.get(_control("f" * 64)).status_code == 404


def test_pay(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings)
    before = int(time.time() * 1000)
    response = _act(client, record["hash"], "pay", django_capture_on_commit_callbacks)
    assert response.status_code == 302
    after = _record(client.get(API + "/payment", {"hash": record["hash"]}))
    assert after["isPaid"] is True
    assert before - 5 <= after["paidAt"] <= int(time.time() * 1000) + 5
    assert after["paidAt"] < after["expireDatetime"]
    assert (after["fiatAmount"], after["cryptoAmount"]) == (record["fiatAmount"], record["cryptoAmount"])
    assert len(sent) == 1


def test_pay_wrong_amount_records_about_ninety_percent(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings)
    _act(client, record["hash"], "pay_wrong_amount", django_capture_on_commit_callbacks)
    after = _record(client.get(API + "/payment", {"hash": record["hash"]}))
    assert after["isPaid"] is True
    assert after["fiatAmount"] == Decimal("11.10")  # 90% of 12.34, rounded down
    assert after["cryptoAmount"] == Decimal("0.00011449")  # 90% of 0.00012722, rounded down
    assert after["fiatAmount"] != record["fiatAmount"] and after["cryptoAmount"] < record["cryptoAmount"]


def test_expire(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings)
    _act(client, record["hash"], "expire", django_capture_on_commit_callbacks)
    after = _record(client.get(API + "/payment", {"hash": record["hash"]}))
    assert after["isPaid"] is False and after["paidAt"] is None
    assert after["expireDatetime"] < time.time() * 1000
    assert after["fiatAmount"] == record["fiatAmount"]


def test_pay_late(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings)
    _act(client, record["hash"], "pay_late", django_capture_on_commit_callbacks)
    after = _record(client.get(API + "/payment", {"hash": record["hash"]}))
    assert after["isPaid"] is True
    assert after["expireDatetime"] < after["paidAt"] <= time.time() * 1000 + 5
    assert after["fiatAmount"] == record["fiatAmount"] and after["cryptoAmount"] == record["cryptoAmount"]


def test_pay_after_wrong_amount_restores_the_full_amount(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings)
    _act(client, record["hash"], "pay_wrong_amount", django_capture_on_commit_callbacks)
    _act(client, record["hash"], "pay", django_capture_on_commit_callbacks)
    after = _record(client.get(API + "/payment", {"hash": record["hash"]}))
    assert after["fiatAmount"] == record["fiatAmount"] and after["isPaid"] is True


@pytest.mark.parametrize("action", ["", "PAY", "refund", "pay ", "x" * 1000])
def test_invalid_action_is_400_and_changes_nothing(client, settings, sent, django_capture_on_commit_callbacks, action):
    record = _create(client, settings)
    response = _act(client, record["hash"], action, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert b"Unknown action" in response.content
    assert _record(client.get(API + "/payment", {"hash": record["hash"]})) == record
    assert sent == []


def test_control_post_without_action_field_is_400(client, settings, sent):
    record = _create(client, settings)
    assert client.post(_control(record["hash"]), {}).status_code == 400


def test_callback_is_the_signed_record(client, settings, sent, django_capture_on_commit_callbacks):
    # given
    record = _create(client, settings)
    # when
    _act(client, record["hash"], "pay", django_capture_on_commit_callbacks)
    # then
    [callback] = sent
    assert callback.url == CALLBACK_URL and callback.action == "pay"
    assert verify_signature(raw_body=callback.body, signature=callback.signature, secret=SECRET)
    assert not verify_signature(raw_body=callback.body, signature=callback.signature, secret="other")
    body = json.loads(callback.body, parse_float=Decimal)
    assert body == _record(client.get(API + "/payment", {"hash": record["hash"]}))
    assert body["isPaid"] is True
    assert parse_callback(callback.body).payment_hash == record["hash"]
    assert SECRET.encode() not in callback.body and b"ecret" not in callback.body


def test_callback_signature_covers_the_python_compact_form(client, settings, sent, django_capture_on_commit_callbacks):
    # Like the real gateway: the body keeps 0.00001031, the signature covers `1.031e-05`, so the
    # store's raw-bytes check misses and its compact check must catch it.
    record = _create(client, settings, fiatAmount=1)
    _act(client, record["hash"], "pay", django_capture_on_commit_callbacks)
    [callback] = sent
    assert b'"cryptoAmount":0.00001031' in callback.body
    raw_signature = hmac.new(SECRET.encode(), callback.body, hashlib.sha512).hexdigest()
    assert raw_signature != callback.signature
    assert verify_signature(raw_body=callback.body, signature=callback.signature, secret=SECRET)


def test_no_secret_means_unsigned_callback(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings, callbackSecret=...)
    _act(client, record["hash"], "pay", django_capture_on_commit_callbacks)
    assert sent[0].signature is None


def test_callback_is_sent_only_after_commit(client, settings, sent):
    # Without the commit (the test transaction never commits), nothing is sent.
    record = _create(client, settings)
    client.post(_control(record["hash"]), {"action": "pay"})
    assert sent == []


def test_resend_callback_changes_nothing_but_sends_again(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings)
    _act(client, record["hash"], "pay", django_capture_on_commit_callbacks)
    paid = _record(client.get(API + "/payment", {"hash": record["hash"]}))
    _act(client, record["hash"], "resend_callback", django_capture_on_commit_callbacks)
    assert _record(client.get(API + "/payment", {"hash": record["hash"]})) == paid
    assert len(sent) == 2 and sent[0].body == sent[1].body


def test_control_redirect_keeps_a_safe_return_link(client, settings, sent, django_capture_on_commit_callbacks):
    record = _create(client, settings)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_control(record["hash"]) + "?return=/orders/abc/", {"action": "pay"})
    assert response.status_code == 302 and "return=%2Forders%2Fabc%2F" in response["Location"]
    page = client.get(response["Location"])
    assert b'href="/orders/abc/"' in page.content and b"Done: Pay in full" in page.content


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_control_ignores_unsafe_return_links(client, settings, target):
    record = _create(client, settings)
    page = client.get(_control(record["hash"]), {"return": target})
    assert target.encode() not in page.content


def test_control_index_lists_payments_in_constant_queries(client, settings, django_assert_max_num_queries):
    for _ in range(3):
        _create(client, settings)
    with django_assert_max_num_queries(3):
        few = client.get(reverse("kryptoexpress_sandbox:control_index"))
    for _ in range(12):
        _create(client, settings)
    with django_assert_max_num_queries(3):
        many = client.get(reverse("kryptoexpress_sandbox:control_index"))
    assert many.content.count(b"/sandbox/kryptoexpress/control/") == 15
    assert few.status_code == many.status_code == 200


def test_control_page_queries_do_not_grow_with_attempts(client, settings, django_assert_max_num_queries):
    record = _create(client, settings)
    payment = SandboxPayment.objects.get(hash=record["hash"])
    for attempt in range(1, 6):
        payment.callback_attempts.create(attempt=attempt, url=CALLBACK_URL, status_code=500)
    with django_assert_max_num_queries(4):
        page = client.get(_control(record["hash"]))
    assert page.content.count(b"HTTP 500") == 5


# --- Sandbox on/off ----------------------------------------------------------------------------


def test_control_url_helper(settings):
    assert sandbox_control_url("ab" * 32) == f"/sandbox/kryptoexpress/control/{'ab' * 32}/"
    assert sandbox_control_url("ab" * 32, return_to="/orders/x/").endswith("?return=%2Forders%2Fx%2F")
    settings.SANDBOX = False
    assert sandbox_control_url("ab" * 32) is None


def test_sandbox_routes_do_not_exist_when_sandbox_is_off(settings, client):
    import storefront.urls

    settings.SANDBOX = False
    try:
        importlib.reload(storefront.urls)
        clear_url_caches()
        with pytest.raises(NoReverseMatch):
            reverse("kryptoexpress_sandbox:api_payment")
        assert client.get(API + "/cryptocurrency").status_code == 404
    finally:
        settings.SANDBOX = True
        importlib.reload(storefront.urls)
        clear_url_caches()
    assert reverse("kryptoexpress_sandbox:api_payment") == API + "/payment"


def test_status_labels():
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    payment = SandboxPayment(
        requested_fiat_amount=Decimal("5.00"),
        fiat_amount=Decimal("5.00"),
        expires_at=datetime(2025, 1, 1, 13, tzinfo=UTC),
    )
    assert gateway.payment_status_label(payment, now=now) == "waiting for payment"
    payment.is_paid, payment.paid_at = True, now
    assert gateway.payment_status_label(payment, now=now) == "paid"
    payment.fiat_amount = Decimal("4.50")
    assert gateway.payment_status_label(payment, now=now) == "paid (wrong amount)"
    payment.paid_at = datetime(2025, 1, 1, 14, tzinfo=UTC)
    assert gateway.payment_status_label(payment, now=now) == "paid after expiry"
    payment.is_paid = False
    assert gateway.payment_status_label(payment, now=datetime(2025, 1, 1, 14, tzinfo=UTC)) == "expired"
