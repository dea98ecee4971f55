"""Exact pricing (docs/ARCHITECTURE.md, "Pricing"): pure functions over `Decimal`, no I/O.

- price per token = (prompt + completion) / 2, exact (the blended rate);
- base = tokens × price rounded UP to the cent: the key's spending limit always covers every
  token the customer asked for;
- markup = base × rate rounded HALF_UP to the cent; total = base + markup;
- a quote is valid when the token count is an integer ≥ MIN_TOKENS and
  MIN_ORDER_USD ≤ total ≤ MAX_ORDER_USD.

The total is a non-decreasing function of the token count, so the valid counts of a model form
one interval; `token_range` finds both ends exactly by evaluating the same arithmetic `quote`
uses (never by float division). Arithmetic runs in a local context wide enough to be exact and
traps `Inexact`, so a silent rounding can never creep in.

Nothing here imports Django except `rules_from_settings`.

Why this module is long: every money figure the store shows or charges (quotes, token ranges,
package sizes) must come from one set of exact functions, so they live together here where the
property tests can check them against each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, Inexact, localcontext
from functools import lru_cache

CENT = Decimal("0.01")
# More digits than any token count this module accepts from a customer (999,999,999,999).
MAX_TOKEN_DIGITS = 12
# Longest raw token-count text worth looking at ("999,999,999,999" plus some slack).
MAX_RAW_LENGTH = 32


@dataclass(frozen=True)
class PricingRules:
    """Money rule 3 as numbers (docs/ARCHITECTURE.md, "Money rules")."""

    max_order_usd: Decimal
    markup_rate: Decimal
    min_tokens: int
    min_order_usd: Decimal


class PricingInputError(ValueError):
    """Input a customer typed that is not a token count. The message is safe to show them."""


def rules_from_settings() -> PricingRules:
    """The store's rules as configured (settings validate the bounds at start-up)."""
    from django.conf import settings

    return PricingRules(
        max_order_usd=Decimal(settings.MAX_ORDER_USD),
        markup_rate=Decimal(settings.MARKUP_RATE),
        min_tokens=int(settings.MIN_TOKENS),
        min_order_usd=Decimal(settings.MIN_ORDER_USD),
    )


@dataclass(frozen=True)
class Quote:
    """The price of `token_count` tokens of one model. `errors` are sentences for the customer."""

    model_id: str
    token_count: int
    price_per_token: Decimal
    base_usd_cost: Decimal
    markup_amount: Decimal
    total_usd_cost: Decimal
    errors: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


# --- exact arithmetic ---------------------------------------------------------------------------


def _exact_context(*operands: Decimal | int) -> Context:
    """A context wide enough that +, × and ÷2 of these operands are exact; any rounding raises."""
    width = 0
    for operand in operands:
        _sign, digits, exponent = Decimal(operand).as_tuple()
        width += len(digits) + abs(int(exponent))
    context = Context(prec=max(50, width + 10))
    context.traps[Inexact] = True
    return context


def _to_cent(amount: Decimal, rounding: str) -> Decimal:
    # quantize() rounds on purpose here, so it gets a context that does not trap Inexact.
    _sign, digits, exponent = amount.as_tuple()
    return amount.quantize(CENT, rounding=rounding, context=Context(prec=max(50, len(digits) + abs(exponent) + 5)))


