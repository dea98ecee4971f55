"""What the catalogue page and the quote endpoints show: read-only selectors.

They read the database with a fixed number of queries (one for the models, one for the
packages, however many of each there are) and crypto rates from the cache only. Nothing here
calls a remote API: when a rate is missing the page says so instead of waiting for the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django.conf import settings

from openrouter.models import AIModel
from orders.pricing import (
    PricingInputError,
    PricingRules,
    Quote,
    blended_price,
    parse_token_count,
    quote,
    rules_from_settings,
    token_range,
)
from orders.quote_input import plausible_model_id
from payments.currencies import Currency, accepted_currencies, format_amount
from payments.rates import cached_rates, usd_to_crypto

if TYPE_CHECKING:
    from orders.catalogue_offer import CatalogueOffer, ModelListing, OfferFilter, PackagePrice

MILLION = Decimal(1_000_000)
MODEL_UNAVAILABLE = "That model isn't available. Choose one from the catalogue."
CHOOSE_A_MODEL = "Choose a model."


def usd_per_million(price_per_token: Decimal) -> str:
    """USD per million tokens for display: at least cents ("3.00"), every digit kept ("0.0375"), no exponent."""
    per_million = price_per_token * MILLION
    if per_million == per_million.quantize(Decimal("0.01")):
        return f"{per_million:,.2f}"
    return format_amount(per_million)


def markup_percent(rules: PricingRules) -> str:
    """The markup rate as a percentage for display: "20" for 0.20."""
    return format((rules.markup_rate * 100).normalize(), "f")


@dataclass(frozen=True)
class ModelOffer:
    """An orderable model as the catalogue lists it (USD per token, Decimal)."""

    id: str
    name: str
    context_length: int | None
    prompt_price: Decimal
    completion_price: Decimal

    @classmethod
    def from_model(cls, model: AIModel) -> ModelOffer:
        return cls(
            id=model.id,
            name=model.name,
            context_length=model.context_length,
            prompt_price=model.prompt_price,
            completion_price=model.completion_price,
        )

    @property
    def prompt_per_million(self) -> str:
        return usd_per_million(self.prompt_price)

    @property
    def completion_per_million(self) -> str:
        return usd_per_million(self.completion_price)

    @property
    def blended_per_million(self) -> str:
        return usd_per_million(blended_price(self.prompt_price, self.completion_price))

    def quote(self, token_count: int, rules: PricingRules) -> Quote:
        return quote(
            model_id=self.id,
            prompt_price=self.prompt_price,
            completion_price=self.completion_price,
            token_count=token_count,
            rules=rules,
        )


@dataclass(frozen=True)
class CryptoAmount:
    """A USD total converted at the cached rate; `amount` None when no rate is cached right now."""

    currency: Currency
    amount: Decimal | None

    @property
    def display(self) -> str | None:
        return None if self.amount is None else format_amount(self.amount)


def crypto_amounts(
    total_usd: Decimal, currencies: Sequence[Currency], rates: Mapping[str, Decimal]
) -> tuple[CryptoAmount, ...]:
    """A preview only: the gateway's own figure, returned when the payment is created, is binding."""
    amounts = []
    for currency in currencies:
        rate = rates.get(currency.code)
        amount = usd_to_crypto(total_usd, currency.code, rate) if rate is not None and rate > 0 else None
        amounts.append(CryptoAmount(currency=currency, amount=amount))
    return tuple(amounts)


def all_rates_missing(amounts: Sequence[CryptoAmount]) -> bool:
    return bool(amounts) and all(amount.amount is None for amount in amounts)


def _order_query(model_id: str, token_count: int) -> str:
    return urlencode({"model": model_id, "tokens": token_count})


@dataclass(frozen=True)
class PackageOffer:
    """A package priced for the chosen model, with its crypto previews; always orderable."""

    package: PackagePrice
    quote: Quote
    crypto: tuple[CryptoAmount, ...]

    @property
    def crypto_unavailable(self) -> bool:
        """No accepted currency has a cached rate right now."""
        return all_rates_missing(self.crypto)

    @property
    def order_query(self) -> str:
        return _order_query(self.quote.model_id, self.quote.token_count)


@dataclass(frozen=True)
class QuoteOutcome:
    """A quote request answered: the quote, or why there is none."""

    model: ModelOffer | None
    token_count: int | None
    quote: Quote | None
    crypto: tuple[CryptoAmount, ...] = ()
    input_errors: tuple[str, ...] = ()
    token_range: tuple[int, int] | None = None

    @property
    def errors(self) -> tuple[str, ...]:
        return self.input_errors + (self.quote.errors if self.quote is not None else ())

    @property
    def valid(self) -> bool:
        return self.quote is not None and not self.errors

    @property
    def rates_missing(self) -> bool:
        return any(amount.amount is None for amount in self.crypto)

    @property
    def crypto_unavailable(self) -> bool:
        return all_rates_missing(self.crypto)

    @property
    def order_query(self) -> str | None:
        if not self.valid:
            return None
        return _order_query(self.quote.model_id, self.quote.token_count)


def _price_custom_amount(
    model: ModelOffer,
    tokens_raw: str,
    *,
    rules: PricingRules,
    currencies: Sequence[Currency],
    rates: Mapping[str, Decimal],
) -> QuoteOutcome:
    bounds = _token_range(model, rules)
    try:
        token_count = parse_token_count(tokens_raw)
    except PricingInputError as exc:
        return QuoteOutcome(model=model, token_count=None, quote=None, input_errors=(str(exc),), token_range=bounds)
    priced = model.quote(token_count, rules)
    crypto = crypto_amounts(priced.total_usd_cost, currencies, rates) if priced.valid else ()
    return QuoteOutcome(model=model, token_count=token_count, quote=priced, crypto=crypto, token_range=bounds)


def _token_range(model: ModelOffer, rules: PricingRules) -> tuple[int, int] | None:
    return token_range(prompt_price=model.prompt_price, completion_price=model.completion_price, rules=rules)


def orderable_model(model_id: str | None) -> ModelOffer | None:
    """One orderable model by id (one query at most; none for values that can't be an id)."""
    if not plausible_model_id(model_id):
        return None
    model = AIModel.objects.orderable().filter(pk=model_id).first()
    return ModelOffer.from_model(model) if model is not None else None


def quote_outcome(*, model_id: str | None, tokens_raw: str | None, currencies: Sequence[Currency] = ()) -> QuoteOutcome:
    """Answer "what would `tokens_raw` tokens of `model_id` cost?" for the quote fragment and API.

    `currencies` are the ones to convert the total into (cached rates only).
    """
    if not model_id:
        return QuoteOutcome(model=None, token_count=None, quote=None, input_errors=(CHOOSE_A_MODEL,))
    model = orderable_model(model_id)
    if model is None:
        return QuoteOutcome(model=None, token_count=None, quote=None, input_errors=(MODEL_UNAVAILABLE,))
    rates = cached_rates() if currencies else {}
    return _price_custom_amount(
        model, tokens_raw or "", rules=rules_from_settings(), currencies=currencies, rates=rates
    )


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

    `offer` is `orders.catalogue_offer.catalogue_offer()` (the only database reads); `tokens_raw`
    None means the custom amount form was not submitted. Crypto previews come from cached rates.
    """
    # Imported here: orders.catalogue_offer builds on this module's ModelOffer.
    from orders.catalogue_offer import listings_filtered

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
            custom = _price_custom_amount(selected, tokens_raw, rules=rules, currencies=currencies, rates=rates)

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
