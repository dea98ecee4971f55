"""Checkout: review page, placing the order, the gateway payment, and every way it must refuse."""

from __future__ import annotations

import json
import logging
import re
import uuid
from decimal import Decimal
from unittest import mock

import pytest
import requests
import responses
from django.urls import reverse
from django.utils import timezone

from orders.models import AITokenOrder, EventSource, OrderStatus
from orders.services.capacity import CapacityUnavailable
from orders.services.placing import CheckoutUnavailable, QuoteChanged, order_place
from storefront.encryption import decrypt
from tests.factories import AIModelFactory, OrderFactory
from tests.orders.checkout_support import GATEWAY_URL, mocked_gateway, ms, serve_usd_rates

pytestmark = pytest.mark.django_db
SONNET = "anthropic/claude-3-sonnet"
NEW_URL = reverse("orders:new")
CREATE_URL = reverse("orders:list")


@pytest.fixture(autouse=True)
def capacity_ok():
    """OpenRouter has room (the capacity guard has its own tests); one test overrides it."""
    with mock.patch("orders.services.placing.ensure_capacity", return_value=None) as guard:
        yield guard


@pytest.fixture
def gateway(settings):
    settings.SITE_URL = "https://shop.test"
    with mocked_gateway(settings) as rsps:
        yield rsps


def gateway_creates(gateway, *, crypto_amount="0.00002300", status=201, **overrides):
    """Answer `POST /payment` like the gateway: a record for what was asked. Returns the sent payloads."""
    sent: list[dict] = []

    def reply(request):
        payload = json.loads(request.body, parse_float=Decimal)
        sent.append(payload)
        now = timezone.now()
        record = {
            "id": 634 + len(sent),
            "paymentType": payload["paymentType"],
            "fiatCurrency": payload["fiatCurrency"],
            "fiatAmount": str(payload["fiatAmount"]),
            "cryptoAmount": crypto_amount,
            "userId": "7afca8a2",
            "cryptoCurrency": payload["cryptoCurrency"],
            "expireDatetime": ms(now + timezone.timedelta(hours=2)),
            "createDatetime": ms(now),
            "paidAt": None,
            "address": "bc1qgatewayaddress000000000000000000",
            "isPaid": False,
            "isWithdrawn": False,
            "hash": uuid.uuid4().hex + uuid.uuid4().hex,
            "callbackUrl": payload["callbackUrl"],
        }
        record.update(overrides)
        # Numbers as JSON numbers written from the exact text, like the gateway.
        text = json.dumps(record)
        for key in ("fiatAmount", "cryptoAmount"):
            if isinstance(record.get(key), str):
                text = text.replace(f'"{key}": "{record[key]}"', f'"{key}": {record[key]}')
        return status, {"Content-Type": "application/json"}, text

    gateway.add_callback(responses.POST, GATEWAY_URL + "/payment", callback=reply)
    return sent


