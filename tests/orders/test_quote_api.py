"""`GET /api/quote`: exact JSON quotes; every bad input is a 400 with readable errors, never a 500."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache
from django.urls import reverse

from orders.models import AITokenOrder
from payments.rates import RATES_CACHE_KEY
from tests.factories import AIModelFactory
from tests.orders.checkout_support import UNREADABLE_TOKEN_COUNTS

pytestmark = pytest.mark.django_db

SONNET_ID = "anthropic/claude-3-sonnet"
KEYS = {
    "model",
    "token_count",
    "price_per_token",
    "base_usd_cost",
    "markup_amount",
    "total_usd_cost",
    "crypto_type",
    "crypto_amount",
    "valid",
    "errors",
}


@pytest.fixture
def rates(settings):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    cache.set(RATES_CACHE_KEY, {"rates": {"BTC": "97000", "USDT_TRC20": "1"}, "fetched_at": "x"}, timeout=60)


@pytest.fixture(autouse=True)
def no_remote_calls():
    """The API reads the database and the rate cache only; any HTTP call would fail the request."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield
    assert len(mock.calls) == 0


def get_quote(client, query: str | dict):
    url = reverse("orders:api_quote")
    if isinstance(query, str):
        return client.get(f"{url}?{query}")
    return client.get(url, query)


def assert_refused(response, caplog) -> dict:
    """A 400 with the full JSON shape, valid false, readable errors; nothing stored, nothing logged as error."""
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == KEYS
    assert body["valid"] is False
    assert body["errors"]
    assert all(isinstance(error, str) and error.endswith(".") for error in body["errors"])
    assert AITokenOrder.objects.count() == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    return body


def test_a_valid_quote(client, sonnet, rates):
    response = get_quote(client, {"model": SONNET_ID, "tokens": "200000", "crypto": "BTC"})

    assert response.status_code == 200
    assert response.json() == {
        "model": SONNET_ID,
        "token_count": 200_000,
        "price_per_token": "0.000009",
        "base_usd_cost": "1.80",
        "markup_amount": "0.36",
        "total_usd_cost": "2.16",
        "crypto_type": "BTC",
        # 2.16 / 97,000 = 0.0000222680… rounded UP to BTC's 8 decimals
        "crypto_amount": "0.00002227",
        "valid": True,
        "errors": [],
    }
    assert response["Cache-Control"] == "no-store"


def test_usd_amounts_always_have_two_decimals(client, rates):
    # $10 / M blended: 100,000 tokens → 1.00 base, 0.20 markup, 1.20 total (trailing zeros kept).
    AIModelFactory(id="vendor/ten", prompt_price=Decimal("0.000010000000000"), completion_price=Decimal("0.00001"))

    body = get_quote(client, {"model": "vendor/ten", "tokens": "100000", "crypto": "USDT_TRC20"}).json()

    assert (body["base_usd_cost"], body["markup_amount"], body["total_usd_cost"]) == ("1.00", "0.20", "1.20")
    assert body["price_per_token"] == "0.00001"
    assert body["crypto_amount"] == "1.2"


def test_price_per_token_is_never_written_with_an_exponent(client, rates):
    AIModelFactory(id="vendor/cheap", prompt_price=Decimal("0.0000001"), completion_price=Decimal("0.0000002"))

    body = get_quote(client, {"model": "vendor/cheap", "tokens": "10000000", "crypto": "BTC"}).json()

    assert body["price_per_token"] == "0.00000015"
    assert body["valid"] is True


def test_crypto_is_optional(client, sonnet, rates):
    response = get_quote(client, {"model": SONNET_ID, "tokens": "200000"})

    assert response.status_code == 200
    body = response.json()
    assert body["crypto_type"] is None
    assert body["crypto_amount"] is None
    assert body["total_usd_cost"] == "2.16"


def test_crypto_codes_are_case_insensitive(client, sonnet, rates):
    body = get_quote(client, {"model": SONNET_ID, "tokens": "200000", "crypto": "btc"}).json()
    assert body["crypto_type"] == "BTC"
    assert body["crypto_amount"] == "0.00002227"


def test_a_missing_rate_gives_a_null_crypto_amount_not_an_error(client, sonnet, settings, caplog):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    # the rate cache is empty (cleared by the autouse fixture)

    response = get_quote(client, {"model": SONNET_ID, "tokens": "200000", "crypto": "BTC"})

    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["crypto_type"] == "BTC"
    assert body["crypto_amount"] is None
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_the_cap_edge(client, sonnet):
    ok = get_quote(client, {"model": SONNET_ID, "tokens": "1852222"})
    assert ok.status_code == 200
    assert ok.json()["total_usd_cost"] == "20.00"

    over = get_quote(client, {"model": SONNET_ID, "tokens": "1852223"})
    assert over.status_code == 400
    assert over.json()["total_usd_cost"] == "20.02"
    assert over.json()["errors"] == [
        "That's $20.02 — over the $20.00 limit per order. The most you can order of this model is 1,852,222 tokens."
    ]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        *UNREADABLE_TOKEN_COUNTS,
        ("a" * 10_240, "That's far more than a number of tokens. Enter digits only, e.g. 250000."),
        ("1000\x00", "Enter the number of tokens in digits, e.g. 250000."),
        ("1000", "That's $0.01 — under the $1.00 minimum per order"),
        ("1000000000", "That's $10,800.00 — over the $20.00 limit per order"),
    ],
)
def test_bad_token_counts_are_refused(client, sonnet, rates, tokens, message, caplog):
    body = assert_refused(get_quote(client, {"model": SONNET_ID, "tokens": tokens, "crypto": "BTC"}), caplog)

    assert body["errors"][0].startswith(message)
    assert body["crypto_amount"] is None


