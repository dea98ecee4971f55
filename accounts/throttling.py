"""Rate limits on the account doors (login, signup, password reset), on django-ratelimit.

A throttled POST is answered by `settings.RATELIMIT_VIEW` (the friendly 429 page) *before* the
view runs, so a blocked login attempt never reaches the password check. Rates are read from
settings on every request (tests and operators can change them without a restart of the code).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django_ratelimit.core import is_ratelimited
from django_ratelimit.exceptions import Ratelimited

from accounts.normalization import normalize_email

# Longer than any valid address (254); hostile megabyte "emails" are cut before normalising.
_MAX_EMAIL_KEY_CHARS = 320


def client_ip(request: HttpRequest) -> str:
    """The visitor's address as seen by the outermost of `settings.TRUSTED_PROXY_COUNT` reverse proxies.

    Behind a proxy every request comes from the proxy's REMOTE_ADDR, so per-IP limits would throttle
    all customers together. Each trusted proxy appends the address it saw to X-Forwarded-For; entries
    further left were written by the client and are ignored (they can be forged). Used as
    `RATELIMIT_IP_META_KEY` when TRUSTED_PROXY_COUNT > 0.
    """
    count = settings.TRUSTED_PROXY_COUNT
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if count > 0 and len(hops) >= count:
        try:
            return str(ipaddress.ip_address(hops[-count]))
        except ValueError:
            pass
    return request.META["REMOTE_ADDR"]


def _submitted_email_key(field_name: str) -> Callable[[str, HttpRequest], str]:
    """A django-ratelimit key: the normalised email posted in `field_name`."""

    def key(group: str, request: HttpRequest) -> str:
        return normalize_email(request.POST.get(field_name, "")[:_MAX_EMAIL_KEY_CHARS])

    return key


def throttle_exceeded(request: HttpRequest, *, scope: str, rate: str, email_field: str | None = None) -> bool:
    """Count this POST against the per-IP limit (and the per-email one) of `scope`; True if over either.

    Both counters are incremented on every attempt, so spreading guesses over many IPs does not
    help against one account, and spreading them over many accounts does not help one IP.
    """
    limited = is_ratelimited(request, group=f"accounts.{scope}.ip", key="ip", rate=rate, method="POST", increment=True)
    if email_field and request.POST.get(email_field, "").strip():
        limited |= is_ratelimited(
            request,
            group=f"accounts.{scope}.email",
            key=_submitted_email_key(email_field),
            rate=rate,
            method="POST",
            increment=True,
        )
    return limited


def rate_limited_response(request: HttpRequest) -> HttpResponse:
    """The project's 429 page (settings.RATELIMIT_VIEW), whether or not its middleware is installed."""
    return import_string(settings.RATELIMIT_VIEW)(request, Ratelimited())


def throttle_posts(*, scope: str, rate_setting: str, email_field: str | None = None):
    """Decorate a view: POSTs over `settings.<rate_setting>` per IP (and per email) get the 429 page."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST" and throttle_exceeded(
                request, scope=scope, rate=getattr(settings, rate_setting), email_field=email_field
            ):
                return rate_limited_response(request)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