def form_data(**overrides):
    data = {
        "model": SONNET,
        "tokens": "200000",
        "crypto": "BTC",
        "seen_total": "2.16",
        "idempotency_key": str(uuid.uuid4()),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- the review page ----------------------------------------------------------------------------


def test_review_page_needs_login(client, sonnet):
    response = client.get(NEW_URL, {"model": SONNET, "tokens": "200000"})
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_review_page_shows_the_server_quote_crypto_previews_and_an_idempotency_key(user_client, sonnet, gateway):
    # given: rates were cached by the beat task
    serve_usd_rates(gateway, btc=97000)
    from payments.rates import refresh_rates

    refresh_rates()
    calls_before = len(gateway.calls)
    # when
    response = user_client.get(NEW_URL, {"model": SONNET, "tokens": "200,000"})
    # then: no remote call while rendering
    assert len(gateway.calls) == calls_before
    assert response.status_code == 200
    html = response.content.decode()
    assert "$2.16" in html and "$1.80" in html and "$0.36" in html
    assert 'name="seen_total" value="2.16"' in html
    assert 'name="tokens" value="200000"' in html
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    uuid.UUID(key)
    assert "0.00002227" in html  # 2.16 / 97000 rounded up to 8 places
    assert "≈ 2.16 USDT" in html  # USDT_TRC20, as wallets show it (no padding zeros)
    assert "USDT on TRON (TRC-20)" in html


def test_review_page_shows_the_configured_markup_not_a_hard_coded_one(user_client, sonnet, settings):
    # given the markup lowered to 15% (allowed: never raised above 20%)
    settings.MARKUP_RATE = Decimal("0.15")
    # when
    html = user_client.get(NEW_URL, {"model": SONNET, "tokens": "200000"}).content.decode()
    # then the breakdown names the rate actually charged
    assert "Store markup (15%)" in html and "$0.27" in html and "$2.07" in html
    assert "20%" not in html


def test_review_page_without_cached_rates_still_renders(user_client, sonnet, gateway):
    response = user_client.get(NEW_URL, {"model": SONNET, "tokens": "200000"})
    assert response.status_code == 200
    assert "rate shown after ordering" in response.content.decode()
    assert len(gateway.calls) == 0


def test_two_visits_get_different_idempotency_keys(user_client, sonnet):
    pages = [user_client.get(NEW_URL, {"model": SONNET, "tokens": "200000"}).content.decode() for _ in range(2)]
    keys = {re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1) for page in pages}
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"model": SONNET, "tokens": "1e6"}, "without an exponent"),
        ({"model": SONNET, "tokens": "-5"}, "negative"),
        ({"model": SONNET, "tokens": "<script>alert(1)</script>"}, "digits"),
        ({"model": SONNET}, "Tokens"),
        ({"tokens": "200000"}, "Model"),
        ({"model": SONNET, "tokens": "50"}, "smallest order"),
        ({"model": SONNET, "tokens": "100000000"}, "limit per order"),
        ({"model": "vendor/not-offered", "tokens": "200000"}, "not available"),
    ],
)
def test_review_page_explains_what_is_wrong_without_a_form(user_client, sonnet, gateway, params, text):
    response = user_client.get(NEW_URL, params)
    html = response.content.decode()
    assert text in html
    assert 'name="idempotency_key"' not in html
    assert "<script>alert(1)" not in html
    assert len(gateway.calls) == 0


def test_model_staff_stopped_offering_cannot_be_reviewed(user_client, gateway):
    AIModelFactory(id="vendor/withdrawn", offered=False)
    response = user_client.get(NEW_URL, {"model": "vendor/withdrawn", "tokens": "200000"})
    assert "not available" in response.content.decode()


# --- placing the order --------------------------------------------------------------------------


def test_placing_an_order_creates_it_with_the_gateways_payment(user_client, user, sonnet, gateway, caplog):
    # given
    sent = gateway_creates(gateway, crypto_amount="0.00002300")
    # when
    with caplog.at_level(logging.DEBUG):
        response = user_client.post(CREATE_URL, form_data())
    # then
    order = AITokenOrder.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("orders:detail", kwargs={"order_id": order.order_id})
    assert order.user == user and order.status == OrderStatus.PENDING
    assert (order.model_id, order.token_count) == (SONNET, 200000)
    assert (order.base_usd_cost, order.markup_amount, order.total_usd_cost) == (
        Decimal("1.80"), Decimal("0.36"), Decimal("2.16"),
    )
    assert order.markup_rate == Decimal("0.20")
    assert order.price_per_token == Decimal("0.000009")
    assert order.crypto_type == "BTC"
    assert order.crypto_amount == Decimal("0.00002300")  # the gateway's amount, not our preview
    assert order.address == "bc1qgatewayaddress000000000000000000"
    assert order.payment_hash and order.payment_id == "635" and order.expires_at > timezone.now()
    # the gateway was asked for exactly this order's total, as a PAYMENT in USD
    assert len(sent) == 1
    payload = sent[0]
    assert payload["paymentType"] == "PAYMENT" and payload["fiatCurrency"] == "USD"
    assert payload["fiatAmount"] == Decimal("2.16")
    assert payload["cryptoCurrency"] == "BTC"
    assert payload["callbackUrl"] == "https://shop.test/payments/kryptoexpress/callback/"
    # a fresh per-order secret, stored only encrypted, never logged or recorded
    secret = payload["callbackSecret"]
    assert len(secret) >= 40
    assert secret not in order.callback_secret_encrypted
    assert decrypt(order.callback_secret_encrypted) == secret
    event = order.events.get()
    assert event.source == EventSource.CHECKOUT
    assert event.details["payment"]["hash"] == order.payment_hash
    assert secret not in json.dumps(event.details)
    assert secret not in caplog.text


