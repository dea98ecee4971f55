"""The store's offer as plain data: every buyable model with its packages sized and priced.

One selector, `catalogue_offer`, reads the database with two queries (the orderable models and
the visible packages), sizes each package for each model with `orders.pricing` and prices it
with the same `quote` that `/api/quote` and checkout use, so the page, the catalogue API and the
price a customer pays can never disagree. It returns frozen dataclasses, no model instances, so
a caller may keep the result (e.g. render once per catalogue version).

`offer_filter_read` and `listings_filtered` let a customer narrow and sort the list on the
server (the page works without JavaScript).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.http import QueryDict

from openrouter.models import AIModel
from orders.catalogue_selectors import (
    MODEL_UNAVAILABLE,
    CryptoAmount,
    ModelOffer,
    QuoteOutcome,
    all_rates_missing,
    crypto_amounts,
    markup_percent,
    order_query_string,
    price_custom_amount,
)
from orders.models import TokenPackage
from orders.pricing import PricingRules, Quote, blended_price, package_token_counts, rules_from_settings, token_range
from payments.currencies import Currency, accepted_currencies
from payments.rates import cached_rates

MAX_SEARCH_LENGTH = 100


@dataclass(frozen=True)
class PackagePrice:
    """One package sized and priced for one model; always a valid order."""

    name: str
    token_count: int
    quote: Quote


@dataclass(frozen=True)
class PackageOffer:
    """A package priced for the chosen model, with its crypto previews; always orderable."""

    package: PackagePrice
    quote: Quote
    crypto: tuple[CryptoAmount, ...]

    @property
    def order_query(self) -> str:
        return order_query_string(self.quote.model_id, self.quote.token_count)

    @property
    def crypto_unavailable(self) -> bool:
        """No accepted currency has a cached rate right now."""
        return all_rates_missing(self.crypto)


@dataclass(frozen=True)
class ModelListing:
    """A model a customer can buy now, with its valid token range and its packages."""

    model: ModelOffer
    provider: str
    provider_name: str
    short_name: str
    packages: tuple[PackagePrice, ...]
    min_tokens: int
    max_tokens: int

    @property
    def price_per_token(self) -> Decimal:
        """The blended USD per token every order of this model is priced at."""
        return blended_price(self.model.prompt_price, self.model.completion_price)


@dataclass(frozen=True)
class CatalogueOffer:
    """Everything on sale: the rules and every buyable model (sorted by name)."""

    rules: PricingRules
    listings: tuple[ModelListing, ...]

    @property
    def providers(self) -> tuple[tuple[str, str], ...]:
        """(slug, display name) of every provider with a model on sale, by name."""
        seen = {listing.provider: listing.provider_name for listing in self.listings}
        return tuple(sorted(seen.items(), key=lambda item: item[1].lower()))

    def listing(self, model_id: str | None) -> ModelListing | None:
        return next((listing for listing in self.listings if listing.model.id == model_id), None)


def provider_of(model_id: str, name: str) -> tuple[str, str, str]:
    """(slug, display name, name without the provider) from OpenRouter's "Provider: Model" names."""
    slug = model_id.split("/", 1)[0] if "/" in model_id else model_id
    prefix, separator, rest = name.partition(": ")
    if separator and rest:
        return slug, prefix, rest
    return slug, slug.replace("-", " ").title(), name


def catalogue_offer(*, rules: PricingRules | None = None) -> CatalogueOffer:
    """Every orderable model that at least one amount of fits the rules, packages sized for it.

    Two queries however many models and packages. A model no amount of which can be sold (its
    100 tokens already cost more than the cap) is left out: the store never shows what can't be
    bought. A package whose size can't be sold for a model is left out for that model only.
    """
    rules = rules or rules_from_settings()
    packages = tuple(
        TokenPackage.objects.filter(active=True).order_by("position", "share", "id").values_list("name", "share")
    )
    shares = tuple(share for _name, share in packages)
    listings = []
    for row in (
        AIModel.objects.orderable()
        .only("id", "name", "context_length", "prompt_price", "completion_price")
        .order_by("name", "id")
    ):
        model = ModelOffer.from_model(row)
        bounds = token_range(prompt_price=model.prompt_price, completion_price=model.completion_price, rules=rules)
        if bounds is None:
            continue
        sizes = package_token_counts(
            prompt_price=model.prompt_price, completion_price=model.completion_price, shares=shares, rules=rules
        )
        priced = tuple(
            PackagePrice(name=name, token_count=size, quote=model.quote(size, rules))
            for (name, _share), size in zip(packages, sizes, strict=True)
            if size is not None
        )
        slug, provider_name, short_name = provider_of(model.id, model.name)
        listings.append(
            ModelListing(
                model=model,
                provider=slug,
                provider_name=provider_name,
                short_name=short_name,
                packages=priced,
                min_tokens=bounds[0],
                max_tokens=bounds[1],
            )
        )
    return CatalogueOffer(rules=rules, listings=tuple(listings))


# --- finding a model --------------------------------------------------------------------------------

SORTS = {
    "name": "Name",
    "price": "Price: low to high",
    "-price": "Price: high to low",
    "context": "Longest context",
}
DEFAULT_SORT = "name"


