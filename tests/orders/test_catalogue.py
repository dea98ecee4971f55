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
from tests.orders.checkout_support import UNREADABLE_TOKEN_COUNTS

pytestmark = pytest.mark.django_db

OPUS_ID = "anthropic/claude-3-opus"


@pytest.fixture
def packages():
    """Replace the seeded packages with three shares of the maximum: a twentieth, a half, all of it."""
    TokenPackage.objects.all().delete()
    return [
        TokenPackageFactory(name="Tiny", share=Decimal("0.05"), position=1),
        TokenPackageFactory(name="Big", share=Decimal("0.5"), position=2),
        TokenPackageFactory(name="Huge", share=Decimal("1"), position=3),
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
    shown = [
        "Anthropic: Claude 3 Sonnet",
        # $3 / $15 per million, blended $9, and the note on what "blended" means.
        "Input $3.00 / M tokens",
        "Output $15.00 / M tokens",
        "Blended $9.00 / M tokens",
        "The blended rate is the average of the input and output prices",
    ]
    for words in shown:
        assert words in text


def test_the_seeded_packages_are_sized_for_the_model_and_all_buyable(client, sonnet, rates):
    # given the four seed packages (idempotent: the data migration has normally created them) and
    # Claude 3 Sonnet ($9 / M): the worked example
    call_command("seed_packages", stdout=StringIO())
    # when
    response = client.get(reverse("orders:catalogue"))
    # then every package shows its round size, base, markup and total, and can be ordered
    text = text_of(response)
    for name, short, tokens, base, markup, total in [
        ("Starter", "92k", "92,000", "0.83", "0.17", "1.00"),
        ("Standard", "450k", "450,000", "4.05", "0.81", "4.86"),
        ("Professional", "900k", "900,000", "8.10", "1.62", "9.72"),
        ("Enterprise", "1.8M", "1.8M", "16.20", "3.24", "19.44"),
    ]:
        exact = tokens if name != "Enterprise" else "1,800,000"
        assert (
            f"{name} {short} tokens ({exact}) ${total} OpenRouter price ${base} Markup (20%) ${markup} Total ${total}"
            in text
        )
        card = package_card(response, name)
        assert f'title="{exact} tokens"' in card
        assert f"tokens={exact.replace(',', '')}" in card
    assert "Unavailable" not in text


def test_packages_are_sized_for_the_chosen_model(client, opus, packages, rates):
    # when
    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})

    # then: Opus ($45 / M) tops out at 370,444 tokens → 370k ($19.98); half = 185k → 180k ($9.72);
    # a twentieth (18k, $0.97) is raised to the smallest round valid order, 19k ($1.03)
    tiny, big, huge = (package_card(response, name) for name in ("Tiny", "Big", "Huge"))
    assert "19k" in tiny and "$1.03" in tiny
    assert "180k" in big and "$9.72" in big
    assert "370k" in huge and "$19.98" in huge
    order_url = reverse("orders:new") + "?model=anthropic%2Fclaude-3-opus&amp;tokens=180000"
    assert f'href="{order_url}"' in big


def test_a_package_that_cannot_be_sold_for_a_model_is_not_shown(client, rates):
    # given a model so pricey that only 100–166 tokens fit ($0.10 / token blended): the twentieth
    # and the half would both be raised to the 100-token minimum, so only one of them is sold
    AIModelFactory(id="vendor/pricey", name="Pricey", prompt_price=Decimal("0.1"), completion_price=Decimal("0.1"))
    call_command("seed_packages", stdout=StringIO())
    # when
    response = client.get(reverse("orders:catalogue"), {"model": "vendor/pricey"})
    # then
    html = response.content.decode()
    assert html.count('class="card package-card') == 2
    assert "Unavailable" not in html
    assert "tokens=100" in package_card(response, "Starter")
    assert "tokens=160" in package_card(response, "Enterprise")


def test_orderable_packages_show_the_amount_in_each_accepted_crypto(client, opus, packages, rates):
    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})

    big = package_card(response, "Big")
    # $9.72 / 97,000 = 0.000100206… → rounded UP to 8 decimals; $9.72 / 1.0002 = 9.71805638… → 6 decimals, up.
    assert "0.00010021" in big
    assert "9.718057" in big
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
    assert "$9.72" in big
    assert "momentarily unavailable" in big
    assert reverse("orders:new") in big  # USD price is exact; ordering still works
    assert errors_logged(caplog) == []