def test_each_order_gets_its_own_callback_secret(user_client, sonnet, gateway):
    sent = gateway_creates(gateway)
    user_client.post(CREATE_URL, form_data())
    user_client.post(CREATE_URL, form_data())
    assert len(sent) == 2
    assert sent[0]["callbackSecret"] != sent[1]["callbackSecret"]


def test_browser_price_fields_are_ignored(user_client, sonnet, gateway):
    sent = gateway_creates(gateway)
    user_client.post(
        CREATE_URL, form_data(total_usd_cost="0.01", base_usd_cost="0.01", fiat_amount="0.01", price="0")
    )
    order = AITokenOrder.objects.get()
    assert order.total_usd_cost == Decimal("2.16")
    assert sent[0]["fiatAmount"] == Decimal("2.16")


def test_changed_price_asks_the_customer_to_confirm_without_ordering(user_client, sonnet, gateway):
    # given: the customer saw $2.00, the price is now $2.16
    sent = gateway_creates(gateway)
    data = form_data(seen_total="2.00")
    # when
    response = user_client.post(CREATE_URL, data)
    # then
    assert response.status_code == 200
    assert "orders/confirm.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "$2.00" in html and "$2.16" in html
    assert 'name="seen_total" value="2.16"' in html
    assert f'name="idempotency_key" value="{data["idempotency_key"]}"' in html
    assert not AITokenOrder.objects.exists()
    assert sent == []
    # and confirming the new price places the order
    response = user_client.post(CREATE_URL, form_data(idempotency_key=data["idempotency_key"]))
    assert response.status_code == 302
    assert AITokenOrder.objects.count() == 1


def test_missing_seen_total_always_asks_for_confirmation(user, sonnet, gateway):
    sent = gateway_creates(gateway)
    with pytest.raises(QuoteChanged) as raised:
        order_place(user=user, model_id=SONNET, token_count=200000, crypto_type="BTC", seen_total=None,
                    idempotency_key=uuid.uuid4())
    assert raised.value.quote.total_usd_cost == Decimal("2.16")
    assert sent == [] and not AITokenOrder.objects.exists()


HOSTILE = [
    {"tokens": "-200000"},
    {"tokens": "2e5"},
    {"tokens": "200000.5"},
    {"tokens": "２００００００"},  # full-width digits
    {"tokens": "٢٠٠٠٠٠"},  # Arabic-Indic digits
    {"tokens": "9" * 400},
    {"tokens": "200000\x00"},
    {"tokens": ""},
    {"tokens": None},
    {"tokens": "50"},  # under the minimum
    {"tokens": "100000000", "seen_total": "20.00"},  # over the cap
    {"tokens": "1000", "seen_total": "0.01"},  # under the gateway's $1 minimum
    {"model": "vendor/unknown"},
    {"model": "../../etc/passwd"},
    {"model": "x" * 5000},
    {"model": ""},
    {"crypto": "ETH"},  # a real gateway code the store does not accept
    {"crypto": "DOGE'; DROP TABLE orders;--"},
    {"crypto": ""},
    {"seen_total": "NaN"},
    {"seen_total": "Infinity"},
    {"seen_total": "-2.16"},
    {"seen_total": "1e400"},
    {"seen_total": "2.16.1"},
    {"idempotency_key": "not-a-uuid"},
    {"idempotency_key": None},
]


@pytest.mark.parametrize("overrides", HOSTILE)
def test_hostile_input_creates_no_order_and_calls_no_gateway(user_client, sonnet, gateway, overrides):
    sent = gateway_creates(gateway)
    response = user_client.post(CREATE_URL, form_data(**overrides))
    assert response.status_code in (200, 400)
    assert not AITokenOrder.objects.exists()
    assert sent == []
    assert len(gateway.calls) == 0


def test_invalid_order_shows_the_quote_messages(user_client, sonnet, gateway):
    gateway_creates(gateway)
    response = user_client.post(CREATE_URL, form_data(tokens="100000000", seen_total="20.00"))
    assert response.status_code == 400
    assert "limit per order" in response.content.decode()