def _check_price(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative Decimal")


def blended_price(prompt: Decimal, completion: Decimal) -> Decimal:
    """USD per token the store charges: the average of the prompt and completion prices, exact."""
    _check_price("prompt price", prompt)
    _check_price("completion price", completion)
    with localcontext(_exact_context(prompt, completion)):
        return (prompt + completion) / 2


@dataclass(frozen=True)
class _Amounts:
    base: Decimal
    markup: Decimal
    total: Decimal


def _amounts(token_count: int, price: Decimal, rate: Decimal) -> _Amounts:
    """base (ceiling to the cent), markup (half-up to the cent), total — for a count ≥ 0."""
    with localcontext(_exact_context(token_count, price, rate)):
        base = _to_cent(token_count * price, ROUND_CEILING)
        markup = _to_cent(base * rate, ROUND_HALF_UP)
        return _Amounts(base=base, markup=markup, total=base + markup)


def _largest_count_with_total_at_most(limit: Decimal, price: Decimal, rate: Decimal) -> int:
    """The largest N ≥ 0 whose total ≤ limit, or -1 if none (limit < 0). Needs price > 0.

    Starts from a Decimal estimate, brackets it by exponential steps, then bisects: every step
    evaluates the exact total, so the answer is exact however far the estimate was off.
    """
    if limit < 0:
        return -1
    with localcontext() as ctx:
        ctx.prec = 60
        estimate = int((limit / (price * (1 + rate))).to_integral_value(rounding=ROUND_FLOOR))

    def fits(n: int) -> bool:
        return _amounts(n, price, rate).total <= limit

    low, step = max(0, estimate), 1
    while low > 0 and not fits(low):
        low, step = max(0, low - step), step * 2
    # total(0) = 0 ≤ limit, so `low` fits now.
    high, step = low + 1, 1
    while fits(high):
        low, high, step = high, high + step, step * 2
    # Invariant: fits(low) and not fits(high).
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _resolve(rules: PricingRules | None) -> PricingRules:
    return rules if rules is not None else rules_from_settings()


def token_range(
    *, prompt_price: Decimal, completion_price: Decimal, rules: PricingRules | None = None
) -> tuple[int, int] | None:
    """The smallest and the largest valid token counts of a model, exact; None if no count is valid.

    The catalogue shows this next to the custom amount field, and error messages name the
    bounds, so both must be the true edges: `quote(smallest)` and `quote(largest)` are valid,
    `quote(smallest - 1)` and `quote(largest + 1)` are not.
    """
    return _token_range_at(blended_price(prompt_price, completion_price), _resolve(rules))


@lru_cache(maxsize=4096)
def _token_range_at(price: Decimal, rules: PricingRules) -> tuple[int, int] | None:
    # Pure and called for every refused quote's message (a catalogue page prices many packages
    # of one model), so the answer is kept per (price, rules).
    if price <= 0:
        return None
    largest = _largest_count_with_total_at_most(rules.max_order_usd, price, rules.markup_rate)
    # Totals are whole cents: "total ≥ minimum" is "not total ≤ minimum − 1 cent".
    below_minimum = _largest_count_with_total_at_most(rules.min_order_usd - CENT, price, rules.markup_rate)
    smallest = max(rules.min_tokens, below_minimum + 1)
    if smallest > largest:
        return None
    return smallest, largest


def _usd(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def _range_sentence(bounds: tuple[int, int] | None, rules: PricingRules) -> str:
    if bounds is None:
        return (
            f"No amount of this model fits between the {_usd(rules.min_order_usd)} payment minimum "
            f"and the {_usd(rules.max_order_usd)} limit per order, so it can't be ordered."
        )
    return f"You can order between {bounds[0]:,} and {bounds[1]:,} tokens of this model."


def quote(
    *,
    model_id: str,
    prompt_price: Decimal,
    completion_price: Decimal,
    token_count: int,
    rules: PricingRules | None = None,
) -> Quote:
    """Price `token_count` tokens of a model and say, in sentences, why it can't be ordered if so.

    Checkout calls this again on the server with the database prices; the browser's numbers are
    never trusted.
    """
    if isinstance(token_count, bool) or not isinstance(token_count, int):
        raise TypeError("token_count must be an int")
    rules = _resolve(rules)
    price = blended_price(prompt_price, completion_price)
    zero = Decimal("0.00")
    if price <= 0:
        return Quote(model_id, token_count, price, zero, zero, zero, ("This model has no price, so it can't be sold.",))

    amounts = _amounts(max(token_count, 0), price, rules.markup_rate)
    errors: list[str] = []
    if token_count < rules.min_tokens:
        bounds = token_range(prompt_price=prompt_price, completion_price=completion_price, rules=rules)
        errors.append(f"The smallest order is {rules.min_tokens:,} tokens. {_range_sentence(bounds, rules)}")
    elif amounts.total > rules.max_order_usd:
        bounds = token_range(prompt_price=prompt_price, completion_price=completion_price, rules=rules)
        if bounds is None:
            hint = _range_sentence(bounds, rules)
        else:
            hint = f"The most you can order of this model is {bounds[1]:,} tokens."
        errors.append(f"That's {_usd(amounts.total)} — over the {_usd(rules.max_order_usd)} limit per order. {hint}")
    elif amounts.total < rules.min_order_usd:
        bounds = token_range(prompt_price=prompt_price, completion_price=completion_price, rules=rules)
        if bounds is None:
            hint = _range_sentence(bounds, rules)
        else:
            hint = f"Order at least {bounds[0]:,} tokens of this model."
        errors.append(
            f"That's {_usd(amounts.total)} — under the {_usd(rules.min_order_usd)} minimum per order "
            f"(the payment gateway's floor). {hint}"
        )
    return Quote(
        model_id=model_id,
        token_count=token_count,
        price_per_token=price,
        base_usd_cost=amounts.base,
        markup_amount=amounts.markup,
        total_usd_cost=amounts.total,
        errors=tuple(errors),
    )


# --- reading what a customer typed --------------------------------------------------------------

_PLAIN = re.compile(r"[0-9]+")
# Thousands separators: "1,000,000" or "1 000 000" (one kind per number, groups of three).
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+")
_EXPONENT = re.compile(r"[0-9.]+[eE][+-]?[0-9]+")


def parse_token_count(raw: str | None) -> int:
    """A whole token count from text, or PricingInputError with a sentence saying what's wrong.

    Only ASCII digits are accepted (Python's `int()` would also take full-width, Arabic-Indic and
    other Unicode digits, underscores and signs — none of which a customer means as a count).
    Range rules (minimum, cap) are `quote`'s business, not this function's.
    """
    if raw is None:
        raise PricingInputError("Enter a number of tokens.")
    if not isinstance(raw, str):
        raise TypeError("raw must be a str")
    if len(raw) > MAX_RAW_LENGTH:
        raise PricingInputError("That's far more than a number of tokens. Enter digits only, e.g. 250000.")
    text = raw.strip()
    if not text:
        raise PricingInputError("Enter a number of tokens.")
    if _PLAIN.fullmatch(text):
        digits = text
    elif _GROUPED.fullmatch(text):
        digits = text.replace(",", "").replace(" ", "")
    else:
        raise PricingInputError(_why_not_a_count(text))
    digits = digits.lstrip("0") or "0"
    if len(digits) > MAX_TOKEN_DIGITS:
        raise PricingInputError("That's far more tokens than any order can hold.")
    return int(digits)


def _why_not_a_count(text: str) -> str:
    if text[0] == "-":
        return "The number of tokens can't be negative."
    if text[0] == "+":
        return "Enter the number of tokens without a sign, e.g. 250000."
    if _EXPONENT.fullmatch(text):
        return "Write the number of tokens out in full, without an exponent (e.g. 1000000, not 1e6)."
    if any(ch.isdigit() and not ("0" <= ch <= "9") for ch in text):
        return "Use the digits 0–9 only."
    if re.fullmatch(r"[0-9]*[.,][0-9]+", text):
        return "Tokens are counted in whole numbers — no decimals."
    return "Enter the number of tokens in digits, e.g. 250000."


# --- package sizes --------------------------------------------------------------------------------

# A package's size is read at a glance: at most this many significant digits (1,800,000, 92,000).
ROUND_DIGITS = 2


def round_count_down(count: int) -> int:
    """The largest count ≤ `count` with at most two significant digits (1,851,851 → 1,800,000)."""
    if count < 0:
        raise ValueError("count must not be negative")
    step = 10 ** max(0, len(str(count)) - ROUND_DIGITS)
    return count // step * step


def round_count_up(count: int) -> int:
    """The smallest count ≥ `count` with at most two significant digits (91,112 → 92,000)."""
    if count < 0:
        raise ValueError("count must not be negative")
    step = 10 ** max(0, len(str(count)) - ROUND_DIGITS)
    return -(-count // step) * step


def package_token_counts(
    *,
    prompt_price: Decimal,
    completion_price: Decimal,
    shares: tuple[Decimal, ...],
    rules: PricingRules | None = None,
) -> tuple[int | None, ...]:
    """The token count of each package (one per share, same order) for one model; None = not sold.

    The seed's packages ran 1 : 5 : 10 : 20 with the largest "the maximum allowed", so a package is
    a share of the model's largest round order under the cap: the largest valid count rounded
    down to two significant digits, times the share, rounded down again. A size under the
    model's smallest valid order is raised to the smallest round count that is valid (Starter
    meets the gateway minimum); a size still invalid (over the cap, or no valid range at all)
    or not larger than a smaller share's size is None, so the page never shows a package a
    customer cannot buy nor two packages of the same size.
    """
    for share in shares:
        if not isinstance(share, Decimal):
            raise TypeError(f"share must be a Decimal, not {type(share).__name__}")
    return _package_token_counts_at(blended_price(prompt_price, completion_price), tuple(shares), _resolve(rules))


@lru_cache(maxsize=4096)
def _package_token_counts_at(
    price: Decimal, shares: tuple[Decimal, ...], rules: PricingRules
) -> tuple[int | None, ...]:
    bounds = _token_range_at(price, rules)
    if bounds is None:
        return tuple(None for _ in shares)
    smallest, largest = bounds
    maximum = round_count_down(largest)
    sizes: dict[int, int | None] = {}
    previous = 0
    # Smaller shares first, so a raised size can only collide with a larger share's, which wins
    # over nothing: the smaller package is the one a customer would have bought anyway.
    for index in sorted(range(len(shares)), key=lambda i: (shares[i], i)):
        share = shares[index]
        size: int | None = None
        if share.is_finite() and share > 0:
            with localcontext(_exact_context(share, maximum)):
                target = int((share * maximum).to_integral_value(rounding=ROUND_FLOOR))
            size = round_count_down(target)
            if size < smallest:
                size = round_count_up(smallest)
            if size > largest or size <= previous:
                size = None
        if size is not None:
            previous = size
        sizes[index] = size
    return tuple(sizes[index] for index in range(len(shares)))
