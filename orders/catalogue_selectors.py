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

from openrouter.models import AIModel
from orders.pricing import (
    PricingInputError,
    PricingRules,
    Quote,
    blended_price,
    parse_token_count,
    quote,
    token_range,
)
from payments.currencies import Currency, format_amount
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


def order_query_string(model_id: str, token_count: int) -> str:
    return urlencode({"model": model_id, "tokens": token_count})


@dataclass(frozen=True)
class QuoteOutcome:
    """A quote request answered: the quote, or why there is none."""

    model: ModelOffer | None
    token_count: int | None
    quote: Quote | None
    token_range: tuple[int, int] | None = None  # the model's valid token counts, when it has any
    crypto: tuple[CryptoAmount, ...] = ()
    input_errors: tuple[str, ...] = ()

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
        return order_query_string(self.quote.model_id, self.quote.token_count)


def price_custom_amount(
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


