"""OpenRouter account balance, cached briefly so pages and checkout never wait on OpenRouter."""

from __future__ import annotations

from decimal import Decimal

from django.core.cache import cache

from openrouter.client import Credits, get_openrouter_client

CACHE_KEY = "openrouter:credits:v1"
CACHE_SECONDS = 60  # the capacity guard may act on a balance at most this old


def cached_credits() -> Credits:
    """``GET /credits``, cached for ``CACHE_SECONDS``; raises OpenRouterError if unreachable and nothing cached."""
    cached = cache.get(CACHE_KEY)
    if isinstance(cached, tuple) and len(cached) == 2:
        return Credits(total_credits=Decimal(cached[0]), total_usage=Decimal(cached[1]))
    credits = get_openrouter_client().get_credits()
    # Stored as strings: exact, and readable by any cache backend's serializer.
    cache.set(CACHE_KEY, (str(credits.total_credits), str(credits.total_usage)), CACHE_SECONDS)
    return credits


def cached_balance() -> Decimal:
    """What the account can still spend (credits − usage) in USD, at most ``CACHE_SECONDS`` old."""
    return cached_credits().balance



