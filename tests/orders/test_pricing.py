"""orders.pricing: worked examples, rounding directions, rule edges, hostile input, properties.

Most tests pass explicit `PricingRules`, so they need no database or settings; the numbers in
the worked examples are computed by hand in the comments.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from math import ceil

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from orders.pricing import (
    CENT,
    PricingInputError,
    PricingRules,
    Quote,
    blended_price,
    package_token_counts,
    parse_token_count,
    quote,
    round_count_down,
    round_count_up,
    rules_from_settings,
    token_range,
)

RULES = PricingRules(
    max_order_usd=Decimal("20.00"), markup_rate=Decimal("0.20"), min_tokens=100, min_order_usd=Decimal("1.00")
)
SONNET = {"prompt_price": Decimal("0.000003"), "completion_price": Decimal("0.000015")}
# Claude 3 Opus: $15 / $75 per million → $45 per million blended.
OPUS = {"prompt_price": Decimal("0.000015"), "completion_price": Decimal("0.000075")}


def sonnet(tokens: int, rules: PricingRules = RULES) -> Quote:
    return quote(model_id="anthropic/claude-3-sonnet", token_count=tokens, rules=rules, **SONNET)


# --- blended price --------------------------------------------------------------------------------


def test_blended_price_is_the_exact_average_of_prompt_and_completion():
    assert blended_price(Decimal("0.000003"), Decimal("0.000015")) == Decimal("0.000009")
    # An odd sum needs one more digit; nothing may be rounded away.
    assert blended_price(Decimal("0.000000001"), Decimal("0.000000002")) == Decimal("0.0000000015")
    assert blended_price(Decimal("0.000003000000000"), Decimal("0.000015000000001")) == Decimal("0.0000090000000005")


def test_blended_price_refuses_floats_and_nonsense():
    with pytest.raises(TypeError):
        blended_price(0.000003, Decimal("0.000015"))
    for bad in (Decimal("NaN"), Decimal("Infinity"), Decimal("-0.000001")):
        with pytest.raises(ValueError):
            blended_price(bad, Decimal("0.000015"))


# --- worked examples (Claude 3 Sonnet, $9 per million blended) ------------------------------------


def test_sonnet_200k_tokens_costs_2_16():
    # 200,000 × 0.000009 = 1.80 exactly; markup 0.36; total 2.16.
    q = sonnet(200_000)
    assert q.price_per_token == Decimal("0.000009")
    assert (q.base_usd_cost, q.markup_amount, q.total_usd_cost) == (Decimal("1.80"), Decimal("0.36"), Decimal("2.16"))
    assert q.valid and q.errors == ()


def test_sonnet_1000_tokens_rounds_base_up_and_is_under_the_gateway_minimum():
    # 1,000 × 0.000009 = 0.009 → base rounded UP to 0.01; markup 0.002 → 0.00; total 0.01 < 1.00.
    q = sonnet(1_000)
    assert (q.base_usd_cost, q.markup_amount, q.total_usd_cost) == (Decimal("0.01"), Decimal("0.00"), Decimal("0.01"))
    assert not q.valid
    assert q.errors == (
        "That's $0.01 — under the $1.00 minimum per order (the payment gateway's floor). "
        "Order at least 91,112 tokens of this model.",
    )


def test_base_always_rounds_up_even_by_a_millionth_of_a_cent():
    # 200,001 × 0.000009 = 1.800009 → 1.81 (rounding down would undercharge the key's limit).
    assert sonnet(200_001).base_usd_cost == Decimal("1.81")


def test_markup_rounds_half_up():
    # With a 25% rate a half cent appears: 100,000 × 0.000001 = 0.10; 0.10 × 0.25 = 0.025 → 0.03.
    rules = PricingRules(Decimal("20.00"), Decimal("0.25"), 100, Decimal("0.00"))
    q = quote(
        model_id="m",
        prompt_price=Decimal("0.000001"),
        completion_price=Decimal("0.000001"),
        token_count=100_000,
        rules=rules,
    )
    assert (q.base_usd_cost, q.markup_amount, q.total_usd_cost) == (Decimal("0.10"), Decimal("0.03"), Decimal("0.13"))


def test_markup_below_half_a_cent_rounds_down():
    # 91,111 × 0.000009 = 0.819999 → base 0.82; 0.82 × 0.2 = 0.164 → 0.16; total 0.98.
    q = sonnet(91_111)
    assert (q.base_usd_cost, q.markup_amount, q.total_usd_cost) == (Decimal("0.82"), Decimal("0.16"), Decimal("0.98"))


def test_the_gateway_minimum_edge_for_sonnet():
    # 91,112 × 0.000009 = 0.820008 → 0.83; markup 0.166 → 0.17; total exactly 1.00.
    assert not sonnet(91_111).valid
    q = sonnet(91_112)
    assert q.total_usd_cost == Decimal("1.00")
    assert q.valid


def test_the_20_dollar_cap_edge_for_sonnet():
    # 1,852,222 × 0.000009 = 16.669998 → 16.67; markup 3.334 → 3.33; total 20.00 (allowed).
    at_cap = sonnet(1_852_222)
    assert at_cap.total_usd_cost == Decimal("20.00")
    assert at_cap.valid
    # One more token: 16.670007 → 16.68; markup 3.336 → 3.34; total 20.02 (refused).
    past_cap = sonnet(1_852_223)
    assert past_cap.total_usd_cost == Decimal("20.02")
    assert past_cap.errors == (
        "That's $20.02 — over the $20.00 limit per order. The most you can order of this model is 1,852,222 tokens.",
    )


def test_orders_far_past_the_cap_are_refused_with_the_largest_valid_count():
    q = sonnet(10**30)
    assert not q.valid
    assert "over the $20.00 limit per order" in q.errors[0]
    assert "1,852,222 tokens" in q.errors[0]


def test_the_100_token_minimum():
    # An expensive model, so that 100 tokens clear the $1.00 gateway minimum on their own:
    # 100 × 0.01 = 1.00 base, 0.20 markup, 1.20 total.
    pricey = {"prompt_price": Decimal("0.01"), "completion_price": Decimal("0.01")}
    assert quote(model_id="m", token_count=100, rules=RULES, **pricey).valid
    for tokens in (99, 1, 0, -5):
        q = quote(model_id="m", token_count=tokens, rules=RULES, **pricey)
        assert not q.valid
        assert q.errors[0].startswith("The smallest order is 100 tokens.")
    assert token_range(rules=RULES, **pricey) == (100, 1_667)


def test_the_minimum_is_checked_before_the_price_for_sonnet():
    q = sonnet(99)
    assert q.errors == (
        "The smallest order is 100 tokens. You can order between 91,112 and 1,852,222 tokens of this model.",
    )


def test_token_range_of_sonnet_is_exact():
    assert token_range(rules=RULES, **SONNET) == (91_112, 1_852_222)


def test_token_range_follows_database_precision_prices():
    # AIModel stores 15 decimal places; trailing zeros must not change anything.
    assert token_range(
        prompt_price=Decimal("0.000003000000000"), completion_price=Decimal("0.000015000000000"), rules=RULES
    ) == (91_112, 1_852_222)


def test_a_model_too_expensive_for_the_cap_has_no_range_and_says_so():
    # 100 tokens × $1 = $100 base, $120 total: nothing fits under $20.
    pricey = {"prompt_price": Decimal("1"), "completion_price": Decimal("1")}
    assert token_range(rules=RULES, **pricey) is None
    q = quote(model_id="m", token_count=100, rules=RULES, **pricey)
    assert q.total_usd_cost == Decimal("120.00")
    assert "over the $20.00 limit per order" in q.errors[0]
    assert "can't be ordered" in q.errors[0]


def test_a_free_model_cannot_be_sold():
    free = {"prompt_price": Decimal("0"), "completion_price": Decimal("0")}
    assert token_range(rules=RULES, **free) is None
    q = quote(model_id="m", token_count=1_000, rules=RULES, **free)
    assert not q.valid
    assert q.errors == ("This model has no price, so it can't be sold.",)


def test_packages_of_an_expensive_model():
    # Opus at $45 / M: Enterprise 20,000 → 0.90 + 0.18 = 1.08 (valid); Starter 1,000 → 0.06 (too small);
    # 500,000 → 22.50 + 4.50 = 27.00 (over the cap).
    assert quote(model_id="o", token_count=20_000, rules=RULES, **OPUS).total_usd_cost == Decimal("1.08")
    assert quote(model_id="o", token_count=20_000, rules=RULES, **OPUS).valid
    assert not quote(model_id="o", token_count=1_000, rules=RULES, **OPUS).valid
    assert quote(model_id="o", token_count=500_000, rules=RULES, **OPUS).total_usd_cost == Decimal("27.00")
    assert not quote(model_id="o", token_count=500_000, rules=RULES, **OPUS).valid


def test_quote_refuses_a_token_count_that_is_not_an_int():
    for bad in (1.5, "1000", Decimal("1000"), True, None):
        with pytest.raises(TypeError):
            quote(model_id="m", token_count=bad, rules=RULES, **SONNET)


def test_rules_come_from_settings(settings):
    settings.MAX_ORDER_USD = Decimal("10.00")
    settings.MIN_ORDER_USD = Decimal("2.00")
    settings.MARKUP_RATE = Decimal("0.20")
    settings.MIN_TOKENS = 100
    assert rules_from_settings() == PricingRules(Decimal("10.00"), Decimal("0.20"), 100, Decimal("2.00"))
    # quote() and token_range() without explicit rules follow them.
    low, high = token_range(**SONNET)
    assert quote(model_id="m", token_count=high, **SONNET).total_usd_cost <= Decimal("10.00")
    assert not quote(model_id="m", token_count=high + 1, **SONNET).valid
    assert quote(model_id="m", token_count=low, **SONNET).total_usd_cost >= Decimal("2.00")
    assert not quote(model_id="m", token_count=low - 1, **SONNET).valid


def test_pricing_module_imports_no_django():
    code = "import sys, orders.pricing; sys.exit(1 if any(m.startswith('django') for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- parse_token_count ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1000", 1000),
        ("  250000 ", 250_000),
        ("0", 0),
        ("99", 99),
        ("007", 7),
        ("1,000", 1000),
        ("1 000", 1000),
        ("1,852,222", 1_852_222),
        ("999999999999", 999_999_999_999),
    ],
)
def test_parse_token_count_accepts_plain_and_grouped_ascii_digits(raw, expected):
    assert parse_token_count(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter a number of tokens."),
        ("   ", "Enter a number of tokens."),
        (None, "Enter a number of tokens."),
        ("abc", "Enter the number of tokens in digits, e.g. 250000."),
        ("1.5", "Tokens are counted in whole numbers — no decimals."),
        ("1,5", "Tokens are counted in whole numbers — no decimals."),
        ("-5", "The number of tokens can't be negative."),
        ("+5", "Enter the number of tokens without a sign, e.g. 250000."),
        ("1e9", "Write the number of tokens out in full, without an exponent (e.g. 1000000, not 1e6)."),
        ("1E+9", "Write the number of tokens out in full, without an exponent (e.g. 1000000, not 1e6)."),
        ("10**30", "Enter the number of tokens in digits, e.g. 250000."),
        (str(10**30), "That's far more tokens than any order can hold."),
        ("1000000000000", "That's far more tokens than any order can hold."),
        ("１０００", "Use the digits 0–9 only."),
        ("١٠٠٠", "Use the digits 0–9 only."),
        ("१०००", "Use the digits 0–9 only."),
        ("1_000", "Enter the number of tokens in digits, e.g. 250000."),
        ("1,00,000", "Enter the number of tokens in digits, e.g. 250000."),
        ("1,000 000", "Enter the number of tokens in digits, e.g. 250000."),
        ("1\u00a0000", "Enter the number of tokens in digits, e.g. 250000."),
        ("0x10", "Enter the number of tokens in digits, e.g. 250000."),
        ("1000\x00", "Enter the number of tokens in digits, e.g. 250000."),
        ("Infinity", "Enter the number of tokens in digits, e.g. 250000."),
        ("9" * 10_240, "That's far more than a number of tokens. Enter digits only, e.g. 250000."),
        ("x" * 10_240, "That's far more than a number of tokens. Enter digits only, e.g. 250000."),
    ],
)
def test_parse_token_count_refuses_hostile_input_with_a_clear_message(raw, message):
    with pytest.raises(PricingInputError) as excinfo:
        parse_token_count(raw)
    assert str(excinfo.value) == message
    assert isinstance(excinfo.value, ValueError)


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_parse_token_count_round_trips_every_count_it_accepts(n):
    assert parse_token_count(str(n)) == n
    assert parse_token_count(f"{n:,}") == n
    assert parse_token_count(f"{n:,}".replace(",", " ")) == n


@given(st.text(max_size=40))
@example("٣")
@example("1٣")
def test_parse_token_count_only_ever_fails_with_a_pricing_input_error(raw):
    try:
        value = parse_token_count(raw)
    except PricingInputError as exc:
        assert str(exc)
    else:
        assert 0 <= value < 10**12
        assert set(raw.strip()) <= set("0123456789, ")


# --- properties -----------------------------------------------------------------------------------

# USD per token from $0.001 / M to $10,000 / M, at the database's 15 decimal places.
prices = st.integers(min_value=1, max_value=10**10).map(lambda n: Decimal(n).scaleb(-15))
token_counts = st.integers(min_value=0, max_value=10**10)
rules_strategy = st.builds(
    PricingRules,
    max_order_usd=st.integers(min_value=100, max_value=2_000).map(lambda n: Decimal(n).scaleb(-2)),
    markup_rate=st.integers(min_value=0, max_value=100).map(lambda n: Decimal(n).scaleb(-2)),
    min_tokens=st.integers(min_value=1, max_value=1_000),
    min_order_usd=st.integers(min_value=0, max_value=100).map(lambda n: Decimal(n).scaleb(-2)),
)


def oracle_totals(tokens: int, prompt: Decimal, completion: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """Independent arithmetic with fractions: (base, total) in cents as Decimals."""
    exact = Fraction(tokens) * (Fraction(prompt) + Fraction(completion)) / 2
    base_cents = ceil(exact * 100)
    markup = (Decimal(base_cents) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return Decimal(base_cents).scaleb(-2), (Decimal(base_cents) + markup).scaleb(-2)


@given(prompt=prices, completion=prices, tokens=token_counts)
@settings(max_examples=300)
def test_a_valid_quote_never_exceeds_the_cap_or_falls_under_the_minimum(prompt, completion, tokens):
    q = quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=tokens, rules=RULES)
    if q.valid:
        assert q.total_usd_cost <= RULES.max_order_usd
        assert q.total_usd_cost >= RULES.min_order_usd
        assert tokens >= RULES.min_tokens
    else:
        assert all(isinstance(error, str) and error.endswith(".") for error in q.errors)


@given(prompt=prices, completion=prices, tokens=token_counts, rules=rules_strategy)
@settings(max_examples=300)
def test_markup_is_the_rate_to_the_cent_and_total_is_base_plus_markup(prompt, completion, tokens, rules):
    q = quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=tokens, rules=rules)
    assert q.markup_amount == (q.base_usd_cost * rules.markup_rate).quantize(CENT, rounding=ROUND_HALF_UP)
    assert q.total_usd_cost == q.base_usd_cost + q.markup_amount
    for amount in (q.base_usd_cost, q.markup_amount, q.total_usd_cost):
        assert amount.as_tuple().exponent == -2


@given(prompt=prices, completion=prices, tokens=token_counts)
@settings(max_examples=300)
def test_base_never_undercharges_the_key_limit_and_overcharges_by_under_a_cent(prompt, completion, tokens):
    q = quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=tokens, rules=RULES)
    with localcontext() as ctx:
        ctx.prec = 100
        exact = tokens * (prompt + completion) / 2
        assert q.base_usd_cost >= exact
        assert q.base_usd_cost - exact < CENT


@given(prompt=prices, completion=prices, tokens=token_counts)
@settings(max_examples=300)
def test_amounts_match_an_independent_fraction_oracle(prompt, completion, tokens):
    q = quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=tokens, rules=RULES)
    assert (q.base_usd_cost, q.total_usd_cost) == oracle_totals(tokens, prompt, completion, RULES.markup_rate)


@given(prompt=prices, completion=prices, tokens=token_counts, more=st.integers(min_value=1, max_value=10**9))
@settings(max_examples=300)
def test_more_tokens_never_cost_less(prompt, completion, tokens, more):
    fewer = quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=tokens, rules=RULES)
    extra = quote(
        model_id="m", prompt_price=prompt, completion_price=completion, token_count=tokens + more, rules=RULES
    )
    assert extra.base_usd_cost >= fewer.base_usd_cost
    assert extra.total_usd_cost >= fewer.total_usd_cost


@given(prompt=prices, completion=prices, rules=rules_strategy)
@settings(max_examples=300)
@example(prompt=Decimal("0.000003"), completion=Decimal("0.000015"), rules=RULES)
def test_token_range_ends_are_the_exact_edges_of_validity(prompt, completion, rules):
    bounds = token_range(prompt_price=prompt, completion_price=completion, rules=rules)

    def valid(n: int) -> bool:
        return quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=n, rules=rules).valid

    if bounds is None:
        # Then not even the count closest to fitting is valid.
        assert not valid(rules.min_tokens)
        return
    smallest, largest = bounds
    assert smallest <= largest
    assert valid(smallest) and valid(largest)
    assert not valid(largest + 1)
    assert not valid(smallest - 1)
    middle = (smallest + largest) // 2
    assert valid(middle)


@given(prompt=prices, completion=prices)
@settings(max_examples=300)
def test_token_range_is_none_only_when_no_count_is_valid(prompt, completion):
    # With the store's rules a range is missing only when min_tokens already exceeds the cap.
    bounds = token_range(prompt_price=prompt, completion_price=completion, rules=RULES)
    at_minimum = quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=100, rules=RULES)
    assert (bounds is None) == (at_minimum.total_usd_cost > RULES.max_order_usd)


def test_token_range_matches_brute_force_for_a_pricey_model():
    # $0.01 per token: few enough valid counts to try every one of them.
    pricey = {"prompt_price": Decimal("0.005"), "completion_price": Decimal("0.015")}
    bounds = token_range(rules=RULES, **pricey)
    valid = [n for n in range(0, 2_000) if quote(model_id="m", token_count=n, rules=RULES, **pricey).valid]
    assert bounds == (valid[0], valid[-1])
    assert valid == list(range(valid[0], valid[-1] + 1))


@given(st.integers(min_value=1, max_value=10**6))
def test_range_bounds_are_exact_for_cheap_models(scale):
    # Very cheap models: the estimate can be thousands of tokens off; the answer must not be.
    price = Decimal(scale).scaleb(-15)
    assume(price > 0)
    smallest, largest = token_range(prompt_price=price, completion_price=price, rules=RULES)
    assert quote(model_id="m", prompt_price=price, completion_price=price, token_count=largest, rules=RULES).valid
    assert not quote(
        model_id="m", prompt_price=price, completion_price=price, token_count=largest + 1, rules=RULES
    ).valid
    assert not quote(
        model_id="m", prompt_price=price, completion_price=price, token_count=smallest - 1, rules=RULES
    ).valid


# --- package sizes --------------------------------------------------------------------------------

SEED_SHARES = (Decimal("0.05"), Decimal("0.25"), Decimal("0.5"), Decimal("1"))


def test_sonnet_packages_are_the_worked_example_of_the_issue():
    # Sonnet's largest order is 1,852,222 tokens ($16.67 + $3.33 = $20.00) → Enterprise 1.8M;
    # ½ → 900k, ¼ → 450k; 1/20 → 90k is $0.97, under $1, so Starter is raised to the smallest
    # round count ≥ 91,112 (the smallest valid order): 92k.
    sizes = package_token_counts(shares=SEED_SHARES, rules=RULES, **SONNET)

    assert sizes == (92_000, 450_000, 900_000, 1_800_000)
    totals = [sonnet(size).total_usd_cost for size in sizes]
    assert totals == [Decimal("1.00"), Decimal("4.86"), Decimal("9.72"), Decimal("19.44")]


def test_round_counts_keep_two_significant_digits():
    assert round_count_down(1_851_851) == 1_800_000
    assert round_count_down(99) == 99
    assert round_count_down(100) == 100
    assert round_count_down(109) == 100
    assert round_count_down(0) == 0
    assert round_count_up(91_112) == 92_000
    assert round_count_up(99_001) == 100_000
    assert round_count_up(92_000) == 92_000
    with pytest.raises(ValueError):
        round_count_down(-1)


def test_a_model_too_expensive_for_the_cap_has_no_packages():
    # $1 per token: even 100 tokens are $120.
    sizes = package_token_counts(
        prompt_price=Decimal("1"), completion_price=Decimal("1"), shares=SEED_SHARES, rules=RULES
    )
    assert sizes == (None, None, None, None)


def test_a_pricey_model_loses_the_packages_the_100_token_minimum_would_duplicate():
    # $0.10 per token blended: 100 tokens = $12.00 is the smallest order, the largest is 166
    # → Enterprise 160; ½ = 80 and the rest are raised to 100, so only one of them is sold.
    sizes = package_token_counts(
        prompt_price=Decimal("0.1"), completion_price=Decimal("0.1"), shares=SEED_SHARES, rules=RULES
    )
    assert sizes == (100, None, None, 160)
    for size in sizes:
        if size is not None:
            assert quote(model_id="m", prompt_price=Decimal("0.1"), completion_price=Decimal("0.1"),
                         token_count=size, rules=RULES).valid


def test_shares_over_one_or_not_positive_are_not_sold():
    sizes = package_token_counts(
        shares=(Decimal("0"), Decimal("-0.5"), Decimal("1.5")), rules=RULES, **SONNET
    )
    assert sizes == (None, None, None)


def test_shares_must_be_decimals():
    with pytest.raises(TypeError):
        package_token_counts(shares=(0.5,), rules=RULES, **SONNET)


def test_the_order_of_shares_does_not_change_the_sizes():
    forward = package_token_counts(shares=SEED_SHARES, rules=RULES, **SONNET)
    backward = package_token_counts(shares=tuple(reversed(SEED_SHARES)), rules=RULES, **SONNET)
    assert backward == tuple(reversed(forward))


def is_round(count: int) -> bool:
    return len(str(count).rstrip("0")) <= 2


# Real OpenRouter chat prices: $0.01 / M to $1,000 / M per side, at database precision.
chat_prices = st.integers(min_value=10, max_value=10**6).map(lambda n: Decimal(n).scaleb(-12))


@given(prompt=chat_prices, completion=chat_prices)
# No deadline: each new price misses the range cache and bisects exactly; a busy CI box is slow.
@settings(max_examples=300, deadline=None)
@example(prompt=Decimal("0.000003"), completion=Decimal("0.000015"))
def test_seed_packages_are_buyable_increasing_and_round_for_any_chat_price(prompt, completion):
    sizes = package_token_counts(prompt_price=prompt, completion_price=completion, shares=SEED_SHARES, rules=RULES)
    starter, standard, professional, enterprise = sizes
    assert None not in sizes
    assert starter < standard < professional < enterprise
    quotes = [quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=n, rules=RULES)
              for n in sizes]
    assert all(q.valid for q in quotes)
    assert quotes[0].total_usd_cost >= Decimal("1.00")
    assert Decimal("18.00") <= quotes[-1].total_usd_cost <= Decimal("20.00")
    assert all(is_round(n) for n in sizes)
    smallest, largest = token_range(prompt_price=prompt, completion_price=completion, rules=RULES)
    # Enterprise is the largest round count under the cap: the next round count is not valid.
    assert round_count_up(enterprise + 1) > largest
    for share, size in zip(SEED_SHARES[1:], sizes[1:], strict=True):
        target = int(share * enterprise)
        # each size is the largest round count at most its share of Enterprise
        assert size <= target < round_count_up(size + 1)
    # Starter: its share, or else the smallest round count that is a valid order.
    if starter > round_count_down(int(SEED_SHARES[0] * enterprise)):
        assert starter == round_count_up(smallest)


@given(prompt=prices, completion=prices, rules=rules_strategy, shares=st.lists(
    st.integers(min_value=-10, max_value=20_000).map(lambda n: Decimal(n).scaleb(-4)), max_size=6))
@settings(max_examples=300, deadline=None)
def test_every_package_size_offered_is_a_valid_order_and_sizes_never_repeat(prompt, completion, rules, shares):
    sizes = package_token_counts(prompt_price=prompt, completion_price=completion, shares=tuple(shares), rules=rules)
    assert len(sizes) == len(shares)
    sold = [n for n in sizes if n is not None]
    assert len(sold) == len(set(sold))
    for n in sold:
        assert quote(model_id="m", prompt_price=prompt, completion_price=completion, token_count=n, rules=rules).valid
        assert is_round(n)
    # a larger share never buys fewer tokens
    pairs = sorted((share, size) for share, size in zip(shares, sizes, strict=True) if size is not None)
    assert [size for _share, size in pairs] == sorted(size for _share, size in pairs)
