"""The catalogue page `/`: models, packages priced per model, crypto previews, the custom amount."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from html import unescape
from io import StringIO

import pytest
import responses
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from openrouter.models import AIModel
from orders.models import AITokenOrder, TokenPackage
from payments.rates import RATES_CACHE_KEY
from tests.factories import AIModelFactory, TokenPackageFactory

pytestmark = pytest.mark.django_db

OPUS_ID = "anthropic/claude-3-opus"


@pytest.fixture
def packages():
    """Replace the seeded packages with three that land on each side of the rules for Opus."""
    TokenPackage.objects.all().delete()
    return [
        TokenPackageFactory(name="Tiny", token_count=1_000, position=1),
        TokenPackageFactory(name="Big", token_count=20_000, position=2),
        TokenPackageFactory(name="Huge", token_count=500_000, position=3),
    ]


@pytest.fixture
def opus(db):
    # $15 / $75 per million → $45 per million blended.
    return AIModelFactory(
        id=OPUS_ID,
        name="Anthropic: Claude 3 Opus",
        prompt_price=Decimal("0.000015"),
        completion_price=Decimal("0.000075"),
    )


@pytest.fixture
def rates(settings):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    cache.set(RATES_CACHE_KEY, {"rates": {"BTC": "97000", "USDT_TRC20": "1.0002"}, "fetched_at": "x"}, timeout=60)


@pytest.fixture
def no_remote_calls():
    """Any outbound HTTP call fails the request loudly: pages must read caches only."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    assert len(mock.calls) == 0