def test_a_missing_token_count_is_refused(client, sonnet, caplog):
    body = assert_refused(get_quote(client, {"model": SONNET_ID}), caplog)
    assert body["errors"] == ["Enter a number of tokens."]


def test_a_token_count_that_parses_but_breaks_a_rule_still_shows_its_price(client, sonnet, caplog):
    body = assert_refused(get_quote(client, {"model": SONNET_ID, "tokens": "99"}), caplog)

    assert body["token_count"] == 99
    assert body["total_usd_cost"] == "0.01"


@pytest.mark.parametrize(
    "model",
    [
        "unknown/model",
        "vendor/unoffered",
        "vendor/free",
        "openrouter/auto",
        "vendor/gone",
        "vendor/unpriced",
        "x" * 10_240,
        SONNET_ID + "\x00",
        "\x00",
        "ａｎｔｈｒｏｐｉｃ/claude-3-sonnet",
        "' OR 1=1 --",
    ],
)
def test_unknown_unoffered_free_and_unavailable_models_are_refused(client, sonnet, rates, model, caplog):
    AIModelFactory(id="vendor/unoffered", offered=False)
    AIModelFactory(id="vendor/free", prompt_price=Decimal("0"), completion_price=Decimal("0"))
    AIModelFactory(id="openrouter/auto", prompt_price=Decimal("-1"), completion_price=Decimal("-1"))
    AIModelFactory(id="vendor/gone", available=False)
    AIModelFactory(id="vendor/unpriced", prompt_price=None, completion_price=None)

    body = assert_refused(get_quote(client, {"model": model, "tokens": "200000", "crypto": "BTC"}), caplog)

    assert body["errors"] == ["That model isn't available. Choose one from the catalogue."]
    assert body["model"] is None
    assert body["total_usd_cost"] is None


def test_a_missing_model_is_refused(client, sonnet, caplog):
    body = assert_refused(get_quote(client, {"tokens": "200000"}), caplog)
    assert body["errors"] == ["Choose a model."]


@pytest.mark.parametrize("crypto", ["ETH", "DOGE", "XYZ", "", "ＢＴＣ", "BTC\x00", "B" * 10_240, "usd"])
def test_unsupported_crypto_codes_are_refused(client, sonnet, rates, settings, crypto, caplog):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]

    body = assert_refused(get_quote(client, {"model": SONNET_ID, "tokens": "200000", "crypto": crypto}), caplog)

    assert body["errors"] == ["We accept BTC or USDT_TRC20 only."]
    assert body["crypto_type"] is None
    assert body["crypto_amount"] is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (f"model={SONNET_ID}&tokens=200000&tokens=300000", "Enter one token count."),
        (f"model={SONNET_ID}&tokens=200000&tokens=200000", "Enter one token count."),
        (f"model={SONNET_ID}&model={SONNET_ID}&tokens=200000", "Choose one model."),
        (f"model={SONNET_ID}&tokens=200000&crypto=BTC&crypto=USDT_TRC20", "Choose one currency."),
    ],
)
def test_duplicated_parameters_are_refused(client, sonnet, rates, query, message, caplog):
    body = assert_refused(get_quote(client, query), caplog)
    assert message in body["errors"]
    assert body["total_usd_cost"] is None


def test_several_problems_are_all_reported(client, sonnet, rates, caplog):
    body = assert_refused(get_quote(client, {"model": SONNET_ID, "tokens": "abc", "crypto": "ETH"}), caplog)
    assert body["errors"] == ["We accept BTC or USDT_TRC20 only.", "Enter the number of tokens in digits, e.g. 250000."]


def test_only_get_is_allowed(client, sonnet):
    response = client.post(reverse("orders:api_quote"), {"model": SONNET_ID, "tokens": "200000"})
    assert response.status_code == 405
    assert AITokenOrder.objects.count() == 0


def test_the_quote_api_reads_the_database_once_per_catalogue_version(
    client, sonnet, rates, django_assert_max_num_queries, django_assert_num_queries
):
    # The first quote of a catalogue version loads the catalogue (models and packages) ...
    with django_assert_max_num_queries(2):
        assert get_quote(client, {"model": SONNET_ID, "tokens": "200000", "crypto": "BTC"}).status_code == 200
    # ... and every later one, whatever it asks, is answered from memory.
    with django_assert_num_queries(0):
        assert get_quote(client, {"model": SONNET_ID, "tokens": "300000", "crypto": "BTC"}).status_code == 200
        assert get_quote(client, {"model": "no/such-model", "tokens": "300000"}).status_code == 400
