"""Crypto rates: remote refresh into a ≤ 60 s cache, pages read the cache only, exact conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
import responses
import time_machine
from django.conf import settings
from django.core.cache import cache

from payments import rates
from payments.client import KryptoExpressGatewayError
from payments.rates import (
    RATES_CACHE_KEY,
    RATES_TTL_SECONDS,
    cached_rates,
    crypto_preview,
    refresh_rates,
    usd_to_crypto,
)
from payments.tasks import refresh_rates as refresh_rates_task

BASE = "https://gateway.test/api"
PRICE_URL = BASE + "/cryptocurrency/price"
PRICES_BODY = (
    '[{"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": 97000.0},'
    ' {"cryptoCurrency": "USDT_TRC20", "fiatCurrency": "USD", "price": 1.00}]'
)


@pytest.fixture(autouse=True)
def _gateway(settings):
    settings.KRYPTO_EXPRESS_API_URL = BASE
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_refresh_asks_for_accepted_currencies_in_usd_and_caches(mocked):
    mocked.get(
        PRICE_URL,
        body=PRICES_BODY,
        match=[responses.matchers.query_param_matcher({"cryptoCurrency": "BTC,USDT_TRC20", "fiatCurrency": "USD"})],
    )
    fresh = refresh_rates()
    assert fresh == {"BTC": Decimal("97000.0"), "USDT_TRC20": Decimal("1.00")}
    assert cached_rates() == fresh
    assert cache.get(rates.RATES_CACHE_KEY)["fetched_at"]
    assert len(mocked.calls) == 1


def test_cached_rates_never_calls_out(mocked):
    # given: nothing cached, and a gateway that would answer
    mocked.get(PRICE_URL, body=PRICES_BODY)
    # when / then: the cache is all it reads
    assert cached_rates() == {}
    assert crypto_preview(usd=Decimal("10.00"), code="BTC") is None
    assert len(mocked.calls) == 0


def test_cached_rates_with_fresh_cache_still_never_calls_out(mocked):
    mocked.get(PRICE_URL, body=PRICES_BODY)
    refresh_rates()
    calls_after_refresh = len(mocked.calls)
    for _ in range(5):
        cached_rates()
        crypto_preview(usd=Decimal("10.00"), code="BTC")
    assert len(mocked.calls) == calls_after_refresh == 1


def test_cache_entry_is_stored_for_at_most_60_seconds(mocked, monkeypatch):
    mocked.get(PRICE_URL, body=PRICES_BODY)
    stored = []
    real_set = rates.cache.set
    monkeypatch.setattr(
        rates.cache, "set", lambda key, value, timeout: stored.append(timeout) or real_set(key, value, timeout)
    )
    refresh_rates()
    assert stored and all(0 < timeout <= 60 for timeout in stored)


@pytest.mark.skipif(bool(settings.REDIS_URL), reason="Redis expires keys on its own clock, not the test's")
def test_cached_rates_vanish_after_the_ttl(mocked):
    mocked.get(PRICE_URL, body=PRICES_BODY)
    with time_machine.travel(0, tick=False) as traveller:
        refresh_rates()
        traveller.shift(RATES_TTL_SECONDS - 1)
        assert cached_rates()
        traveller.shift(2)
        assert cached_rates() == {}


def test_missing_code_is_absent_not_zero(mocked):
    mocked.get(PRICE_URL, body='{"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": 97000}')
    refresh_rates()
    assert cached_rates() == {"BTC": Decimal("97000")}
    assert crypto_preview(usd=Decimal("5.00"), code="USDT_TRC20") is None


def test_failed_refresh_raises_and_leaves_cache_alone(mocked):
    mocked.get(PRICE_URL, status=503, json={"message": "down"})
    with pytest.raises(KryptoExpressGatewayError):
        refresh_rates()
    assert cached_rates() == {}


def test_garbage_in_cache_reads_as_no_rates():
    for junk in ("junk", {"rates": "x"}, {"rates": {"BTC": "abc", "ETH": "-1", "LTC": None, "SOL": "NaN"}}):
        cache.set(RATES_CACHE_KEY, junk, 60)
        assert cached_rates() == {}


def test_cache_outage_reads_as_no_rates(monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(rates.cache, "get", broken)
    assert cached_rates() == {}


def test_task_has_the_scheduled_name_and_refreshes(mocked):
    mocked.get(PRICE_URL, body=PRICES_BODY)
    assert refresh_rates_task.name == "payments.tasks.refresh_rates"
    result = refresh_rates_task.delay().get()
    assert result == {"BTC": "97000.0", "USDT_TRC20": "1.00"}
    assert cached_rates()["BTC"] == Decimal("97000.0")


def test_task_swallows_gateway_errors(mocked, caplog):
    mocked.get(PRICE_URL, body=requests.ConnectionError("refused"))
    assert refresh_rates_task.delay().get() == {}
    assert "rate refresh failed" in caplog.text


@pytest.mark.parametrize(
    ("usd", "code", "rate", "expected"),
    [
        ("10.00", "BTC", "97000", "0.00010310"),  # 0.000103092... rounded up
        ("1.00", "BTC", "97000", "0.00001031"),
        ("20.00", "BTC", "97000", "0.00020619"),
        ("12.34", "USDT_TRC20", "1.00", "12.340000"),
        ("12.34", "USDT_TRC20", "0.9999", "12.341235"),
        ("0.00", "BTC", "97000", "0E-8"),
        ("10.00", "SOL", "150", "0.066666667"),
    ],
)
def test_usd_to_crypto_rounds_up_to_currency_decimals(usd, code, rate, expected):
    result = usd_to_crypto(Decimal(usd), code, Decimal(rate))
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == Decimal(expected).as_tuple().exponent
    assert result * Decimal(rate) >= Decimal(usd)  # never asks for less than the USD total


def test_usd_to_crypto_rejects_nonsense():
    with pytest.raises(ValueError):
        usd_to_crypto(Decimal("1"), "XMR", Decimal("100"))
    with pytest.raises(ValueError):
        usd_to_crypto(Decimal("1"), "BTC", Decimal("0"))
    with pytest.raises(ValueError):
        usd_to_crypto(Decimal("1"), "BTC", Decimal("NaN"))
    with pytest.raises(ValueError):
        usd_to_crypto(Decimal("-1"), "BTC", Decimal("1"))
    with pytest.raises(TypeError):
        usd_to_crypto(1.0, "BTC", Decimal("1"))


def test_crypto_preview_uses_cached_rate(mocked):
    mocked.get(PRICE_URL, body=PRICES_BODY)
    refresh_rates()
    assert crypto_preview(usd=Decimal("10.00"), code="BTC") == Decimal("0.00010310")
    assert crypto_preview(usd=Decimal("10.00"), code="NOPE") is None
