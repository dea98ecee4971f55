"""The order a visitor was about to place when they were asked to log in or sign up.

Clicking "Order" while logged out leads to the login page with `next=/orders/new/?model=…&tokens=…`
(the review step). The login and signup pages show that order's summary, every link between
them (and the header's) carries the same `next`, and both return to the review step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

AUTH_URL_NAMES = frozenset({"login", "signup"})


@dataclass(frozen=True)
class PendingOrder:
    model_name: str
    model_id: str
    token_count: int
    total_usd_cost: Decimal
    review_url: str


def pending_next(request: HttpRequest) -> str:
    """The safe `next` an auth page was opened with ('' if none or if it leaves the site)."""
    candidate = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if candidate and len(candidate) <= 2000 and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


# How to read the order summary behind a review-step `next`. Accounts know nothing of orders: the
# orders app registers the reader in its `ready()` (see `orders.pending_order`).
PendingOrderReader = Callable[[str], "PendingOrder | None"]
_reader: PendingOrderReader | None = None


def pending_order_reader_register(reader: PendingOrderReader) -> None:
    global _reader
    _reader = reader


def pending_order_from_next(next_url: str) -> PendingOrder | None:
    """The order summary behind a review-step `next` (None for any other `next`, or with no reader)."""
    return _reader(next_url) if _reader is not None else None


def auth_context(request: HttpRequest) -> dict:
    """For every page: on the login/signup pages, the `next` to carry and the pending order."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.namespace != "accounts" or match.url_name not in AUTH_URL_NAMES:
        return {}
    next_url = pending_next(request)
    if not next_url:
        return {}
    return {"auth_next": next_url, "pending_order": pending_order_from_next(next_url)}
