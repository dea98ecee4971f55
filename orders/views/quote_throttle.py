"""A generous per-IP rate limit on the quote endpoints (`/quote/`, `/api/quote`).

Quotes are cheap and anonymous, and the custom-amount field asks for one as the customer types,
so the limit (`QUOTE_RATE_LIMIT`, default 300 a minute per IP) never touches a person; it only
stops a script hammering the catalogue and rate caches. It is counted in batches
(`storefront.batched_rate_limit`): the quote is cheaper than one shared-cache increment.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.throttling import client_ip
from storefront.batched_rate_limit import BatchedRateLimit
from storefront.rate_limited import rate_limited

TOO_MANY_QUOTES = "Too many quote requests from your address; please wait a minute and try again."


_QUOTES = BatchedRateLimit("orders:quote")


def _address_key(request: HttpRequest) -> str:
    """The visitor's address (behind trusted proxies, the one they saw); IPv6 by its /64, as one host."""
    address = client_ip(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address)
    return str(parsed)


def throttle_quotes(*, json: bool) -> Callable:
    """Count every request against the caller's IP; over the limit: 429 (JSON or the friendly page)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if _QUOTES.hit(_address_key(request), settings.QUOTE_RATE_LIMIT):
                if json:
                    return JsonResponse({"valid": False, "errors": [TOO_MANY_QUOTES]}, status=429)
                return rate_limited(request)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
