"""`GET /api/catalogue`: the rules, the accepted coins and every buyable model with its packages."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
import responses
from django.core.management import call_command
from django.urls import reverse

from openrouter.catalogue_sync import catalogue_sync
from openrouter.models import AIModel
from openrouter.sandbox.catalogue_data import sandbox_catalogue
from orders.models import TokenPackage
from storefront.catalogue_version import catalogue_version_bump
from tests.factories import AIModelFactory, TokenPackageFactory

pytestmark = pytest.mark.django_db

URL = "/api/catalogue"
OPENROUTER = "https://openrouter.test/api/v1"


@pytest.fixture
def seeded(settings):
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    call_command("seed_packages", stdout=StringIO())


def get_json(client, **headers):
    response = client.get(URL, **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response, json.loads(response.content)


def test_the_url_is_the_documented_one():
    assert reverse("orders:api_catalogue") == URL


def test_the_document_has_the_rules_the_coins_and_the_worked_example(client, sonnet, seeded):
    # when
    _response, document = get_json(client)
    # then
    rules = ("currency", "markup_rate", "max_order_usd", "min_order_usd", "min_tokens")
    assert {key: document[key] for key in rules} == {
        "currency": "USD", "markup_rate": "0.20", "max_order_usd": "20.00", "min_order_usd": "1.00", "min_tokens": 100,
    }
    (model,) = document["models"]
    assert model == {
        "id": "anthropic/claude-3-sonnet",
        "name": "Anthropic: Claude 3 Sonnet",
        "context_length": 200000,
        "prompt_price_per_million": "3.00",
        "completion_price_per_million": "15.00",
        "price_per_token": "0.000009",
        "min_tokens": 91112,
        "max_tokens": 1852222,
        "packages": [
            {"name": "Starter", "tokens": 92000, "base_usd_cost": "0.83", "markup_amount": "0.17",
             "total_usd_cost": "1.00"},
            {"name": "Standard", "tokens": 450000, "base_usd_cost": "4.05", "markup_amount": "0.81",
             "total_usd_cost": "4.86"},
            {"name": "Professional", "tokens": 900000, "base_usd_cost": "8.10", "markup_amount": "1.62",
             "total_usd_cost": "9.72"},
            {"name": "Enterprise", "tokens": 1800000, "base_usd_cost": "16.20", "markup_amount": "3.24",
             "total_usd_cost": "19.44"},
        ],
    }


def test_each_coin_has_a_code_name_and_network(client, sonnet, seeded):
    _response, document = get_json(client)
    assert [coin["code"] for coin in document["cryptocurrencies"]] == ["BTC", "USDT_TRC20"]
    for coin in document["cryptocurrencies"]:
        assert set(coin) == {"code", "name", "network"}
        assert coin["name"] and coin["network"]


@pytest.fixture
def synced_sandbox(settings, seeded):
    """The sandbox's realistic catalogue synced with the out-of-the-box offer."""
    settings.OPENROUTER_API_URL = OPENROUTER
    settings.OPENROUTER_API_KEY = "sk-or-v1-test"
    with responses.RequestsMock() as mocked:
        mocked.get(OPENROUTER + "/models", json={"data": sandbox_catalogue()})
        assert catalogue_sync().ok


def test_every_listed_package_is_quoted_identically_by_the_quote_api(client, synced_sandbox):
    # given the fresh store's offer
    _response, document = get_json(client)
    assert len(document["models"]) >= 5
    checked = 0
    for model in document["models"]:
        # then every model carries the four seed packages, increasing, within the rules
        totals = [Decimal(package["total_usd_cost"]) for package in model["packages"]]
        names = [package["name"] for package in model["packages"]]
        assert names == ["Starter", "Standard", "Professional", "Enterprise"]
        assert [package["tokens"] for package in model["packages"]] == sorted({p["tokens"] for p in model["packages"]})
        assert totals[0] >= Decimal("1.00") and Decimal("18.00") <= totals[-1] <= Decimal("20.00")
        for package in model["packages"]:
            # when the same amount is quoted
            quote = client.get(reverse("orders:api_quote"), {"model": model["id"], "tokens": str(package["tokens"])})
            # then the figures are the same, to the cent
            assert quote.status_code == 200, quote.content
            body = quote.json()
            assert body["valid"] is True
            assert body["price_per_token"] == model["price_per_token"]
            for key in ("base_usd_cost", "markup_amount", "total_usd_cost"):
                assert body[key] == package[key], (model["id"], package["name"], key)
            checked += 1
        assert model["min_tokens"] <= model["packages"][0]["tokens"]
        assert model["packages"][-1]["tokens"] <= model["max_tokens"]
    assert checked == 4 * len(document["models"])


