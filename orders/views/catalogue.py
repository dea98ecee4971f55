"""The catalogue page, the live quote fragment (htmx) and the quote API. Anonymous visitors welcome.

Thin views: read the query string (orders.quote_input), ask one selector (orders.catalogue),
render. Nothing here writes to the database or calls a remote API.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_safe

from orders.catalogue import QuoteOutcome, catalogue_page, catalogue_snapshot, markup_percent, quote_outcome
from orders.pricing import rules_from_settings
from orders.quote_input import CryptoNotAccepted, crypto_read, quote_params_read
from orders.versioned_pages import cached_by_catalogue_version, render_per_version
from payments.currencies import Currency, accepted_currencies


@require_safe
def catalogue(request: HttpRequest) -> HttpResponse:
    """`/`: models, packages priced for the chosen model, and the custom amount form (works without JS)."""
    params = quote_params_read(request.GET)
    tokens_raw = params.tokens_raw if "tokens" in request.GET else None

    def context() -> dict:
        return {"page": catalogue_page(model_id=params.model_id, tokens_raw=tokens_raw, input_errors=params.errors)}

    snapshot = catalogue_snapshot()
    # The plain page of a model (no custom amount typed, nothing refused) is the same for every
    # visitor of a kind: rendered once per catalogue version. Anything else is rendered per request.
    if tokens_raw is None and not params.errors and (
        params.model_id is None or params.model_id in snapshot.data.models_by_id
    ):
        return render_per_version(
            request, template_name="orders/catalogue.html", key=params.model_id, context=context, snapshot=snapshot
        )
    return render(request, "orders/catalogue.html", context())


@require_GET
def quote_fragment(request: HttpRequest) -> HttpResponse:
    """The custom amount's live quote, swapped into the page by htmx as the customer types."""
    if not request.htmx:
        # Without JavaScript the form submits to the page itself; keep stray visits useful.
        query = request.GET.urlencode()
        return redirect(reverse("orders:catalogue") + (f"?{query}" if query else ""))
    params = quote_params_read(request.GET)
    if params.errors:
        outcome = QuoteOutcome(model=None, token_count=None, quote=None, input_errors=params.errors)
    elif not (params.tokens_raw or "").strip():
        outcome = None  # Nothing typed yet (or cleared): a hint, not an error.
    else:
        outcome = quote_outcome(
            model_id=params.model_id, tokens_raw=params.tokens_raw, currencies=accepted_currencies()
        )
    return render(
        request, "orders/_quote.html", {"outcome": outcome, "markup_percent": markup_percent(rules_from_settings())}
    )


def _usd(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def _quote_payload(outcome: QuoteOutcome | None, currency: Currency | None, errors: tuple[str, ...]) -> dict:
    priced = outcome.quote if outcome is not None else None
    crypto_amount = None
    if outcome is not None and currency is not None:
        crypto_amount = next((amount.display for amount in outcome.crypto if amount.currency == currency), None)
    return {
        "model": outcome.model.id if outcome is not None and outcome.model is not None else None,
        "token_count": outcome.token_count if outcome is not None else None,
        "price_per_token": format(priced.price_per_token.normalize(), "f") if priced is not None else None,
        "base_usd_cost": _usd(priced.base_usd_cost) if priced is not None else None,
        "markup_amount": _usd(priced.markup_amount) if priced is not None else None,
        "total_usd_cost": _usd(priced.total_usd_cost) if priced is not None else None,
        "crypto_type": currency.code if currency is not None else None,
        "crypto_amount": crypto_amount,
        "valid": not errors,
        "errors": list(errors),
    }


@cached_by_catalogue_version
@require_safe
def api_quote(request: HttpRequest) -> JsonResponse:
    """`GET /api/quote?model=&tokens=&crypto=`: the same quote as JSON; 400 with readable errors if invalid.

    `crypto` is optional; without it `crypto_type` and `crypto_amount` are null. `crypto_amount` is
    also null while no rate is cached (a preview: the gateway's figure at checkout is binding).
    """
    params = quote_params_read(request.GET)
    errors = list(params.errors)
    currency = None
    if params.crypto_code is not None:
        try:
            currency = crypto_read(params.crypto_code)
        except CryptoNotAccepted as exc:
            errors.append(str(exc))
    outcome = None
    if not params.errors:
        outcome = quote_outcome(
            model_id=params.model_id,
            tokens_raw=params.tokens_raw,
            currencies=[currency] if currency is not None else [],
        )
        errors.extend(outcome.errors)
    response = JsonResponse(_quote_payload(outcome, currency, tuple(errors)), status=400 if errors else 200)
    response["Cache-Control"] = "no-store"
    return response