def test_one_missing_rate_only_blanks_that_currency(client, opus, packages, settings):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    cache.set(RATES_CACHE_KEY, {"rates": {"BTC": "97000"}, "fetched_at": "x"}, timeout=60)

    response = client.get(reverse("orders:catalogue"), {"model": OPUS_ID})

    big = package_card(response, "Big")
    assert "0.00010021" in big
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
    assert "180k" in package_card(response, "Big")  # Opus's half, not Sonnet's 900k


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
    *UNREADABLE_TOKEN_COUNTS,
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
        AIModelFactory(id=f"vendor{i % 5}/model-{i:02}", name=f"Model {i:02}", prompt_price=Decimal(i + 1).scaleb(-6))
    for share in ("0.05", "0.25", "0.5", "1"):
        TokenPackageFactory(share=Decimal(share))


@pytest.mark.parametrize("size", [2, 40])
def test_the_page_query_count_does_not_grow_with_models_and_packages(
    client, rates, size, django_assert_max_num_queries
):
    # given
    grow_catalogue(size)
    # when / then: one query for the models, one for the packages
    with django_assert_max_num_queries(2):
        response = client.get(reverse("orders:catalogue"), {"tokens": "500000", "sort": "price"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="card model-card') == size
    assert html.count('class="package-buy"') == 4 * size
    assert html.count('class="card package-card') == 4


def test_query_count_is_identical_for_small_and_large_catalogues(client, rates):
    counts = []
    for size in (2, 40):
        grow_catalogue(size)
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("orders:catalogue"))
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_inactive_packages_are_hidden(client, sonnet, rates):
    TokenPackageFactory(name="Retired pack", share=Decimal("0.3"), active=False)

    assert "Retired pack" not in client.get(reverse("orders:catalogue")).content.decode()


def model_cards(response) -> list[str]:
    return response.content.decode().split('<article class="card model-card')[1:]


def test_every_buyable_model_is_listed_with_its_prices_context_and_packages(client, sonnet, opus, rates):
    call_command("seed_packages", stdout=StringIO())
    response = client.get(reverse("orders:catalogue"))

    cards = model_cards(response)
    assert len(cards) == 2
    opus_card, sonnet_card = cards  # by name
    assert "Claude 3 Opus" in opus_card and "Anthropic" in opus_card
    assert "$45.00" in opus_card  # blended
    assert "Input <strong>$3.00</strong>/M" in sonnet_card
    assert "Output <strong>$15.00</strong>/M" in sonnet_card
    assert '<span title="200,000 tokens of context">200k context</span>' in sonnet_card
    for short, count, total in [("92k", 92000, "1.00"), ("450k", 450000, "4.86"), ("900k", 900000, "9.72"),
                                ("1.8M", 1800000, "19.44")]:
        assert f"{short} tokens" in sonnet_card
        assert f"tokens={count}" in sonnet_card
        assert f"${total}" in sonnet_card
    assert f'href="/?model={OPUS_ID}#chosen"' in opus_card
    assert "is-selected" in sonnet_card.split(">")[0]


def test_models_whose_no_amount_fits_the_rules_are_not_listed(client, sonnet, rates):
    AIModelFactory(id="vendor/too-dear", name="Too Dear", prompt_price=Decimal("1"), completion_price=Decimal("1"))

    html = client.get(reverse("orders:catalogue")).content.decode()

    assert "Too Dear" not in html


@pytest.fixture
def three_providers(db):
    AIModel.objects.all().delete()
    return [
        AIModelFactory(id="anthropic/claude-3-sonnet", name="Anthropic: Claude 3 Sonnet", context_length=200_000),
        AIModelFactory(id="openai/gpt-4o-mini", name="OpenAI: GPT-4o-mini", context_length=128_000,
                       prompt_price=Decimal("0.00000015"), completion_price=Decimal("0.0000006")),
        AIModelFactory(id="google/gemini-flash-1.5", name="Google: Gemini Flash 1.5", context_length=1_000_000,
                       prompt_price=Decimal("0.000000075"), completion_price=Decimal("0.0000003")),
        AIModelFactory(id="openai/gpt-4o", name="OpenAI: GPT-4o", context_length=128_000,
                       prompt_price=Decimal("0.0000025"), completion_price=Decimal("0.00001")),
    ]


def listed_names(response) -> list[str]:
    return re.findall(r'class="model-card-name">([^<]+)</h3>', response.content.decode())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["Claude 3 Sonnet", "Gemini Flash 1.5", "GPT-4o", "GPT-4o-mini"]),
        ({"provider": "openai"}, ["GPT-4o", "GPT-4o-mini"]),
        ({"q": "4o-MINI"}, ["GPT-4o-mini"]),
        ({"q": "  OPENAI   4o "}, ["GPT-4o", "GPT-4o-mini"]),
        ({"q": "sonnet", "provider": "openai"}, []),
        ({"sort": "price"}, ["Gemini Flash 1.5", "GPT-4o-mini", "GPT-4o", "Claude 3 Sonnet"]),
        ({"sort": "-price"}, ["Claude 3 Sonnet", "GPT-4o", "GPT-4o-mini", "Gemini Flash 1.5"]),
        ({"sort": "context"}, ["Gemini Flash 1.5", "Claude 3 Sonnet", "GPT-4o", "GPT-4o-mini"]),
        ({"provider": "openai", "sort": "-price"}, ["GPT-4o", "GPT-4o-mini"]),
    ],
)
def test_customers_filter_search_and_sort_without_javascript(client, three_providers, rates, query, expected):
    response = client.get(reverse("orders:catalogue"), query)

    assert response.status_code == 200
    assert listed_names(response) == expected
    if not expected:
        assert "No model matches." in text_of(response)