def test_placing_needs_login(client, sonnet, gateway):
    sent = gateway_creates(gateway)
    response = client.post(CREATE_URL, form_data())
    assert response.status_code == 302 and "login" in response["Location"]
    assert sent == [] and not AITokenOrder.objects.exists()


def test_placing_needs_a_csrf_token(user, sonnet, gateway):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    sent = gateway_creates(gateway)
    assert client.post(CREATE_URL, form_data()).status_code == 403
    assert sent == []


def test_at_most_three_unpaid_orders(user_client, user, sonnet, gateway, settings):
    settings.MAX_UNPAID_ORDERS_PER_USER = 3
    OrderFactory.create_batch(3, user=user)
    OrderFactory(user=user, status=OrderStatus.EXPIRED)  # does not count
    sent = gateway_creates(gateway)
    response = user_client.post(CREATE_URL, form_data())
    assert response.status_code == 400
    assert "3 unpaid orders" in response.content.decode()
    assert AITokenOrder.objects.filter(user=user).count() == 4
    assert sent == []


def test_unpaid_limit_is_per_customer(user_client, sonnet, gateway, settings):
    settings.MAX_UNPAID_ORDERS_PER_USER = 3
    OrderFactory.create_batch(3)  # other people's
    gateway_creates(gateway)
    assert user_client.post(CREATE_URL, form_data()).status_code == 302


def test_order_creation_is_rate_limited_with_a_friendly_429(user_client, sonnet, gateway, settings):
    settings.ORDER_RATE_LIMIT = "2/h"
    settings.MAX_UNPAID_ORDERS_PER_USER = 10
    sent = gateway_creates(gateway)
    assert user_client.post(CREATE_URL, form_data()).status_code == 302
    assert user_client.post(CREATE_URL, form_data(tokens="oops")).status_code == 400  # attempts count too
    response = user_client.post(CREATE_URL, form_data())
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert len(sent) == 1
    assert AITokenOrder.objects.count() == 1
    # browsing one's orders is not limited
    assert user_client.get(CREATE_URL).status_code == 200


def test_capacity_shortfall_says_temporarily_unavailable(user_client, sonnet, gateway):
    sent = gateway_creates(gateway)
    with mock.patch("orders.services.placing.ensure_capacity", side_effect=CapacityUnavailable("low")) as guard:
        response = user_client.post(CREATE_URL, form_data())
    guard.assert_called_once_with(base_usd_cost=Decimal("1.80"))
    assert response.status_code == 503
    assert "temporarily unavailable" in response.content.decode()
    assert not AITokenOrder.objects.exists() and sent == []


@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.exceptions.ConnectTimeout("down")},
        {"body": requests.exceptions.ReadTimeout("slow")},
        {"status": 500, "json": {"message": "boom"}},
        {"status": 400, "json": {"message": "Minimum payment", "details": []}},
        {"status": 401, "json": {"message": "bad key"}},
        {"status": 429, "json": {"message": "slow down", "retryAfter": 30}},
        {"status": 200, "body": "<html>not json</html>"},
    ],
    ids=["connect-timeout", "read-timeout", "500", "400", "401", "429", "not-json"],
)
def test_gateway_failure_leaves_no_order_and_a_clear_message(user_client, sonnet, gateway, failure):
    gateway.add(responses.POST, GATEWAY_URL + "/payment", **failure)
    response = user_client.post(CREATE_URL, form_data())
    assert response.status_code == 503
    html = response.content.decode()
    assert "couldn&#x27;t set up the crypto payment" in html or "couldn't set up the crypto payment" in html
    assert "Nothing was charged" in html
    assert not AITokenOrder.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"fiatAmount": "2.17"},
        {"paymentType": "DEPOSIT"},
        {"cryptoCurrency": "LTC"},
        {"cryptoAmount": None},
        {"address": ""},
    ],
)
def test_gateway_record_not_matching_the_order_is_not_used(user_client, sonnet, gateway, overrides):
    gateway_creates(gateway, **overrides)
    response = user_client.post(CREATE_URL, form_data())
    assert response.status_code == 503
    assert not AITokenOrder.objects.exists()


