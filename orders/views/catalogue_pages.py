"""The catalogue page, the live quote fragment (htmx) and the quote API. Anonymous visitors welcome.

Thin views: read the query string (orders.quote_input), ask one selector (orders.catalogue_selectors),
render. Nothing here writes to the database or calls a remote API.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_safe

from orders.catalogue_cache import catalogue_snapshot, quote_outcome
from orders.catalogue_offer import SORTS, catalogue_page, offer_filter_read
from orders.catalogue_selectors import QuoteOutcome, markup_percent
from orders.pricing import rules_from_settings
from orders.quote_input import CryptoNotAccepted, crypto_read, quote_params_read
from orders.services.top_up import top_up_carry
from orders.versioned_pages import cached_by_catalogue_version, render_per_version
from orders.views.quote_throttle import throttle_quotes
from payments.currencies import Currency, accepted_currencies


@require_safe
def catalogue(request: HttpRequest) -> HttpResponse:
    """`/`: every buyable model with its packages (filter/sort via the query string), the chosen model in
    detail and the custom amount form — all working without JS."""
    params = quote_params_read(request.GET)
    wanted = offer_filter_read(request.GET)
    tokens_raw = params.tokens_raw if "tokens" in request.GET else None
    top_up = _top_up(request)
    snapshot = catalogue_snapshot()

    def context() -> dict:
        page = catalogue_page(
            offer=snapshot.data.offer,
            wanted=wanted,
            model_id=params.model_id,
            tokens_raw=tokens_raw,
            input_errors=params.errors,
        )
        return {"page": page, "sorts": SORTS.items(), **top_up}

    # The plain page of a model and a provider/sort choice (nothing typed, nothing refused, no
    # top-up: that names the visitor's key) is the same for every visitor of a kind: rendered once
    # per catalogue version. Anything else is rendered per request.
    if (
        tokens_raw is None
        and not params.errors
        and not wanted.search
        and not top_up
        and (params.model_id is None or params.model_id in snapshot.data.models_by_id)
    ):
        return render_per_version(
            request,
            template_name="orders/catalogue.html",
            key=(params.model_id, wanted.provider, wanted.sort),
            context=context,
            snapshot=snapshot,
        )
    return render(request, "orders/catalogue.html", context())


@require_GET
@throttle_quotes(json=False)
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
        request,
        "orders/_quote.html",
        {"outcome": outcome, "markup_percent": markup_percent(rules_from_settings()), **_top_up(request)},
    )


def _top_up(request: HttpRequest) -> dict:
    """A top-up ("Add tokens to this key") travels through the catalogue as `?top_up_of=`."""
    return top_up_carry(user=request.user, top_up_of=request.GET.get("top_up_of"))


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


@require_safe
@throttle_quotes(json=True)
@cached_by_catalogue_version
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
