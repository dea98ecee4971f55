"""The order a visitor was about to place when asked to log in or sign up (read for the auth pages).

`accounts.pending_order` shows the summary on the login and signup pages; it knows nothing of
orders, so this reader is registered with it when the orders app is ready.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.urls import reverse

from accounts.pending_order import PendingOrder
from orders.forms import QuoteRequestForm
from orders.services.placing import checkout_preview


def pending_order_read(next_url: str) -> PendingOrder | None:
    """The order summary behind a review-step `next` (None for any other or invalid `next`)."""
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