def test_after_a_gateway_failure_the_same_form_can_be_sent_again(user_client, sonnet, gateway):
    data = form_data()
    gateway.add(responses.POST, GATEWAY_URL + "/payment", status=502, json={"message": "bad gateway"})
    assert user_client.post(CREATE_URL, data).status_code == 503
    gateway.replace(responses.POST, GATEWAY_URL + "/payment", status=502)  # keep registry tidy
    gateway.remove(responses.POST, GATEWAY_URL + "/payment")
    gateway_creates(gateway)
    assert user_client.post(CREATE_URL, data).status_code == 302
    assert AITokenOrder.objects.count() == 1


def test_resubmitting_the_same_form_returns_the_same_order(user_client, sonnet, gateway):
    sent = gateway_creates(gateway)
    data = form_data()
    first = user_client.post(CREATE_URL, data)
    second = user_client.post(CREATE_URL, data)
    assert first["Location"] == second["Location"]
    assert AITokenOrder.objects.count() == 1
    assert len(sent) == 1


def test_idempotency_key_is_per_customer(client, sonnet, gateway):
    from tests.factories import UserFactory

    sent = gateway_creates(gateway)
    data = form_data()
    for _ in range(2):
        client.force_login(UserFactory())
        assert client.post(CREATE_URL, data).status_code == 302
    assert AITokenOrder.objects.count() == 2 and len(sent) == 2


# --- Nothing after the gateway call strands an order ----------------------------------------


def test_a_broken_encryption_key_fails_before_the_gateway_and_leaves_no_order(user, sonnet, gateway, settings):
    # given FIELD_ENCRYPTION_KEYS that is not a Fernet key (the check refuses it; this is defence in depth)
    settings.FIELD_ENCRYPTION_KEYS = ["notakey"]
    sent = gateway_creates(gateway)
    # when
    with pytest.raises(CheckoutUnavailable):
        order_place(user=user, model_id=SONNET, token_count=200000, crypto_type="BTC",
                    seen_total=Decimal("2.16"), idempotency_key=uuid.uuid4())
    # then no payment was created and no order row is left
    assert sent == []
    assert not AITokenOrder.objects.exists()


@pytest.mark.parametrize("target", ["orders.services.placing.order_record_event",
                                    "orders.services.placing.payment_record_details"])
def test_any_failure_after_the_gateway_call_leaves_no_stranded_order(user, sonnet, gateway, target):
    gateway_creates(gateway)
    key = uuid.uuid4()
    with mock.patch(target, side_effect=RuntimeError("boom")), pytest.raises(CheckoutUnavailable):
        order_place(user=user, model_id=SONNET, token_count=200000, crypto_type="BTC",
                    seen_total=Decimal("2.16"), idempotency_key=key)
    assert not AITokenOrder.objects.exists()
    # and the same form can be sent again
    order = order_place(user=user, model_id=SONNET, token_count=200000, crypto_type="BTC",
                        seen_total=Decimal("2.16"), idempotency_key=key)
    assert order.payment_hash and order.status == OrderStatus.PENDING


def test_an_unexpected_client_error_leaves_no_stranded_order(user, sonnet, gateway):
    with mock.patch("payments.client.KryptoExpressClient.create_payment", side_effect=ValueError("bad json")), \
            pytest.raises(CheckoutUnavailable):
        order_place(user=user, model_id=SONNET, token_count=200000, crypto_type="BTC",
                    seen_total=Decimal("2.16"), idempotency_key=uuid.uuid4())
    assert not AITokenOrder.objects.exists()


def test_placing_an_order_mails_the_payment_link_once_the_payment_exists(
    user_client, user, sonnet, gateway, mailoutbox, django_capture_on_commit_callbacks
):
    gateway_creates(gateway, crypto_amount="0.00002300")
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(CREATE_URL, form_data())
    order = AITokenOrder.objects.get()
    (message,) = [m for m in mailoutbox if m.to == [user.email]]
    assert message.subject == f"Your order {order.order_id}: how to pay"
    assert "0.00002300 BTC" in message.body and order.address in message.body
    assert "https://shop.test" + reverse("orders:detail", kwargs={"order_id": order.order_id}) in message.body


def test_a_failed_gateway_call_mails_the_customer_nothing(
    user_client, user, sonnet, gateway, mailoutbox, django_capture_on_commit_callbacks
):
    gateway_creates(gateway, status=500)
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(CREATE_URL, form_data())
    assert not AITokenOrder.objects.exists()
    assert [m for m in mailoutbox if user.email in m.to] == []
