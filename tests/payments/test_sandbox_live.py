"""The store's KryptoExpress client against the sandbox over real HTTP (live_server), callbacks included."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import pytest
import requests

from payments.callbacks import parse_callback
from payments.client import (
    KryptoExpressAuthError,
    KryptoExpressClient,
    KryptoExpressNotFound,
    KryptoExpressValidationError,
    get_kryptoexpress_client,
)
from payments.rates import cached_rates, refresh_rates
from payments.sandbox.delivery import CALLBACK_SCHEDULE_SECONDS, wait_for_deliveries
from payments.sandbox.gateway import crypto_for_fiat
from payments.sandbox.models import SandboxCallbackAttempt, SandboxPayment
from payments.signatures import verify_signature
from tests.live_sandboxes import use_live_gateway

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

SECRET = "live-order-secret-abcdef0123456789"


@pytest.fixture
def gateway_url(live_server, settings):
    return use_live_gateway(settings, live_server.url)


@pytest.fixture
def ke(gateway_url):
    return get_kryptoexpress_client()


def _create(ke, amount="12.34", code="BTC", callback_url="https://shop.example/cb/", secret=SECRET):
    return ke.create_payment(
        fiat_amount=Decimal(amount), crypto_currency=code, callback_url=callback_url, callback_secret=secret
    )


class ControlPage:
    """A person clicking the sandbox control page's buttons, over HTTP with CSRF like a browser."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def act(self, payment_hash: str, action: str) -> requests.Response:
        url = f"{self.base_url}/sandbox/kryptoexpress/control/{payment_hash}/"
        page = self.session.get(url, timeout=10)
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return self.session.post(
            url, data={"csrfmiddlewaretoken": token, "action": action}, allow_redirects=False, timeout=10
        )


@pytest.fixture
def control(live_server):
    return ControlPage(live_server.url)


# --- API over HTTP -----------------------------------------------------------------------------


def test_create_and_get_round_trip(ke):
    created = _create(ke)
    assert created.payment_type == "PAYMENT" and created.fiat_currency == "USD"
    assert created.fiat_amount == Decimal("12.34")
    assert created.crypto_amount == crypto_for_fiat(code="BTC", fiat_amount=Decimal("12.34")) == Decimal("0.00012722")
    assert created.address.startswith("bc1q") and len(created.hash) == 64
    assert (created.expires_at - created.created_at).total_seconds() == 7200
    assert created.callback_url == "https://shop.example/cb/"
    assert SECRET not in json.dumps(created.raw)
    fetched = ke.get_payment(created.hash)
    assert fetched == created
    assert fetched.raw == created.raw


def test_usdt_trc20_payment(ke):
    record = _create(ke, amount="7.50", code="USDT_TRC20")
    assert record.crypto_amount == Decimal("7.5") and record.address.startswith("T")


def test_secret_is_stored_for_signing_but_never_returned(ke):
    record = _create(ke)
    assert SandboxPayment.objects.get(hash=record.hash).callback_secret == SECRET
    assert SECRET not in requests.get(ke.base_url + "/payment", params={"hash": record.hash}, timeout=5).text


@pytest.mark.parametrize("amount", ["0.99", "0.50", "0.01"])
def test_under_the_minimum_is_a_validation_error(ke, amount):
    with pytest.raises(KryptoExpressValidationError) as excinfo:
        _create(ke, amount=amount)
    assert excinfo.value.status_code == 400
    assert [d["field"] for d in excinfo.value.details] == ["fiatAmount"]
    assert SandboxPayment.objects.count() == 0


def test_unknown_currency_is_a_validation_error(ke):
    with pytest.raises(KryptoExpressValidationError) as excinfo:
        _create(ke, code="XMR")
    assert excinfo.value.details[0]["field"] == "cryptoCurrency"


