"""Template context every page needs (sandbox banner, store limits)."""

from django.conf import settings
from django.http import HttpRequest


def store(request: HttpRequest) -> dict:
    return {
        "SANDBOX": settings.SANDBOX,
        "MAX_ORDER_USD": settings.MAX_ORDER_USD,
        "MIN_TOKENS": settings.MIN_TOKENS,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        # Shown as "20" for 0.20; the markup may be configured lower, so pages never hard-code it.
        "MARKUP_PERCENT": format((settings.MARKUP_RATE * 100).normalize(), "f"),
    }