def test_unsellable_and_unoffered_models_are_never_listed(client, synced_sandbox):
    _response, document = get_json(client)
    ids = {model["id"] for model in document["models"]}
    assert "openrouter/auto" not in ids  # variable price
    assert "meta-llama/llama-3.1-8b-instruct:free" not in ids  # free
    assert "perplexity/llama-3.1-sonar-large-128k-online" not in ids  # per-request fee
    assert ids == set(AIModel.objects.orderable().values_list("pk", flat=True))


def test_a_model_that_leaves_openrouter_leaves_the_api_at_the_next_sync(client, synced_sandbox):
    # given gpt-4o on sale
    _response, before = get_json(client)
    assert "openai/gpt-4o" in {model["id"] for model in before["models"]}
    # when OpenRouter's catalogue drops it and the store syncs once
    remaining = [entry for entry in sandbox_catalogue() if entry["id"] != "openai/gpt-4o"]
    with responses.RequestsMock() as mocked:
        mocked.get(OPENROUTER + "/models", json={"data": remaining})
        assert catalogue_sync().ok
    # then it is gone from the API and the page
    _response, after = get_json(client)
    assert "openai/gpt-4o" not in {model["id"] for model in after["models"]}
    assert "GPT-4o</h3>" not in client.get("/").content.decode()


def test_a_price_change_resizes_the_packages(client, sonnet, seeded):
    _response, before = get_json(client)
    AIModel.objects.filter(pk=sonnet.pk).update(prompt_price=Decimal("0.000015"), completion_price=Decimal("0.000075"))
    catalogue_version_bump()  # as the catalogue sync does after writing prices

    _response, after = get_json(client)

    assert [p["tokens"] for p in before["models"][0]["packages"]] == [92000, 450000, 900000, 1800000]
    assert [p["tokens"] for p in after["models"][0]["packages"]] == [19000, 92000, 180000, 370000]


def test_etag_and_cache_control_let_clients_revalidate(client, sonnet, seeded):
    # given
    first, _document = get_json(client)
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "max-age=" in first["Cache-Control"] and "public" in first["Cache-Control"]
    # when the client revalidates
    again = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    # then
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    # and a change in the offer changes the tag
    TokenPackage.objects.filter(name="Starter").update(active=False)
    catalogue_version_bump()  # as the admin's hide action does after its bulk update
    changed = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


@pytest.mark.parametrize("header", ['"nope"', "*garbage*", "W/", "", "x" * 5000, '"a", "b"'])
def test_odd_if_none_match_headers_get_the_full_document(client, sonnet, seeded, header):
    response = client.get(URL, HTTP_IF_NONE_MATCH=header)
    assert response.status_code == 200
    assert json.loads(response.content)["models"]


def test_only_get_and_head_are_allowed(client, sonnet):
    assert client.post(URL).status_code == 405
    assert client.put(URL).status_code == 405
    assert client.head(URL).status_code == 200


def test_query_strings_are_ignored_and_harmless(client, sonnet, seeded):
    response = client.get(URL, {"model": "x" * 10_000, "tokens": "-1", "x": "\x00"})
    assert response.status_code == 200
    assert response["ETag"] == client.get(URL)["ETag"]


def test_an_empty_store_answers_with_no_models(client, seeded):
    _response, document = get_json(client)
    assert document["models"] == []
    assert document["max_order_usd"] == "20.00"


def test_query_count_is_constant_however_many_models(client, seeded, django_assert_max_num_queries):
    for i in range(40):
        AIModelFactory(id=f"vendor{i % 7}/model-{i:02}", prompt_price=Decimal(i + 1).scaleb(-7))
    TokenPackageFactory(name="Extra", share=Decimal("0.75"))
    with django_assert_max_num_queries(2):
        _response, document = get_json(client)
    assert len(document["models"]) == 40
    assert all(len(model["packages"]) == 5 for model in document["models"])