def test_stablecoin_deposit_is_refused_over_http(gateway_url, settings):
    # The store's client never sends DEPOSIT; this is the sandbox enforcing the gateway's rule.
    response = requests.post(
        gateway_url + "/payment",
        json={
            "fiatCurrency": "USD",
            "paymentType": "DEPOSIT",
            "cryptoCurrency": "USDT_TRC20",
            "callbackUrl": "https://x.example/",
        },
        headers={"X-Api-Key": settings.KRYPTO_EXPRESS_API_KEY},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "cryptoCurrency"


def test_wrong_key_is_an_auth_error(gateway_url):
    wrong = KryptoExpressClient(base_url=gateway_url, api_key="not-the-key", timeout=(2, 5))
    with pytest.raises(KryptoExpressAuthError) as excinfo:
        _create(wrong)
    assert excinfo.value.status_code == 401
    assert "not-the-key" not in str(excinfo.value)


def test_unknown_hash_is_not_found(ke):
    with pytest.raises(KryptoExpressNotFound):
        ke.get_payment("0" * 64)


def test_prices_and_rate_refresh(ke, settings):
    assert ke.get_prices(["BTC", "USDT_TRC20"]) == {"BTC": Decimal("97000"), "USDT_TRC20": Decimal("1")}
    assert ke.get_prices(["BTC"]) == {"BTC": Decimal("97000")}
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    refresh_rates()
    assert cached_rates() == {"BTC": Decimal("97000"), "USDT_TRC20": Decimal("1")}


# --- Control actions over HTTP -----------------------------------------------------------------


def test_control_actions_produce_the_right_records(ke, control):
    paid = _create(ke)
    assert control.act(paid.hash, "pay").status_code == 302
    record = ke.get_payment(paid.hash)
    assert record.is_paid and record.paid_at <= record.expires_at
    assert (record.fiat_amount, record.crypto_amount) == (paid.fiat_amount, paid.crypto_amount)

    wrong = _create(ke)
    control.act(wrong.hash, "pay_wrong_amount")
    record = ke.get_payment(wrong.hash)
    assert record.is_paid
    assert record.fiat_amount == Decimal("11.10") and record.crypto_amount == Decimal("0.00011449")

    expired = _create(ke)
    control.act(expired.hash, "expire")
    record = ke.get_payment(expired.hash)
    assert not record.is_paid and record.paid_at is None
    assert record.expires_at < record.created_at + (expired.expires_at - expired.created_at)

    late = _create(ke)
    control.act(late.hash, "pay_late")
    record = ke.get_payment(late.hash)
    assert record.is_paid and record.paid_at > record.expires_at
    assert record.fiat_amount == late.fiat_amount

    assert control.act(late.hash, "bogus").status_code == 400
    assert ke.get_payment(late.hash) == record
    wait_for_deliveries()


def test_control_post_without_csrf_token_is_refused(ke, live_server):
    record = _create(ke)
    response = requests.post(
        f"{live_server.url}/sandbox/kryptoexpress/control/{record.hash}/", data={"action": "pay"}, timeout=5
    )
    assert response.status_code == 403
    assert not ke.get_payment(record.hash).is_paid


# --- Callbacks over HTTP -----------------------------------------------------------------------


def test_callback_arrives_signed(ke, control, callback_receiver):
    # given
    record = _create(ke, amount="1.00", callback_url=callback_receiver.url)
    # when
    control.act(record.hash, "pay")
    [callback] = callback_receiver.wait_for(1)
    assert wait_for_deliveries()
    # then
    assert callback.path == "/callback/"
    assert callback.headers["Content-Type"] == "application/json"
    assert verify_signature(raw_body=callback.body, signature=callback.headers["X-Signature"], secret=SECRET)
    assert not verify_signature(raw_body=callback.body, signature=callback.headers["X-Signature"], secret="guess")
    assert parse_callback(callback.body).payment_hash == record.hash
    body = json.loads(callback.body, parse_float=Decimal)
    assert body["isPaid"] is True and body["cryptoAmount"] == Decimal("0.00001031")
    assert SECRET.encode() not in callback.body
    assert len(callback_receiver.received) == 1  # answered 200: no retry
    attempt = SandboxCallbackAttempt.objects.get()
    assert (attempt.attempt, attempt.status_code, attempt.ok, attempt.action) == (1, 200, True, "pay")


def test_failed_callbacks_are_retried_on_the_scaled_schedule(ke, control, callback_receiver, settings):
    # given: a receiver that fails twice, then accepts
    # (the schedule counts from before the first send, the offsets from its arrival: a scale at which
    # that first request's latency under load is small beside the 10% tolerance)
    settings.SANDBOX_CALLBACK_DELAY_SCALE = SCALE = 0.005
    callback_receiver.statuses.extend([500, 503])
    record = _create(ke, callback_url=callback_receiver.url)
    # when
    control.act(record.hash, "expire")
    received = callback_receiver.wait_for(3)
    assert wait_for_deliveries()
    # then
    assert len(received) == 3
    assert received[0].body == received[1].body == received[2].body
    offsets = [r.at - received[0].at for r in received]
    assert offsets[1] >= CALLBACK_SCHEDULE_SECONDS[1] * SCALE * 0.9
    assert offsets[2] >= CALLBACK_SCHEDULE_SECONDS[2] * SCALE * 0.9
    for callback in received:
        assert verify_signature(raw_body=callback.body, signature=callback.headers["X-Signature"], secret=SECRET)
    assert json.loads(received[0].body)["isPaid"] is False
    attempts = list(SandboxCallbackAttempt.objects.order_by("attempt").values_list("attempt", "status_code", "ok"))
    assert attempts == [(1, 500, False), (2, 503, False), (3, 200, True)]


def test_callbacks_give_up_after_five_attempts(ke, control, callback_receiver, settings):
    settings.SANDBOX_CALLBACK_DELAY_SCALE = 0.0005
    callback_receiver.default_status = 500
    record = _create(ke, callback_url=callback_receiver.url)
    control.act(record.hash, "pay")
    assert wait_for_deliveries()
    time.sleep(0.1)
    assert len(callback_receiver.received) == 5
    assert SandboxCallbackAttempt.objects.filter(ok=False).count() == 5


def test_unreachable_receiver_is_retried_then_abandoned(ke, control, settings):
    settings.SANDBOX_CALLBACK_DELAY_SCALE = 0.0005
    record = _create(ke, callback_url="http://127.0.0.1:9/unreachable/")  # discard port: refused
    control.act(record.hash, "pay")
    assert wait_for_deliveries()
    attempts = SandboxCallbackAttempt.objects.all()
    assert attempts.count() == 5
    assert all(a.status_code is None and a.error for a in attempts)


def test_unsigned_callback_without_secret(gateway_url, control, callback_receiver, settings):
    response = requests.post(
        gateway_url + "/payment",
        json={"fiatCurrency": "USD", "paymentType": "PAYMENT", "fiatAmount": 5, "cryptoCurrency": "BTC",
              "callbackUrl": callback_receiver.url},
        headers={"X-Api-Key": settings.KRYPTO_EXPRESS_API_KEY},
        timeout=5,
    )  # fmt: skip
    assert response.status_code == 201
    control.act(response.json()["hash"], "pay")
    [callback] = callback_receiver.wait_for(1)
    assert "X-Signature" not in callback.headers


def test_the_store_side_check_rejects_a_forged_callback(ke, control, callback_receiver):
    # A callback whose body was altered in transit no longer verifies under the order's secret.
    record = _create(ke, callback_url=callback_receiver.url)
    control.act(record.hash, "pay_wrong_amount")
    [callback] = callback_receiver.wait_for(1)
    forged = callback.body.replace(b'"fiatAmount":11.1', b'"fiatAmount":12.34')
    assert forged != callback.body
    assert not verify_signature(raw_body=forged, signature=callback.headers["X-Signature"], secret=SECRET)
