"""What the catalogue page and the quote endpoints show: read-only selectors.

They read the database with a fixed number of queries (one for the models, one for the
packages, however many of each there are) and crypto rates from the cache only. Nothing here
calls a remote API: when a rate is missing the page says so instead of waiting for the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings

from openrouter.models import AIModel
from orders.catalogue_snapshot import Snapshot, VersionedSnapshot
from orders.models import TokenPackage
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
from payments.rates import usd_to_crypto

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
    """A package priced for one model: orderable, or unavailable with the reason."""

    package: TokenPackage
    quote: Quote
    unavailable_reason: str | None
    crypto: tuple[CryptoAmount, ...]

    @property
    def orderable(self) -> bool:
        return self.unavailable_reason is None

    @property
    def crypto_unavailable(self) -> bool:
        """No accepted currency has a cached rate right now."""
        return all_rates_missing(self.crypto)

    @property
    def order_query(self) -> str:
        return _order_query(self.quote.model_id, self.quote.token_count)


def _unavailable_reason(priced: Quote, rules: PricingRules) -> str | None:
    if priced.valid:
        return None
    if priced.token_count >= rules.min_tokens and priced.total_usd_cost > rules.max_order_usd:
        return f"Over the ${rules.max_order_usd:,.2f} limit per order for this model."
    if priced.token_count >= rules.min_tokens and priced.total_usd_cost < rules.min_order_usd:
        return f"Under the ${rules.min_order_usd:,.2f} payment minimum for this model."
    return priced.errors[0]


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
    data = catalogue_snapshot().data
    model = data.models_by_id.get(model_id)
    if model is None:
        return QuoteOutcome(model=None, token_count=None, quote=None, input_errors=(MODEL_UNAVAILABLE,))
    return _price_custom_amount(
        model, tokens_raw or "", rules=data.rules, currencies=currencies, rates=data.rates if currencies else {}
    )


@dataclass(frozen=True)
class CatalogueData:
    """What every catalogue page and quote of one catalogue version is computed from."""

    rules: PricingRules
    currencies: tuple[Currency, ...]
    models: tuple[ModelOffer, ...]
    models_by_id: Mapping[str, ModelOffer]
    packages: tuple[TokenPackage, ...]
    rates: Mapping[str, Decimal]


def _catalogue_data_load(rates: Mapping[str, Decimal]) -> CatalogueData:
    """Two queries: the orderable models and the active packages."""
    models = tuple(
        ModelOffer.from_model(model)
        for model in AIModel.objects.orderable()
        .only("id", "name", "context_length", "prompt_price", "completion_price")
        .order_by("name", "id")
    )
    return CatalogueData(
        rules=rules_from_settings(),
        currencies=tuple(accepted_currencies()),
        models=models,
        models_by_id={model.id: model for model in models},
        packages=tuple(TokenPackage.objects.filter(active=True).order_by("position", "token_count", "id")),
        rates=dict(rates),
    )


_CATALOGUE = VersionedSnapshot(_catalogue_data_load)


def catalogue_snapshot() -> Snapshot[CatalogueData]:
    """This process's catalogue data for the current catalogue version (one cache round trip when warm)."""
    return _CATALOGUE.current()


@dataclass(frozen=True)
class CataloguePage:
    """Everything the catalogue page renders."""

    models: tuple[ModelOffer, ...]
    selected: ModelOffer | None
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
    def no_package_orderable(self) -> bool:
        """Every package misses this model's valid range: point the customer at one that fits."""
        return bool(self.packages) and not any(offer.orderable for offer in self.packages)


def _choose_model(models: Sequence[ModelOffer], requested: str | None) -> tuple[ModelOffer | None, str | None]:
    by_id = {model.id: model for model in models}
    if requested and requested in by_id:
        return by_id[requested], None
    fallback = by_id.get(settings.DEFAULT_MODEL) or (models[0] if models else None)
    notice = MODEL_UNAVAILABLE if requested else None
    return fallback, notice


def catalogue_page(*, model_id: str | None, tokens_raw: str | None, input_errors: Sequence[str] = ()) -> CataloguePage:
    """The catalogue for one chosen model: its packages priced, and the custom amount if one was asked.

    `tokens_raw` None means the custom amount form was not submitted. No query while the catalogue
    version is unchanged, two when it changed (`catalogue_snapshot`).
    """
    data = catalogue_snapshot().data
    rules, models, currencies, rates = data.rules, data.models, data.currencies, data.rates
    selected, notice = _choose_model(models, model_id)
    notices = tuple(input_errors) + ((notice,) if notice else ())
    rates_missing = any(rates.get(currency.code) is None for currency in currencies)

    packages: tuple[PackageOffer, ...] = ()
    bounds = None
    custom = None
    if selected is not None:
        bounds = _token_range(selected, rules)
        offers = []
        for package in data.packages:
            priced = selected.quote(package.token_count, rules)
            reason = _unavailable_reason(priced, rules)
            crypto = crypto_amounts(priced.total_usd_cost, currencies, rates) if reason is None else ()
            offers.append(PackageOffer(package=package, quote=priced, unavailable_reason=reason, crypto=crypto))
        packages = tuple(offers)
        if tokens_raw is not None:
            custom = _price_custom_amount(selected, tokens_raw, rules=rules, currencies=currencies, rates=rates)

    return CataloguePage(
        models=models,
        selected=selected,
        notices=notices,
        packages=packages,
        currencies=currencies,
        rates_missing=rates_missing,
        token_range=bounds,
        custom=custom,
        tokens_value=(tokens_raw or "")[:64],
        rules=rules,
    )
