"""`GET /api/catalogue`: the store's rules, accepted coins and every buyable model with its packages.

Thin: `orders.catalogue_offer.catalogue_offer` computes everything with `orders.pricing` (the same
`quote` that `/api/quote` and checkout use); this module only shapes it as JSON. The document is
the same for every visitor, so it is cacheable and carries a strong ETag of its bytes: a client
that sends `If-None-Match` gets `304 Not Modified` while nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from django.views.decorators.http import require_safe

from orders.catalogue_cache import CatalogueData, catalogue_snapshot
from orders.catalogue_offer import CatalogueOffer, ModelListing
from orders.catalogue_selectors import usd_per_million
from payments.currencies import Currency

# Prices move at most once per catalogue sync; a minute of staleness is harmless, the quote and
# checkout always recompute.
CACHE_CONTROL = "public, max-age=60"
CURRENCY = "USD"


def _usd(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _per_token(price: Decimal) -> str:
    return format(price.normalize(), "f")


def _model_entry(listing: ModelListing) -> dict:
    model = listing.model
    return {
        "id": model.id,
        "name": model.name,
        "context_length": model.context_length,
        "prompt_price_per_million": usd_per_million(model.prompt_price),
        "completion_price_per_million": usd_per_million(model.completion_price),
        "price_per_token": _per_token(listing.price_per_token),
        "min_tokens": listing.min_tokens,
        "max_tokens": listing.max_tokens,
        "packages": [
            {
                "name": package.name,
                "tokens": package.token_count,
                "base_usd_cost": _usd(package.quote.base_usd_cost),
                "markup_amount": _usd(package.quote.markup_amount),
                "total_usd_cost": _usd(package.quote.total_usd_cost),
            }
            for package in listing.packages
        ],
    }


def catalogue_document(*, offer: CatalogueOffer, currencies: Sequence[Currency]) -> dict:
    """The JSON document: money as strings with two decimals, token counts as integers."""
    rules = offer.rules
    return {
        "currency": CURRENCY,
        "markup_rate": _usd(rules.markup_rate),
        "max_order_usd": _usd(rules.max_order_usd),
        "min_order_usd": _usd(rules.min_order_usd),
        "min_tokens": rules.min_tokens,
        "cryptocurrencies": [
            {"code": currency.code, "name": currency.name, "network": currency.network} for currency in currencies
        ],
        "models": [_model_entry(listing) for listing in offer.listings],
    }


def _catalogue_body(data: CatalogueData) -> tuple[bytes, str]:
    """The document as bytes and its ETag (a hash of the bytes), once per catalogue version."""
    document = catalogue_document(offer=data.offer, currencies=data.currencies)
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@require_safe
def api_catalogue(request: HttpRequest) -> HttpResponse:
    """`GET /api/catalogue`: JSON, `ETag` + `Cache-Control`; 304 when the client's copy is current."""
    snapshot = catalogue_snapshot()
    body, etag = snapshot.remember("api_catalogue", lambda: _catalogue_body(snapshot.data))
    if etag in parse_etags(request.headers.get("If-None-Match", "")):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response
