"""Reading a quote request from a query string, before any price is computed.

Each parameter may appear at most once: `tokens=1&tokens=2` is ambiguous (frameworks disagree on
which one wins), so it is refused instead of guessed. Values are bounded and must be printable
before they reach a database lookup (PostgreSQL rejects NUL characters with an exception).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import QueryDict

from payments.currencies import Currency, accepted_currencies

# AIModel.id is a CharField(max_length=200); nothing longer can name a model.
MAX_MODEL_ID_LENGTH = 200
MAX_CRYPTO_CODE_LENGTH = 20

_ONCE_MESSAGES = {
    "model": "Choose one model.",
    "tokens": "Enter one token count.",
    "crypto": "Choose one currency.",
}


@dataclass(frozen=True)
class QuoteParams:
    """What the query string asked for. A value is None when absent or given more than once."""

    model_id: str | None
    tokens_raw: str | None
    crypto_code: str | None
    errors: tuple[str, ...] = ()


def quote_params_read(query: QueryDict) -> QuoteParams:
    """Pick `model`, `tokens` and `crypto` out of a query string, refusing duplicates."""
    values: dict[str, str | None] = {}
    errors: list[str] = []
    for name, message in _ONCE_MESSAGES.items():
        given = query.getlist(name)
        if len(given) > 1:
            errors.append(message)
            values[name] = None
        else:
            values[name] = given[0] if given else None
    model_id = values["model"]
    if model_id is not None:
        model_id = model_id.strip()
    return QuoteParams(
        model_id=model_id,
        tokens_raw=values["tokens"],
        crypto_code=values["crypto"],
        errors=tuple(errors),
    )


def plausible_model_id(model_id: str | None) -> bool:
    """Whether a value could be a model id at all (worth one database lookup)."""
    return bool(model_id) and len(model_id) <= MAX_MODEL_ID_LENGTH and model_id.isprintable()


class CryptoNotAccepted(ValueError):
    """A currency code the store does not take. The message is safe to show."""


def crypto_read(code: str) -> Currency:
    """The accepted currency a customer named (case-insensitive), or CryptoNotAccepted."""
    accepted = accepted_currencies()
    wanted = code.strip().upper() if len(code) <= MAX_CRYPTO_CODE_LENGTH and code.isascii() else None
    for currency in accepted:
        if currency.code == wanted:
            return currency
    names = " or ".join(currency.code for currency in accepted)
    raise CryptoNotAccepted(f"We accept {names} only." if names else "No crypto currency is accepted right now.")