@pytest.mark.parametrize(
    "query",
    [
        {"sort": "price; DROP TABLE"}, {"sort": "x" * 10_000}, {"provider": "nobody"}, {"q": "\x00<script>"},
        {"q": "x" * 10_000}, {"provider": "\x00"}, {"q": "%"},
    ],
)
def test_hostile_filters_are_harmless(client, three_providers, rates, query, caplog):
    response = client.get(reverse("orders:catalogue"), query)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html
    assert len(html) < 200_000
    assert errors_logged(caplog) == []


def test_the_filter_form_works_without_javascript_and_with_htmx(client, three_providers, rates):
    html = client.get(reverse("orders:catalogue"), {"provider": "openai", "sort": "price", "q": "gpt"}).content.decode()

    form = re.search(r'<form class="card offer-filter".*?</form>', html, re.S).group(0)
    assert 'method="get"' in form and 'action="/#models"' in form
    assert '<option value="openai" selected>OpenAI</option>' in form
    assert '<option value="price" selected>Price: low to high</option>' in form
    assert 'value="gpt"' in form
    assert 'hx-select="#model-list"' in form
    assert '<button type="submit"' in form


def test_custom_amount_presets_are_links_that_work_without_javascript(client, sonnet, rates):
    call_command("seed_packages", stdout=StringIO())
    html = client.get(reverse("orders:catalogue")).content.decode()

    presets = re.findall(r'<a class="preset" href="([^"]+)" data-preset="(\d+)" title="([^"]+)">(.*?)</a>', html)
    counts = [int(count) for _href, count, _title, _label in presets]
    assert counts == [91_112, 92_000, 450_000, 900_000, 1_800_000, 1_852_222]
    href, _count, title, label = presets[-1]
    assert href == "/?model=anthropic/claude-3-sonnet&amp;tokens=1852222#custom"
    assert (title, label) == ("1,852,222 tokens", '1.85M <span class="preset-note">max</span>')
    assert presets[0][3] == '91.1k <span class="preset-note">min</span>'
    assert presets[1][3] == "92k"


def test_post_is_not_allowed(client, sonnet):
    assert client.post(reverse("orders:catalogue")).status_code == 405


def test_head_requests_are_answered(client, sonnet):
    # Uptime monitors send HEAD to the home page.
    assert client.head(reverse("orders:catalogue")).status_code == 200


