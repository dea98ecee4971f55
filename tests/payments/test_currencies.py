"""Gateway currency descriptions and the accepted list."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments.currencies import (
    CURRENCIES,
    accepted_currencies,
    format_amount,
    get_currency,
    payment_uri,
)

GATEWAY_CODES = [
    "BTC",
    "LTC",
    "SOL",
    "TRX",
    "ETH",
    "BNB",
    "DOGE",
    "USDT_TRC20",
    "USDT_ERC20",
    "USDT_BEP20",
    "USDT_SOL",
    "USDC_ERC20",
    "USDC_BEP20",
    "USDC_SOL",
]


def test_every_gateway_code_is_described():
    assert sorted(CURRENCIES) == sorted(GATEWAY_CODES)
    for code, currency in CURRENCIES.items():
        assert currency.code == code
        assert currency.name and currency.network
        assert 0 < currency.decimals <= 18


def test_btc_and_usdt_trc20_described_fully():
    btc = get_currency("BTC")
    assert (btc.name, btc.network, btc.decimals, btc.is_stable, btc.uri_scheme) == (
        "Bitcoin",
        "Bitcoin",
        8,
        False,
        "bitcoin",
    )
    assert btc.quantum == Decimal("0.00000001")
    usdt = get_currency("USDT_TRC20")
    assert (usdt.name, usdt.network, usdt.decimals, usdt.is_stable, usdt.uri_scheme) == (
        "Tether USD",
        "USDT on TRON (TRC20)",
        6,
        True,
        None,
    )
    assert usdt.symbol == "USDT"


def test_stablecoins_are_exactly_the_usdt_and_usdc_codes():
    stable = {code for code, currency in CURRENCIES.items() if currency.is_stable}
    assert stable == {code for code in GATEWAY_CODES if code.startswith(("USDT_", "USDC_"))}


@pytest.mark.parametrize("code", ["btc", "XMR", "", None, 5, "BTC ", ["BTC"]])
def test_unknown_codes_are_none(code):
    assert get_currency(code) is None


def test_accepted_follows_settings_order(settings):
    settings.PAYMENT_CURRENCIES = ["USDT_TRC20", "BTC"]
    assert [c.code for c in accepted_currencies()] == ["USDT_TRC20", "BTC"]
    assert "ETH" not in {c.code for c in accepted_currencies()}


def test_accepted_skips_unknown_and_duplicate_codes(settings):
    settings.PAYMENT_CURRENCIES = ["BTC", "NOPE", " btc ", "ETH"]
    assert [c.code for c in accepted_currencies()] == ["BTC", "ETH"]


def test_bip21_uri_for_btc_keeps_plain_amount():
    uri = payment_uri(code="BTC", address="bc1qxyz", amount=Decimal("1E-7"))
    assert uri == "bitcoin:bc1qxyz?amount=0.0000001"
    assert payment_uri(code="BTC", address="bc1qxyz", amount=Decimal("0.00012720")) == (
        "bitcoin:bc1qxyz?amount=0.0001272"
    )


def test_token_uri_is_the_bare_address():
    assert payment_uri(code="USDT_TRC20", address="TXyz", amount=Decimal("5")) == "TXyz"


@pytest.mark.parametrize(
    ("amount", "text"),
    [("97000", "97000"), ("12.340000", "12.34"), ("1E-8", "0.00000001"), ("0", "0"), ("5.000", "5"), ("1E+2", "100")],
)
def test_format_amount(amount, text):
    assert format_amount(Decimal(amount)) == text
