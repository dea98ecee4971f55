"""The real OpenRouterClient against the OpenRouter sandbox over real HTTP (``live_server``)."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from openrouter import client as api
from openrouter.catalogue_sync import catalogue_sync
from openrouter.models import AIModel
from openrouter.sandbox import faults
from openrouter.sandbox.keys import key_digest
from openrouter.sandbox.models import SandboxAccount, SandboxFault, SandboxKey

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

MANAGEMENT_KEY = "sandbox-management-key"


@pytest.fixture
def api_url(live_server, settings):
    url = live_server.url + "/sandbox/openrouter/api/v1"
    settings.OPENROUTER_API_URL = url
    settings.OPENROUTER_API_KEY = MANAGEMENT_KEY
    settings.HTTP_TIMEOUT = (2, 5)
    return url


@pytest.fixture
def openrouter(api_url):
    return api.get_openrouter_client()


def auth(key: str = MANAGEMENT_KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


# --- Catalogue ---------------------------------------------------------------------------------


def test_models_serves_a_realistic_catalogue_without_auth(api_url, openrouter):
    # when
    raw = requests.get(api_url + "/models", timeout=5)
    models = {m.id: m for m in openrouter.list_models()}
    # then
    assert raw.status_code == 200
    assert len(models) >= 8
    raw_sonnet = next(m for m in raw.json()["data"] if m["id"] == "anthropic/claude-3-sonnet")
    assert raw_sonnet["pricing"]["prompt"] == "0.000003"  # strings, like OpenRouter
    assert raw_sonnet["pricing"]["completion"] == "0.000015"
    assert models["anthropic/claude-3-sonnet"].prompt_price == Decimal("0.000003")
    assert models["anthropic/claude-3-sonnet"].completion_price == Decimal("0.000015")
    assert models["anthropic/claude-3-sonnet"].context_length == 200000
    free = [m for m in models.values() if m.id.endswith(":free")]
    assert free and all(m.prompt_price == 0 and m.completion_price == 0 for m in free)
    assert models["openrouter/auto"].prompt_price == Decimal(-1)


def test_catalogue_sync_against_the_sandbox(openrouter, settings):
    settings.DEFAULT_MODEL = "anthropic/claude-3-sonnet"
    # when
    result = catalogue_sync()
    # then the store's default range is on sale: several providers, real prices
    assert result.ok and result.seen >= 20
    orderable = set(AIModel.objects.orderable().values_list("pk", flat=True))
    assert orderable == set(settings.OFFERED_MODELS_DEFAULT) | {"anthropic/claude-3-sonnet"}
    assert len({model_id.split("/")[0] for model_id in orderable}) >= 5
    assert AIModel.objects.get(pk="openrouter/auto").pricing_issue == "variable price"
    assert AIModel.objects.get(pk="meta-llama/llama-3.1-8b-instruct:free").pricing_issue == "free"
    assert AIModel.objects.filter(pricing_issue="").count() >= 8


def test_model_leaving_the_sandbox_catalogue_becomes_unavailable(openrouter):
    catalogue_sync()
    faults.override_model("openai/gpt-4o", hidden=True)
    result = catalogue_sync()
    assert result.gone == 1
    assert not AIModel.objects.get(pk="openai/gpt-4o").available


def test_failed_sync_against_the_sandbox_keeps_prices(openrouter):
    catalogue_sync()
    faults.inject_status(503, path_prefix="/models")
    result = catalogue_sync()
    assert not result.ok and "503" in result.error
    assert AIModel.objects.get(pk="anthropic/claude-3-sonnet").prompt_price == Decimal("0.000003")


# --- Authentication ----------------------------------------------------------------------------


def test_credits_default_account(openrouter):
    credits = openrouter.get_credits()
    assert credits.total_credits == Decimal("100")
    assert credits.total_usage == Decimal(0)
    assert credits.balance == Decimal("100")


@pytest.mark.parametrize("path", ["/credits", "/keys", "/keys/abc", "/_sandbox/faults"])
def test_authenticated_endpoints_answer_401_json_without_the_right_key(api_url, path):
    for headers in ({}, auth("wrong-key"), {"Authorization": MANAGEMENT_KEY}, {"Authorization": "Bearer "}):
        response = requests.get(api_url + path, headers=headers, timeout=5)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == 401


def test_client_with_wrong_key_gets_auth_error(api_url):
    wrong = api.OpenRouterClient(base_url=api_url, api_key="sk-or-v1-wrong", timeout=(2, 5))
    with pytest.raises(api.OpenRouterAuthError) as excinfo:
        wrong.get_credits()
    assert excinfo.value.status_code == 401
    with pytest.raises(api.OpenRouterAuthError):
        wrong.create_key(name="x", limit=Decimal("1"))
    assert not SandboxKey.objects.exists()


def test_a_customer_key_is_not_a_management_key(api_url, openrouter):
    created = openrouter.create_key(name="order-1", limit=Decimal("1"))
    customer = api.OpenRouterClient(base_url=api_url, api_key=created.key, timeout=(2, 5))
    with pytest.raises(api.OpenRouterForbidden):
        customer.list_keys()


# --- Keys --------------------------------------------------------------------------------------


def test_key_lifecycle(api_url, openrouter):
    # create
    expires = timezone.now() + timedelta(days=30)
    created = openrouter.create_key(name="order-42", limit=Decimal("1.80"), expires_at=expires)
    assert created.key.startswith("sk-or-v1-")
    assert created.info.name == "order-42"
    assert created.info.limit == Decimal("1.80")
    assert created.info.limit_remaining == Decimal("1.80")
    assert created.info.usage == Decimal(0)
    assert created.info.disabled is False
    assert created.info.expires_at is not None and abs(created.info.expires_at - expires) < timedelta(seconds=1)
    # the plaintext is stored nowhere and never shown again
    stored = SandboxKey.objects.get()
    assert created.key not in str(list(SandboxKey.objects.values()))
    assert stored.hash == key_digest(created.key) == created.info.hash
    raw = requests.get(f"{api_url}/keys/{created.info.hash}", headers=auth(), timeout=5)
    assert created.key not in raw.text
    # get
    info = openrouter.get_key(created.info.hash)
    assert info == created.info
    # list
    assert [k.hash for k in openrouter.list_keys()] == [created.info.hash]
    # update
    disabled = openrouter.update_key(created.info.hash, disabled=True)
    assert disabled.disabled is True
    relimited = openrouter.update_key(created.info.hash, limit=Decimal("2.50"))
    assert relimited.limit == Decimal("2.50") and relimited.limit_remaining == Decimal("2.50")
    # delete
    openrouter.delete_key(created.info.hash)
    with pytest.raises(api.OpenRouterNotFound):
        openrouter.get_key(created.info.hash)
    with pytest.raises(api.OpenRouterNotFound):
        openrouter.delete_key(created.info.hash)
    assert openrouter.list_keys() == []


def test_list_keys_pages_beyond_100(api_url, openrouter):
    # given 205 keys, 5 of them disabled
    SandboxKey.objects.bulk_create(
        SandboxKey(
            hash=f"{n:064x}", name=f"order-{n}", label="sk-or-v1-abc...xyz", disabled=n % 41 == 0, limit=Decimal("1.00")
        )
        for n in range(205)
    )
    # when
    everything = openrouter.list_keys()
    enabled = openrouter.list_keys(include_disabled=False)
    raw_first_page = requests.get(api_url + "/keys", headers=auth(), timeout=5).json()["data"]
    # then
    assert len(everything) == 205
    assert len({k.hash for k in everything}) == 205
    assert len(enabled) == 200 and not any(k.disabled for k in enabled)
    assert len(raw_first_page) == 100


def test_create_key_when_the_account_is_empty_is_402(openrouter):
    SandboxAccount.objects.update_or_create(pk=1, defaults={"total_credits": Decimal("5"), "total_usage": Decimal("5")})
    with pytest.raises(api.OpenRouterPaymentRequired):
        openrouter.create_key(name="order-1", limit=Decimal("1"))
    assert not SandboxKey.objects.exists()


# --- Spending ----------------------------------------------------------------------------------


def test_simulated_spend_changes_usage_limit_remaining_and_credits(openrouter):
    # given
    created = openrouter.create_key(name="order-1", limit=Decimal("1.80"))
    # when
    spent = faults.simulate_spend(created.info.hash, Decimal("0.75"))
    # then
    info = openrouter.get_key(created.info.hash)
    assert spent == Decimal("0.75")
    assert info.usage == Decimal("0.75")
    assert info.limit_remaining == Decimal("1.05")
    assert openrouter.get_credits().total_usage == Decimal("0.75")
    assert openrouter.get_credits().balance == Decimal("99.25")


def test_spending_stops_at_the_limit(openrouter):
    created = openrouter.create_key(name="order-1", limit=Decimal("1.00"))
    assert faults.simulate_spend(created.info.hash, Decimal("0.60")) == Decimal("0.60")
    assert faults.simulate_spend(created.info.hash, Decimal("5")) == Decimal("0.40")
    info = openrouter.get_key(created.info.hash)
    assert info.usage == Decimal("1.00") and info.limit_remaining == Decimal(0)


def test_disabled_key_spends_nothing(openrouter):
    created = openrouter.create_key(name="order-1", limit=Decimal("1.00"))
    openrouter.update_key(created.info.hash, disabled=True)
    assert faults.simulate_spend(created.info.hash, Decimal("0.50")) == Decimal(0)
    assert openrouter.get_key(created.info.hash).usage == Decimal(0)


def test_spend_through_the_control_endpoint(api_url, openrouter):
    created = openrouter.create_key(name="order-1", limit=Decimal("2"))
    response = requests.post(
        f"{api_url}/_sandbox/keys/{created.info.hash}/spend", json={"usd": "0.5"}, headers=auth(), timeout=5
    )
    assert response.status_code == 200
    assert response.json()["spent"] == 0.5
    assert openrouter.get_key(created.info.hash).limit_remaining == Decimal("1.5")


# --- Faults ------------------------------------------------------------------------------------


def test_status_fault_for_the_next_n_calls(openrouter):
    # given
    fault = faults.inject_status(500, times=2, path_prefix="/credits")
    # then: two failures, then the service recovers
    for _ in range(2):
        with pytest.raises(api.OpenRouterServerError) as excinfo:
            openrouter.get_credits()
        assert excinfo.value.status_code == 500
    assert openrouter.get_credits().balance == Decimal(100)
    fault.refresh_from_db()
    assert (fault.remaining, fault.hits) == (0, 2)


def test_status_fault_only_hits_matching_method_and_path(openrouter):
    faults.inject_status(502, times=1, method="POST", path_prefix="/keys")
    assert openrouter.get_credits().balance == Decimal(100)  # other path: unaffected
    assert openrouter.list_keys() == []  # same path, other method: unaffected
    with pytest.raises(api.OpenRouterServerError):
        openrouter.create_key(name="order-1", limit=Decimal("1"))
    assert not SandboxKey.objects.exists()  # a status fault does nothing else
    assert openrouter.create_key(name="order-1", limit=Decimal("1")).key


def test_rate_limit_fault_carries_retry_after(openrouter):
    faults.inject_status(429, retry_after=7)
    with pytest.raises(api.OpenRouterRateLimited) as excinfo:
        openrouter.get_credits()
    assert excinfo.value.retry_after == 7.0


def test_402_fault(openrouter):
    faults.inject_status(402, method="POST", path_prefix="/keys")
    with pytest.raises(api.OpenRouterPaymentRequired):
        openrouter.create_key(name="order-1", limit=Decimal("1"))


def test_latency_fault(openrouter):
    faults.inject_latency(400, times=1)
    started = time.monotonic()
    openrouter.get_credits()
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    openrouter.get_credits()
    assert time.monotonic() - started < 0.4


def test_lost_response_times_out_but_leaves_the_key_behind(openrouter, settings):
    # given a client that waits half a second for answers, and a lost response
    settings.HTTP_TIMEOUT = (2, 0.5)
    client = api.get_openrouter_client()
    faults.inject_lost_response()  # the sandbox sleeps read timeout + 1 s = 1.5 s after creating the key
    # when
    started = time.monotonic()
    with pytest.raises(api.OpenRouterNetworkError):
        client.create_key(name="order-7", limit=Decimal("1.80"))
    assert time.monotonic() - started < 1.4
    # then: the key exists although the caller never saw it; it can be found by name and deleted
    assert SandboxKey.objects.filter(name="order-7").count() == 1
    orphans = [k for k in client.list_keys() if k.name == "order-7"]
    assert len(orphans) == 1
    client.delete_key(orphans[0].hash)
    assert not SandboxKey.objects.exists()
    # let the sleeping sandbox thread finish while this test still owns the database
    time.sleep(max(0.0, started + 2.0 - time.monotonic()))


def test_lost_response_as_504_leaves_the_key_behind(openrouter):
    faults.inject_lost_response(status_code=504)
    with pytest.raises(api.OpenRouterServerError) as excinfo:
        openrouter.create_key(name="order-8", limit=Decimal("1"))
    assert excinfo.value.status_code == 504
    assert SandboxKey.objects.filter(name="order-8").exists()
    # the next call is served normally
    assert openrouter.create_key(name="order-8b", limit=Decimal("1")).key


def test_faults_through_the_control_endpoints(api_url, openrouter):
    # given a fault injected over HTTP, as another process or a demo would
    response = requests.post(
        api_url + "/_sandbox/faults",
        json={"kind": "status", "status_code": 503, "times": 1, "path_prefix": "/credits"},
        headers=auth(),
        timeout=5,
    )
    assert response.status_code == 201
    listed = requests.get(api_url + "/_sandbox/faults", headers=auth(), timeout=5).json()["data"]
    assert [f["status_code"] for f in listed] == [503]
    # then it applies
    with pytest.raises(api.OpenRouterServerError):
        openrouter.get_credits()
    # and clearing works
    requests.post(
        api_url + "/_sandbox/faults",
        json={"kind": "status", "status_code": 500, "times": None},
        headers=auth(),
        timeout=5,
    )
    assert requests.delete(api_url + "/_sandbox/faults", headers=auth(), timeout=5).json()["deleted"] >= 1
    assert not SandboxFault.objects.exists()
    assert openrouter.get_credits().balance == Decimal(100)


def test_control_endpoints_for_credits_and_reset(api_url, openrouter):
    requests.post(
        api_url + "/_sandbox/credits", json={"total_credits": "10", "total_usage": "9.5"}, headers=auth(), timeout=5
    )
    assert openrouter.get_credits().balance == Decimal("0.5")
    openrouter.create_key(name="order-1", limit=Decimal("1"))
    assert requests.post(api_url + "/_sandbox/reset", headers=auth(), timeout=5).json() == {"reset": True}
    assert openrouter.list_keys() == []
    assert openrouter.get_credits().balance == Decimal(100)


def test_clear_faults_restores_service(openrouter):
    faults.inject_status(500, times=None)
    with pytest.raises(api.OpenRouterServerError):
        openrouter.get_credits()
    faults.clear_faults()
    assert openrouter.get_credits().balance == Decimal(100)
