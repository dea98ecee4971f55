"""Crypto exchange rates for the price preview (docs/ARCHITECTURE.md, "Pricing").

Pages never call the gateway while rendering: beat runs `refresh_rates` (every 45 s), which
asks the gateway once and caches the answer for at most 60 s; pages read `cached_rates()`,
which only ever looks at the cache. A missing rate means the page says the crypto amount is
momentarily unavailable. The amount the customer must pay is the one the gateway returns
when the payment is created; this is only a preview.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal, localcontext

from django.core.cache import cache

from payments.client import get_kryptoexpress_client
from payments.currencies import accepted_currencies, get_currency
from storefront.catalogue_version import catalogue_version_local_changed

logger = logging.getLogger("payments.rates")

RATES_CACHE_KEY = "payments:rates:v1"
RATES_TTL_SECONDS = 60
"""A preview older than a minute is not shown (crypto moves)."""


def cached_rates() -> dict[str, Decimal]:
    """USD price of one unit of each accepted currency, from the cache only (never remote).

    Codes without a fresh rate are absent. A cache outage reads as "no rates", never an error.
    """
    try:
        entry = cache.get(RATES_CACHE_KEY)
    except Exception:  # a page must render even with the cache down
        logger.warning("rate cache unavailable")
        return {}
    return rates_from_entry(entry)


def rates_from_entry(entry: object) -> dict[str, Decimal]:
    """The usable rates in a cache entry as `refresh_rates` stores it (anything malformed is skipped)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("rates"), dict):
        return {}
    rates = {}
    for code, text in entry["rates"].items():
        try:
            rate = Decimal(text)
        except (TypeError, ArithmeticError):
            continue
        if rate.is_finite() and rate > 0:
            rates[code] = rate
    return rates


def refresh_rates() -> dict[str, Decimal]:
    """Fetch the accepted currencies' USD prices from the gateway and cache them for 60 s.

    Raises `KryptoExpressError` when the gateway cannot answer; the previous rates then age out
    on their own rather than being shown stale.
    """
    codes = [currency.code for currency in accepted_currencies()]
    rates = get_kryptoexpress_client().get_prices(codes, fiat_currency="USD")
    entry = {
        # Strings keep the exact text whatever the cache backend's serializer.
        "rates": {code: str(rate) for code, rate in rates.items()},
        "fetched_at": datetime.now(tz=UTC).isoformat(),
    }
    cache.set(RATES_CACHE_KEY, entry, timeout=RATES_TTL_SECONDS)
    catalogue_version_local_changed()  # pages in this process show the new rates at once
    missing = sorted(set(codes) - set(rates))
    if missing:
        logger.warning("gateway returned no rate for %s", ", ".join(missing))
    return rates


def usd_to_crypto(usd: Decimal, code: str, rate: Decimal) -> Decimal:
    """`usd` in currency `code` at `rate` USD per unit, rounded UP to the currency's decimals.

    Rounding up means the preview never promises the customer a smaller amount than the
    exact conversion. Raises ValueError for an unknown code or a non-positive rate.
    """
    currency = get_currency(code)
    if currency is None:
        raise ValueError(f"unknown crypto currency {code!r}")
    if not isinstance(usd, Decimal) or not isinstance(rate, Decimal):
        raise TypeError("usd and rate must be Decimal")
    if not rate.is_finite() or rate <= 0:
        raise ValueError("rate must be a positive number")
    if not usd.is_finite() or usd < 0:
        raise ValueError("usd must be a non-negative number")
    with localcontext() as context:
        context.prec = 50
        return (usd / rate).quantize(currency.quantum, rounding=ROUND_UP)


def crypto_preview(*, usd: Decimal, code: str) -> Decimal | None:
    """The previewed crypto amount for `usd` from cached rates, or None when no fresh rate exists."""
    rate = cached_rates().get(code)
    if rate is None or get_currency(code) is None:
        return None
    return usd_to_crypto(usd, code, rate)
