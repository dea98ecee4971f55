"""Catalogue sync rules, with OpenRouter stubbed by ``responses``."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import requests
import responses
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from openrouter.catalogue_sync import catalogue_set_offered, catalogue_sync
from openrouter.models import AIModel
from openrouter.tasks import sync_catalogue
from tests.factories import AIModelFactory

BASE = "https://openrouter.test/api/v1"
SONNET = "anthropic/claude-3-sonnet"


@pytest.fixture(autouse=True)
def _openrouter(settings):
    settings.OPENROUTER_API_URL = BASE
    settings.OPENROUTER_API_KEY = "sk-or-v1-management-secret"
    settings.DEFAULT_MODEL = SONNET


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def entry(model_id: str, prompt="0.000001", completion="0.000002", **extra) -> dict:
    pricing = {"prompt": prompt, "completion": completion, "request": "0", "image": "0"}
    pricing.update(extra.pop("pricing", {}))
    return {
        "id": model_id,
        "name": extra.pop("name", model_id.title()),
        "context_length": 8192,
        "pricing": pricing,
        **extra,
    }


def serve(mocked, *entries, status=200):
    mocked.get(BASE + "/models", json={"data": list(entries)}, status=status)


pytestmark = pytest.mark.django_db


def test_first_sync_creates_rows_with_exact_prices_and_offers_only_the_default_model(mocked, settings):
    # given
    settings.OFFERED_MODELS_DEFAULT = []
    serve(mocked, entry(SONNET, "0.000003", "0.000015", name="Anthropic: Claude 3 Sonnet"), entry("openai/gpt-4o"))
    # when
    result = catalogue_sync()
    # then
    assert result.ok and result.created == 2 and result.seen == 2
    sonnet = AIModel.objects.get(pk=SONNET)
    assert sonnet.prompt_price == Decimal("0.000003")
    assert sonnet.completion_price == Decimal("0.000015")
    assert sonnet.name == "Anthropic: Claude 3 Sonnet"
    assert sonnet.context_length == 8192
    assert sonnet.offered and sonnet.available and sonnet.last_seen_at is not None
    assert not AIModel.objects.get(pk="openai/gpt-4o").offered
    assert list(AIModel.objects.orderable().values_list("pk", flat=True)) == [SONNET]


def test_the_models_offered_out_of_the_box_are_offered_when_first_seen_sellable(mocked, settings):
    # given a fresh store whose default range names three models, one of them free today
    settings.OFFERED_MODELS_DEFAULT = ["openai/gpt-4o", "google/gemini-flash-1.5", "vendor/free"]
    serve(
        mocked,
        entry(SONNET, "0.000003", "0.000015"),
        entry("openai/gpt-4o", "0.0000025", "0.00001"),
        entry("google/gemini-flash-1.5", "0.000000075", "0.0000003"),
        entry("vendor/free", "0", "0"),
        entry("vendor/other"),
    )
    # when
    catalogue_sync()
    # then the default model and the default range are on sale; unsellable and unlisted ones are not
    offered = set(AIModel.objects.filter(offered=True).values_list("pk", flat=True))
    assert offered == {SONNET, "openai/gpt-4o", "google/gemini-flash-1.5"}


def test_after_the_first_sight_offered_belongs_to_staff(mocked, settings):
    # given the default range was applied once, then staff withdrew one and offered another
    settings.OFFERED_MODELS_DEFAULT = ["openai/gpt-4o"]
    serve(mocked, entry(SONNET, "0.000003", "0.000015"), entry("openai/gpt-4o"), entry("vendor/other"))
    catalogue_sync()
    catalogue_set_offered(model_ids=["openai/gpt-4o"], offered=False)
    catalogue_set_offered(model_ids=["vendor/other"], offered=True)
    # when the next sync runs
    serve(mocked, entry(SONNET, "0.000003", "0.000015"), entry("openai/gpt-4o"), entry("vendor/other"))
    catalogue_sync()
    # then the staff's choice stands
    assert not AIModel.objects.get(pk="openai/gpt-4o").offered
    assert AIModel.objects.get(pk="vendor/other").offered


@pytest.mark.parametrize(
    ("prompt", "completion", "issue"),
    [
        ("0", "0", "free"),
        ("0", "0.000002", "free"),
        ("-1", "-1", "variable price"),
        ("0.000001", "-1", "variable price"),
        (None, "0.000002", "missing price"),
        ("abc", "0.000002", "missing price"),
        ("", "", "missing price"),
        ("NaN", "0.000002", "missing price"),
        ("1e-20", "0.000002", "price out of range"),
        ("1e12", "0.000002", "price out of range"),
    ],
)
def test_unusable_prices_are_never_offered_even_for_the_default_model(mocked, prompt, completion, issue):
    # given the default model, which would be offered if priced, and one sane model so the sync is trusted
    serve(mocked, entry(SONNET, prompt, completion), entry("openai/gpt-4o"))
    # when
    assert catalogue_sync().ok
    # then
    sonnet = AIModel.objects.get(pk=SONNET)
    assert sonnet.pricing_issue == issue
    assert not sonnet.offered
    assert not AIModel.objects.orderable().filter(pk=SONNET).exists()


def test_missing_pricing_object_is_missing_price(mocked):
    no_pricing = {"id": SONNET, "name": "Sonnet"}
    serve(mocked, no_pricing, entry("openai/gpt-4o"))
    assert catalogue_sync().ok
    assert AIModel.objects.get(pk=SONNET).pricing_issue == "missing price"
    assert AIModel.objects.get(pk=SONNET).prompt_price is None


def test_per_request_fee_models_are_not_sellable(mocked):
    serve(mocked, entry(SONNET, pricing={"request": "0.005"}), entry("openai/gpt-4o"))
    catalogue_sync()
    assert AIModel.objects.get(pk=SONNET).pricing_issue == "per-request fee"
    assert not AIModel.objects.get(pk=SONNET).offered


def test_a_price_turning_free_withdraws_an_offered_model(mocked, caplog):
    # given staff offer a model that later becomes free
    AIModelFactory(id="openai/gpt-4o", offered=True)
    serve(mocked, entry(SONNET), entry("openai/gpt-4o", "0", "0"))
    # when
    with caplog.at_level(logging.WARNING, logger="openrouter.catalogue"):
        catalogue_sync()
    # then
    assert not AIModel.objects.get(pk="openai/gpt-4o").offered
    assert "withdrew 1 offered model" in caplog.text


def test_a_model_gone_from_the_catalogue_becomes_unavailable_and_keeps_staff_choice(mocked):
    # given an offered model, then a catalogue without it
    AIModelFactory(id="openai/gpt-4o", offered=True, available=True)
    serve(mocked, entry(SONNET))
    # when
    result = catalogue_sync()
    # then
    gone = AIModel.objects.get(pk="openai/gpt-4o")
    assert result.gone == 1
    assert not gone.available
    assert gone.offered  # staff's choice survives; availability alone stops the sale
    assert not AIModel.objects.orderable().filter(pk="openai/gpt-4o").exists()
    assert gone.prompt_price == Decimal("0.000003")  # last known prices kept


def test_a_model_that_comes_back_is_available_again(mocked):
    AIModelFactory(id="openai/gpt-4o", offered=True, available=False)
    serve(mocked, entry(SONNET), entry("openai/gpt-4o"))
    catalogue_sync()
    back = AIModel.objects.get(pk="openai/gpt-4o")
    assert back.available and back.offered
    assert AIModel.objects.orderable().filter(pk="openai/gpt-4o").exists()


def test_staff_choices_survive_syncs(mocked):
    # given staff withdrew the default model and offered another one
    AIModelFactory(id=SONNET, offered=False)
    AIModelFactory(id="openai/gpt-4o", offered=True)
    AIModelFactory(id="mistralai/mistral-large", offered=False)
    serve(mocked, entry(SONNET, "0.000003", "0.000015"), entry("openai/gpt-4o"), entry("mistralai/mistral-large"))
    # when synced twice
    catalogue_sync()
    catalogue_sync()
    # then
    offered = dict(AIModel.objects.values_list("pk", "offered"))
    assert offered == {SONNET: False, "openai/gpt-4o": True, "mistralai/mistral-large": False}


def test_prices_and_names_follow_the_catalogue(mocked):
    AIModelFactory(id=SONNET, name="Old name", prompt_price=Decimal("0.000009"), completion_price=Decimal("0.00009"))
    serve(mocked, entry(SONNET, "0.000003", "0.000015", name="Anthropic: Claude 3 Sonnet"))
    result = catalogue_sync()
    sonnet = AIModel.objects.get(pk=SONNET)
    assert result.updated == 1 and result.created == 0
    assert (sonnet.name, sonnet.prompt_price, sonnet.completion_price) == (
        "Anthropic: Claude 3 Sonnet",
        Decimal("0.000003"),
        Decimal("0.000015"),
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": {"code": 500, "message": "upstream down"}}),
        (200, {"data": []}),
        (200, {"nothing": 1}),
        (200, {"data": [entry("x/free", "0", "0"), entry("openrouter/auto", "-1", "-1")]}),
    ],
)
def test_a_failed_sync_keeps_the_last_good_catalogue_and_logs_why(mocked, caplog, status, body):
    # given a good catalogue in the database
    AIModelFactory(id=SONNET, offered=True, prompt_price=Decimal("0.000003"))
    AIModelFactory(id="openai/gpt-4o", offered=False)
    before = list(AIModel.objects.order_by("pk").values())
    mocked.get(BASE + "/models", json=body, status=status)
    # when
    with caplog.at_level(logging.WARNING, logger="openrouter.catalogue"):
        result = catalogue_sync()
    # then
    assert not result.ok and result.error
    assert list(AIModel.objects.order_by("pk").values()) == before
    assert "catalogue_sync failed, keeping the last good prices" in caplog.text
    assert "sk-or-v1-management-secret" not in caplog.text


def test_a_network_failure_keeps_the_catalogue(mocked, caplog):
    AIModelFactory(id=SONNET)
    mocked.get(BASE + "/models", body=requests.ConnectTimeout("slow"))
    with caplog.at_level(logging.WARNING):
        result = catalogue_sync()
    assert not result.ok and "timed out" in result.error
    assert AIModel.objects.get(pk=SONNET).available
    assert "timed out" in caplog.text


def test_hostile_entries_are_stored_safely(mocked):
    # given absurd ids, names and context lengths
    serve(
        mocked,
        entry(SONNET),
        entry("x/" + "a" * 300),
        entry("x/long-name", name="N" * 5000),
        entry("x/huge-context", context_length=10**20),
        entry("x/negative-context", context_length=-5),
        entry("x/dup", "0.000001", "0.000001"),
        entry("x/dup", "0.000002", "0.000002"),
    )
    # when
    result = catalogue_sync()
    # then
    assert result.ok
    assert not AIModel.objects.filter(pk__startswith="x/aaa").exists()
    assert len(AIModel.objects.get(pk="x/long-name").name) == 300
    assert AIModel.objects.get(pk="x/huge-context").context_length is None
    assert AIModel.objects.get(pk="x/negative-context").context_length is None
    assert AIModel.objects.get(pk="x/dup").prompt_price == Decimal("0.000002")


def _sync_queries(mocked, count: int) -> int:
    mocked.get(BASE + "/models", json={"data": [entry(SONNET)] + [entry(f"v/m{i}") for i in range(count)]})
    with CaptureQueriesContext(connection) as ctx:
        assert catalogue_sync().ok
    mocked.reset()
    return len(ctx.captured_queries)


def _fresh(mocked, count: int) -> None:
    AIModel.objects.all().delete()
    if count:
        _sync_queries(mocked, count)


@pytest.mark.parametrize(
    ("before_small", "now_small", "before_large", "now_large"),
    [
        (0, 3, 0, 80),  # first sync: everything is new
        (3, 3, 80, 80),  # re-sync: everything is updated
        (10, 3, 80, 3),  # models leave the catalogue
        (3, 10, 3, 80),  # new models appear next to known ones
    ],
)
def test_sync_query_count_is_constant_as_the_catalogue_grows(mocked, before_small, now_small, before_large, now_large):
    _fresh(mocked, before_small)
    small = _sync_queries(mocked, now_small)
    _fresh(mocked, before_large)
    large = _sync_queries(mocked, now_large)
    assert small == large
    assert large <= 6


def test_set_offered_refuses_unsellable_models():
    AIModelFactory(id="ok/priced", offered=False)
    AIModelFactory(
        id="x/free", offered=False, prompt_price=Decimal(0), completion_price=Decimal(0), pricing_issue="free"
    )
    AIModelFactory(id="x/gone", offered=False, available=False)
    result = catalogue_set_offered(model_ids=["ok/priced", "x/free", "x/gone"], offered=True)
    assert result.changed == 1
    assert result.refused == ["x/free", "x/gone"]
    assert set(AIModel.objects.filter(offered=True).values_list("pk", flat=True)) == {"ok/priced"}
    assert catalogue_set_offered(model_ids=["ok/priced"], offered=False).changed == 1
    assert not AIModel.objects.filter(offered=True).exists()


def test_task_has_the_beat_name_and_runs_the_sync(mocked):
    serve(mocked, entry(SONNET))
    assert sync_catalogue.name == "openrouter.tasks.sync_catalogue"
    outcome = sync_catalogue.delay().get()
    assert outcome["ok"] is True and outcome["created"] == 1
    assert AIModel.objects.filter(pk=SONNET).exists()


def test_sync_models_command_reports(mocked, capsys):
    serve(mocked, entry(SONNET), entry("x/free:free", "0", "0"))
    call_command("sync_models")
    assert "2 models (2 new, 0 updated, 0 gone, 1 not sellable)" in capsys.readouterr().out


def test_sync_models_command_fails_loudly_unless_allowed(mocked):
    mocked.get(BASE + "/models", status=503, json={"error": {"code": 503, "message": "maintenance"}})
    with pytest.raises(CommandError, match="maintenance"):
        call_command("sync_models")
    mocked.get(BASE + "/models", status=503, json={"error": {"code": 503, "message": "maintenance"}})
    call_command("sync_models", "--allow-failure")  # no exception
