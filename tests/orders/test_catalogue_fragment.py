"""The live quote fragment htmx swaps in under the custom amount field."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse

from orders.models import AITokenOrder
from payments.rates import RATES_CACHE_KEY

pytestmark = pytest.mark.django_db

SONNET_ID = "anthropic/claude-3-sonnet"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def rates(settings):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    cache.set(RATES_CACHE_KEY, {"rates": {"BTC": "97000", "USDT_TRC20": "1"}, "fetched_at": "x"}, timeout=60)


def fragment(client, query: str | dict):
    url = reverse("orders:quote_fragment")
    if isinstance(query, str):
        return client.get(f"{url}?{query}", **HTMX)
    return client.get(url, query, **HTMX)


def test_a_valid_amount_renders_the_quote_with_crypto_and_an_order_button(client, sonnet, rates):
    response = fragment(client, {"model": SONNET_ID, "tokens": "200000"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a fragment, not a page
    assert "$2.16" in html and "$1.80" in html and "$0.36" in html
    assert "0.00002227" in html  # BTC, rounded up
    assert "2.16" in html and "USDT on TRON (TRC20)" in html
    assert 'href="/orders/new/?model=anthropic%2Fclaude-3-sonnet&amp;tokens=200000"' in html


def test_missing_rates_are_said_in_the_fragment(client, sonnet, settings):
    settings.PAYMENT_CURRENCIES = ["BTC"]

    html = fragment(client, {"model": SONNET_ID, "tokens": "200000"}).content.decode()

    assert "$2.16" in html
    assert "momentarily unavailable" in html


def test_an_empty_field_gets_a_hint_not_an_error(client, sonnet):
    html = fragment(client, {"model": SONNET_ID, "tokens": "   "}).content.decode()

    assert "Type a number of tokens to see its price." in html
    assert "errorlist" not in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"model": SONNET_ID, "tokens": "abc"}, "Enter the number of tokens in digits"),
        ({"model": SONNET_ID, "tokens": "1.5"}, "no decimals"),
        ({"model": SONNET_ID, "tokens": "-5"}, "can&#x27;t be negative"),
        ({"model": SONNET_ID, "tokens": "0"}, "The smallest order is 100 tokens."),
        ({"model": SONNET_ID, "tokens": "99"}, "The smallest order is 100 tokens."),
        ({"model": SONNET_ID, "tokens": "1e9"}, "without an exponent"),
        ({"model": SONNET_ID, "tokens": "10**30"}, "Enter the number of tokens in digits"),
        ({"model": SONNET_ID, "tokens": "１０００"}, "Use the digits 0–9 only."),
        ({"model": SONNET_ID, "tokens": "١٠٠٠"}, "Use the digits 0–9 only."),
        ({"model": SONNET_ID, "tokens": "9" * 10_240}, "far more than a number of tokens"),
        ({"model": SONNET_ID, "tokens": "5000000"}, "over the $20.00 limit per order"),
        ({"model": "unknown/model", "tokens": "200000"}, "That model isn&#x27;t available."),
        ({"model": "x" * 10_240, "tokens": "200000"}, "That model isn&#x27;t available."),
        ({"tokens": "200000"}, "Choose a model."),
        (f"model={SONNET_ID}&tokens=1000&tokens=200000", "Enter one token count."),
    ],
)
def test_bad_input_gets_a_clear_message(client, sonnet, rates, query, message, caplog):
    response = fragment(client, query)

    assert response.status_code == 200  # htmx swaps 2xx only; the message is the content
    html = response.content.decode()
    assert 'class="errorlist quote-errors"' in html
    assert message in html
    assert "/orders/new/" not in html
    assert AITokenOrder.objects.count() == 0
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_without_htmx_the_fragment_url_sends_the_visitor_to_the_page(client, sonnet):
    response = client.get(reverse("orders:quote_fragment"), {"model": SONNET_ID, "tokens": "200000"})

    assert response.status_code == 302
    assert response["Location"] == "/?model=anthropic%2Fclaude-3-sonnet&tokens=200000"


def test_the_fragment_prices_with_database_prices_only(client, sonnet, rates):
    # A price change in the database shows on the next keystroke.
    sonnet.prompt_price = Decimal("0.000006")
    sonnet.completion_price = Decimal("0.000030")
    sonnet.save()

    html = fragment(client, {"model": SONNET_ID, "tokens": "200000"}).content.decode()

    # 200,000 × 0.000018 = 3.60; markup 0.72; total 4.32
    assert "$4.32" in html
