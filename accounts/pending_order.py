"""The order a visitor was about to place when they were asked to log in or sign up.

Clicking "Order" while logged out leads to the login page with `next=/orders/new/?model=…&tokens=…`
(the review step). The login and signup pages show that order's summary, every link between
them (and the header's) carries the same `next`, and both return to the review step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest
from django.urls import reverse
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


def pending_order_from_next(next_url: str) -> PendingOrder | None:
    """The order summary behind a review-step `next` (None for any other or invalid `next`)."""
    from orders.forms import QuoteRequestForm
    from orders.services.placing import checkout_preview

    parts = urlsplit(next_url)
    if parts.path != reverse("orders:new"):
        return None
    query = {key: values[0] for key, values in parse_qs(parts.query).items() if values}
    form = QuoteRequestForm(query)
    if not form.is_valid():
        return None
    preview = checkout_preview(model_id=form.cleaned_data["model"], token_count=form.cleaned_data["tokens"])
    if not preview.valid:
        return None
    return PendingOrder(
        model_name=preview.ai_model.name,
        model_id=preview.ai_model.pk,
        token_count=preview.quote.token_count,
        total_usd_cost=preview.quote.total_usd_cost,
        review_url=next_url,
    )


def auth_context(request: HttpRequest) -> dict:
    """For every page: on the login/signup pages, the `next` to carry and the pending order."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.namespace != "accounts" or match.url_name not in AUTH_URL_NAMES:
        return {}
    next_url = pending_next(request)
    if not next_url:
        return {}
    return {"auth_next": next_url, "pending_order": pending_order_from_next(next_url)}
