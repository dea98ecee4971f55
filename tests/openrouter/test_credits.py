"""cached_balance: GET /credits at most once a minute, Decimal throughout."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
import responses
from django.core.cache import cache

from openrouter import credits as credits_module
from openrouter.client import OpenRouterError, OpenRouterNetworkError
from openrouter.credits import CACHE_KEY, cached_balance, cached_credits

BASE = "https://openrouter.test/api/v1"


@pytest.fixture(autouse=True)
def _openrouter(settings):
    settings.OPENROUTER_API_URL = BASE
    settings.OPENROUTER_API_KEY = "sk-or-v1-management-secret"


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def test_balance_is_credits_minus_usage_as_decimal(mocked):
    mocked.get(BASE + "/credits", body='{"data": {"total_credits": 100.5, "total_usage": 25.75}}')
    balance = cached_balance()
    assert balance == Decimal("74.75")
    assert isinstance(balance, Decimal)


def test_second_read_within_the_minute_comes_from_the_cache(mocked):
    mocked.get(BASE + "/credits", body='{"data": {"total_credits": 10, "total_usage": 1.1}}')
    assert cached_balance() == Decimal("8.9")
    assert cached_balance() == Decimal("8.9")
    assert cached_credits().total_usage == Decimal("1.1")
    assert len(mocked.calls) == 1


def test_cache_lives_at_most_sixty_seconds(mocked, monkeypatch):
    # given a spy on the cache
    timeouts = []
    real_set = cache.set

    def spy(key, value, timeout=None, **kwargs):
        timeouts.append(timeout)
        return real_set(key, value, timeout, **kwargs)

    monkeypatch.setattr(credits_module.cache, "set", spy)
    mocked.get(BASE + "/credits", body='{"data": {"total_credits": 10, "total_usage": 0}}')
    # when
    cached_balance()
    # then
    assert timeouts and all(t is not None and 0 < t <= 60 for t in timeouts)


def test_expired_or_forgotten_cache_reads_again(mocked):
    mocked.get(BASE + "/credits", body='{"data": {"total_credits": 10, "total_usage": 0}}')
    mocked.get(BASE + "/credits", body='{"data": {"total_credits": 10, "total_usage": 4}}')
    assert cached_balance() == Decimal(10)
    cache.delete(CACHE_KEY)  # forgotten
    assert cached_balance() == Decimal(6)


def test_unreachable_with_nothing_cached_raises(mocked):
    mocked.get(BASE + "/credits", body=requests.ConnectionError("down"))
    with pytest.raises(OpenRouterNetworkError):
        cached_balance()


def test_unreachable_with_a_fresh_value_cached_uses_it(mocked):
    mocked.get(BASE + "/credits", body='{"data": {"total_credits": 3, "total_usage": 1}}')
    mocked.get(BASE + "/credits", status=500, json={"error": {"code": 500, "message": "x"}})
    assert cached_balance() == Decimal(2)
    assert cached_balance() == Decimal(2)
    cache.delete(CACHE_KEY)  # forgotten
    with pytest.raises(OpenRouterError):
        cached_balance()
