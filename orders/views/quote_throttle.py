"""A generous per-IP rate limit on the quote endpoints (`/quote/`, `/api/quote`).

Quotes are cheap and anonymous, and the custom-amount field asks for one as the customer types,
so the limit (`QUOTE_RATE_LIMIT`, default 300 a minute per IP) never touches a person; it only
stops a script hammering the catalogue and rate caches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit import ALL
from django_ratelimit.core import is_ratelimited

from storefront.rate_limited import rate_limited

TOO_MANY_QUOTES = "Too many quote requests from your address; please wait a minute and try again."


def throttle_quotes(*, json: bool) -> Callable:
    """Count every request against the caller's IP; over the limit: 429 (JSON or the friendly page)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if is_ratelimited(
                request, group="orders:quote", key="ip", rate=settings.QUOTE_RATE_LIMIT, method=ALL,
                increment=True,
            ):
                if json:
                    return JsonResponse({"valid": False, "errors": [TOO_MANY_QUOTES]}, status=429)
                return rate_limited(request)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