@dataclass(frozen=True)
class OfferFilter:
    """What the customer asked the list to show: a provider slug, words to find, an order."""

    provider: str = ""
    search: str = ""
    sort: str = DEFAULT_SORT

    @property
    def active(self) -> bool:
        return bool(self.provider or self.search or self.sort != DEFAULT_SORT)


def _single(query: QueryDict, name: str) -> str:
    # A repeated parameter is ambiguous; the list is only a view, so the first one is used.
    value = query.get(name, "")
    return value if value.isprintable() else ""


def offer_filter_read(query: QueryDict) -> OfferFilter:
    """The filter from a query string; anything unknown falls back to "show everything by name"."""
    sort = _single(query, "sort")
    return OfferFilter(
        provider=_single(query, "provider").strip()[:MAX_SEARCH_LENGTH],
        search=" ".join(_single(query, "q").split())[:MAX_SEARCH_LENGTH],
        sort=sort if sort in SORTS else DEFAULT_SORT,
    )


def _matches(listing: ModelListing, words: Sequence[str]) -> bool:
    haystack = f"{listing.model.name} {listing.model.id}".casefold()
    return all(word in haystack for word in words)


def listings_filtered(listings: Sequence[ModelListing], wanted: OfferFilter) -> tuple[ModelListing, ...]:
    """The listings of one provider whose name or id contains every word searched, in the order asked."""
    words = wanted.search.casefold().split()
    found = [
        listing
        for listing in listings
        if (not wanted.provider or listing.provider == wanted.provider) and _matches(listing, words)
    ]
    if wanted.sort == "name":
        found.sort(key=lambda listing: (listing.short_name.casefold(), listing.model.id))
    elif wanted.sort == "price":
        found.sort(key=lambda listing: (listing.price_per_token, listing.short_name.casefold()))
    elif wanted.sort == "-price":
        found.sort(key=lambda listing: (-listing.price_per_token, listing.short_name.casefold()))
    elif wanted.sort == "context":
        found.sort(key=lambda listing: (-(listing.model.context_length or 0), listing.short_name.casefold()))
    return tuple(found)


@dataclass(frozen=True)
class CataloguePage:
    """Everything the catalogue page renders."""

    models: tuple[ModelOffer, ...]
    listings: tuple[ModelListing, ...]
    providers: tuple[tuple[str, str], ...]
    filter: OfferFilter
    selected: ModelOffer | None
    selected_listing: ModelListing | None
    notices: tuple[str, ...]
    packages: tuple[PackageOffer, ...]
    currencies: tuple[Currency, ...]
    rates_missing: bool
    token_range: tuple[int, int] | None
    custom: QuoteOutcome | None
    tokens_value: str
    rules: PricingRules

    @property
    def markup_percent(self) -> str:
        return markup_percent(self.rules)

    @property
    def presets(self) -> tuple[int, ...]:
        """Token counts offered as one-tap custom amounts: the smallest order, each package, the largest."""
        if self.selected_listing is None:
            return ()
        listing = self.selected_listing
        counts = {listing.min_tokens, listing.max_tokens, *(package.token_count for package in listing.packages)}
        return tuple(sorted(counts))


def _choose_model(models: Sequence[ModelOffer], requested: str | None) -> tuple[ModelOffer | None, str | None]:
    by_id = {model.id: model for model in models}
    if requested and requested in by_id:
        return by_id[requested], None
    fallback = by_id.get(settings.DEFAULT_MODEL) or (models[0] if models else None)
    notice = MODEL_UNAVAILABLE if requested else None
    return fallback, notice


def catalogue_page(
    *,
    offer: CatalogueOffer,
    wanted: OfferFilter,
    model_id: str | None,
    tokens_raw: str | None,
    input_errors: Sequence[str] = (),
) -> CataloguePage:
    """The catalogue: every buyable model (filtered and sorted as asked) and one chosen model in detail.

    `offer` is `catalogue_offer()` (the only database reads); `tokens_raw`
    None means the custom amount form was not submitted. Crypto previews come from cached rates.
    """
    rules = offer.rules
    models = tuple(listing.model for listing in offer.listings)
    selected, notice = _choose_model(models, model_id)
    selected_listing = offer.listing(selected.id) if selected is not None else None
    notices = tuple(input_errors) + ((notice,) if notice else ())
    currencies = tuple(accepted_currencies())
    rates = cached_rates()
    rates_missing = any(rates.get(currency.code) is None for currency in currencies)

    packages: tuple[PackageOffer, ...] = ()
    bounds = None
    custom = None
    if selected_listing is not None:
        bounds = (selected_listing.min_tokens, selected_listing.max_tokens)
        packages = tuple(
            PackageOffer(
                package=package,
                quote=package.quote,
                crypto=crypto_amounts(package.quote.total_usd_cost, currencies, rates),
            )
            for package in selected_listing.packages
        )
        if tokens_raw is not None:
            custom = price_custom_amount(selected, tokens_raw, rules=rules, currencies=currencies, rates=rates)

    return CataloguePage(
        models=models,
        listings=listings_filtered(offer.listings, wanted),
        providers=offer.providers,
        filter=wanted,
        selected=selected,
        selected_listing=selected_listing,
        notices=notices,
        packages=packages,
        currencies=currencies,
        rates_missing=rates_missing,
        token_range=bounds,
        custom=custom,
        tokens_value=(tokens_raw or "")[:64],
        rules=rules,
    )