def errors_logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def text_of(response) -> str:
    """The page as a reader sees it: tags dropped, whitespace collapsed, entities decoded."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def package_card(response, name: str) -> str:
    """The HTML of one package card, found by its heading."""
    cards = response.content.decode().split('<li class="card package-card')[1:]
    matching = [card for card in cards if f'<h3 class="package-name">{name}</h3>' in card]
    assert len(matching) == 1, f"no single card for {name}"
    return matching[0]


def test_anonymous_visitors_see_the_catalogue(client, sonnet, rates):
    response = client.get(reverse("orders:catalogue"))

    assert response.status_code == 200
    text = text_of(response)
    assert "Anthropic: Claude 3 Sonnet" in text
    # $3 / $15 per million, blended $9, and the note on what "blended" means.
    assert "Prompt $3.00 / M tokens" in text
    assert "Completion $15.00 / M tokens" in text
    assert "Blended $9.00 / M tokens" in text
    assert "The blended rate is the average of the prompt and completion prices" in text


def test_the_seeded_packages_are_listed_with_their_prices(client, sonnet, rates):
    # given the four seed packages (idempotent: the data migration has normally created them) and
    # Claude 3 Sonnet ($9 / M)
    call_command("seed_packages", stdout=StringIO())
    # when
    response = client.get(reverse("orders:catalogue"))
    # then every package shows base, markup and total, and why it can't be ordered (all under $1)
    text = text_of(response)
    for name, tokens, base, markup, total in [
        ("Starter", "1,000", "0.01", "0.00", "0.01"),
        ("Standard", "5,000", "0.05", "0.01", "0.06"),
        ("Professional", "10,000", "0.09", "0.02", "0.11"),
        ("Enterprise", "20,000", "0.18", "0.04", "0.22"),
    ]:
        assert f"{name} {tokens} tokens ${total} OpenRouter price ${base} Markup (20%) ${markup} Total ${total}" in text
    assert text.count("Under the $1.00 payment minimum for this model.") == 4


def test_each_package_is_orderable_or_unavailable_with_the_reason(client, opus, packages, rates):
    # when
    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})

    # then: 1,000 tokens = $0.06 (too small), 20,000 = $1.08 (fine), 500,000 = $27.00 (over the cap)
    tiny, big, huge = (package_card(response, name) for name in ("Tiny", "Big", "Huge"))
    assert "Under the $1.00 payment minimum for this model." in tiny
    assert "Over the $20.00 limit per order for this model." in huge
    assert "$27.00" in huge
    assert "$1.08" in big
    assert "Unavailable" not in big
    order_url = reverse("orders:new") + "?model=anthropic%2Fclaude-3-opus&amp;tokens=20000"
    assert f'href="{order_url}"' in big
    for card in (tiny, huge):
        assert reverse("orders:new") not in card
        assert "Unavailable" in card


def test_orderable_packages_show_the_amount_in_each_accepted_crypto(client, opus, packages, rates):
    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})

    big = package_card(response, "Big")
    # $1.08 / 97,000 = 0.0000111340… → rounded UP to 8 decimals; $1.08 / 1.0002 = 1.07978404… → 6 decimals, up.
    assert "0.00001114" in big
    assert "1.079785" in big
    assert "USDT on TRON (TRC20)" in big
    assert "momentarily unavailable" not in response.content.decode()


def test_missing_rates_are_announced_and_the_page_still_renders(client, opus, packages, no_remote_calls, caplog):
    # given an empty rate cache (the beat task has not run) and no network at all
    # when
    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})
    # then
    assert response.status_code == 200
    assert "Crypto amounts are momentarily unavailable." in text_of(response)
    big = package_card(response, "Big")
    assert "$1.08" in big
    assert "momentarily unavailable" in big
    assert reverse("orders:new") in big  # USD price is exact; ordering still works
    assert errors_logged(caplog) == []


def test_one_missing_rate_only_blanks_that_currency(client, opus, packages, settings):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    cache.set(RATES_CACHE_KEY, {"rates": {"BTC": "97000"}, "fetched_at": "x"}, timeout=60)

    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})

    big = package_card(response, "Big")
    assert "0.00001114" in big
    assert "momentarily unavailable" in big
    assert "Crypto amounts are momentarily unavailable." in text_of(response)


def test_only_orderable_models_are_offered(client, sonnet, rates):
    AIModelFactory(id="vendor/hidden", name="Hidden Model", offered=False)
    AIModelFactory(id="vendor/gone", name="Gone Model", available=False)
    AIModelFactory(id="vendor/free", name="Free Model", prompt_price=Decimal("0"), completion_price=Decimal("0"))
    AIModelFactory(
        id="openrouter/auto", name="Router Model", prompt_price=Decimal("-1"), completion_price=Decimal("-1")
    )
    AIModelFactory(id="vendor/unpriced", name="Unpriced Model", prompt_price=None, completion_price=None)

    html = client.get(reverse("orders:catalogue")).content.decode()

    assert "Claude 3 Sonnet" in html
    for name in ("Hidden Model", "Gone Model", "Free Model", "Router Model", "Unpriced Model"):
        assert name not in html


def test_the_default_model_is_chosen_when_none_is_asked_for(client, sonnet, opus, rates, settings):
    settings.DEFAULT_MODEL = "anthropic/claude-3-sonnet"
    html = client.get(reverse("orders:catalogue")).content.decode()
    assert '<option value="anthropic/claude-3-sonnet" selected>' in html
    assert "Packages for Anthropic: Claude 3 Sonnet" in html


def test_the_first_orderable_model_stands_in_when_the_default_is_not_for_sale(client, opus, rates, settings):
    settings.DEFAULT_MODEL = "anthropic/claude-3-sonnet"  # not in the database
    AIModelFactory(id="zzz/last", name="Zzz Last")

    html = client.get(reverse("orders:catalogue")).content.decode()

    assert f'<option value="{OPUS_ID}" selected>' in html


def test_choosing_another_model_prices_the_packages_for_it(client, sonnet, opus, packages, rates):
    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})

    assert f'<option value="{OPUS_ID}" selected>' in response.content.decode()
    assert "$1.08" in package_card(response, "Big")  # Opus price, not Sonnet's $0.22


@pytest.mark.parametrize(
    "model",
    ["unknown/model", "vendor/hidden", "vendor/free", "", "x" * 10_240, "anthropic/claude-3-sonnet\x00", "١٠٠٠"],
)
def test_an_unknown_or_unsellable_model_falls_back_with_a_notice(client, sonnet, rates, model, caplog):
    AIModelFactory(id="vendor/hidden", name="Hidden", offered=False)
    AIModelFactory(id="vendor/free", name="Free", prompt_price=Decimal("0"), completion_price=Decimal("0"))

    response = client.get(reverse("orders:catalogue"), {"model": model})

    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="anthropic/claude-3-sonnet" selected>' in html
    if model:
        assert "That model isn&#x27;t available. Choose one from the catalogue." in html
    assert errors_logged(caplog) == []


def test_nothing_for_sale_is_said_plainly(client, rates):
    response = client.get(reverse("orders:catalogue"))

    assert response.status_code == 200
    assert "Nothing is for sale right now" in text_of(response)


def test_the_custom_amount_form_shows_the_valid_range_and_live_quote_wiring(client, sonnet, rates):
    html = client.get(reverse("orders:catalogue")).content.decode()

    assert "Between 91,112 and 1,852,222 tokens for this model" in unescape(html)
    form = re.search(r'<form method="get" action="/#custom".*?</form>', html, re.S).group(0)
    assert '<input type="hidden" name="model" value="anthropic/claude-3-sonnet">' in form
    assert '<label for="tokens-input">' in form
    assert f'hx-get="{reverse("orders:quote_fragment")}"' in form
    assert 'hx-trigger="input changed delay:300ms"' in form
    assert 'hx-include="closest form"' in form
    assert '<div id="quote-result" class="quote-result" aria-live="polite">' in html


def test_the_custom_amount_works_without_javascript(client, sonnet, rates):
    # the form submits to the page itself
    response = client.get(reverse("orders:catalogue"), {"model": "anthropic/claude-3-sonnet", "tokens": "200,000"})

    text = text_of(response)
    assert "$2.16 for 200,000 tokens of Anthropic: Claude 3 Sonnet" in text
    assert "OpenRouter price $1.80 Markup (20%) $0.36 Total $2.16" in text
    assert "0.00002227" in text  # 2.16 / 97,000 rounded up to 8 decimals
    assert 'value="200,000"' in response.content.decode()
    assert reverse("orders:new") + "?model=anthropic%2Fclaude-3-sonnet&amp;tokens=200000" in response.content.decode()


HOSTILE_TOKENS = [
    ("", "Enter a number of tokens."),
    ("abc", "Enter the number of tokens in digits"),
    ("1.5", "Tokens are counted in whole numbers — no decimals."),
    ("-5", "The number of tokens can't be negative."),
    ("0", "The smallest order is 100 tokens."),
    ("99", "The smallest order is 100 tokens."),
    ("1e9", "Write the number of tokens out in full"),
    ("10**30", "Enter the number of tokens in digits"),
    (str(10**30), "That's far more tokens than any order can hold."),
    ("１０００", "Use the digits 0–9 only."),
    ("١٠٠٠", "Use the digits 0–9 only."),
    ("9" * 10_240, "That's far more than a number of tokens."),
    ("<script>alert(1)</script>", "Enter the number of tokens in digits"),
    ("1000", "under the $1.00 minimum per order"),
    ("999999999999", "over the $20.00 limit per order"),
]


@pytest.mark.parametrize(("tokens", "message"), HOSTILE_TOKENS)
def test_bad_custom_amounts_get_a_clear_message_next_to_the_field(client, sonnet, rates, tokens, message, caplog):
    response = client.get(reverse("orders:catalogue"), {"model": "anthropic/claude-3-sonnet", "tokens": tokens})

    assert response.status_code == 200
    html = response.content.decode()
    result = re.search(r'<div id="quote-result".*?</div>', html, re.S).group(0)
    assert message in unescape(result)
    assert 'aria-invalid="true"' in html
    assert "<script>alert(1)</script>" not in html
    assert AITokenOrder.objects.count() == 0
    assert errors_logged(caplog) == []


def test_duplicated_parameters_are_refused_on_the_page(client, sonnet, rates):
    response = client.get(reverse("orders:catalogue") + "?model=anthropic/claude-3-sonnet&tokens=200000&tokens=300000")

    assert response.status_code == 200
    assert "Enter one token count." in text_of(response)
    assert "$2.16 for" not in text_of(response)


def test_the_page_has_no_inline_scripts_or_styles(client, sonnet, packages, rates):
    html = client.get(reverse("orders:catalogue"), {"tokens": "200000"}).content.decode()

    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no onclick= / onload= handlers either


def test_the_page_never_writes_to_the_database(client, sonnet, packages, rates):
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("orders:catalogue"), {"tokens": "200000"})
    assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in queries.captured_queries)


def grow_catalogue(n: int) -> None:
    TokenPackage.objects.all().delete()
    AIModel.objects.all().delete()
    for i in range(n):
        AIModelFactory(id=f"vendor/model-{i:02}", name=f"Model {i:02}")
        TokenPackageFactory(token_count=1_000 * (i + 1))


@pytest.mark.parametrize("size", [2, 30])
def test_the_page_query_count_does_not_grow_with_models_and_packages(
    client, rates, size, django_assert_max_num_queries
):
    # given
    grow_catalogue(size)
    # when / then: one query for the models, one for the packages
    with django_assert_max_num_queries(2):
        response = client.get(reverse("orders:catalogue"), {"tokens": "500000"})
    assert response.status_code == 200
    assert response.content.decode().count('class="card package-card') == size
    assert response.content.decode().count("<option ") == size


def test_query_count_is_identical_for_small_and_large_catalogues(client, rates):
    counts = []
    for size in (2, 30):
        grow_catalogue(size)
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("orders:catalogue"))
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_inactive_packages_are_hidden(client, sonnet, rates):
    TokenPackageFactory(name="Retired pack", token_count=123_000, active=False)

    assert "Retired pack" not in client.get(reverse("orders:catalogue")).content.decode()


def test_models_table_lists_every_orderable_model_with_its_prices(client, sonnet, opus, rates):
    html = client.get(reverse("orders:catalogue")).content.decode()

    table = re.search(r'<table class="model-table">.*?</table>', html, re.S).group(0)
    assert "$45.00" in table  # Opus blended
    assert "$9.00" in table  # Sonnet blended
    assert f'href="/?model={OPUS_ID}"' in table
    assert 'aria-current="true"' in table


def test_post_is_not_allowed(client, sonnet):
    assert client.post(reverse("orders:catalogue")).status_code == 405


def test_head_requests_are_answered(client, sonnet):
    # Uptime monitors send HEAD to the home page.
    assert client.head(reverse("orders:catalogue")).status_code == 200


def test_when_no_package_fits_the_model_the_page_offers_the_smallest_and_largest_orders(client, sonnet):
    # given: Claude 3 Sonnet at $9/M blended — every seed package is under the $1.00 minimum
    # when
    response = client.get("/", {"model": sonnet.id})
    # then
    html = response.content.decode()
    assert "None of these packages fits" in html
    assert "tokens=91112" in html and "tokens=1852222" in html


def test_the_hint_is_absent_when_a_package_is_orderable(client, db):
    from tests.factories import AIModelFactory

    opus = AIModelFactory(id="anthropic/claude-3-opus", prompt_price="0.000015", completion_price="0.000075")
    response = client.get("/", {"model": opus.id})
    assert "None of these packages fits" not in response.content.decode()
