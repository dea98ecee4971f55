# ruff: noqa: F811 - pytest fixtures imported from the sandbox suite are used as parameters
"""The OpenRouter sandbox's `PATCH /keys/{hash}` with `limit`, over real HTTP: absolute, idempotent,
re-opens a capped key, refuses nonsense; and its fault injection covers PATCH (what top-ups rely on)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests

from openrouter.client import OpenRouterNetworkError, OpenRouterServerError, get_openrouter_client
from openrouter.sandbox.faults import inject_latency, inject_lost_response, inject_status, simulate_spend
from openrouter.sandbox.models import SandboxKey
from tests.openrouter.test_sandbox_live import MANAGEMENT_KEY, api_url, openrouter  # noqa: F401 - fixtures

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _key(client, limit="1.80"):
    return client.create_key(name="Token Store TS-limitpatch0001", limit=Decimal(limit)).info


def test_limit_is_absolute_and_sending_it_twice_is_harmless(openrouter):
    client = get_openrouter_client()
    info = _key(client)
    first = client.update_key(info.hash, limit=Decimal("3.60"))
    second = client.update_key(info.hash, limit=Decimal("3.60"))
    assert first.limit == second.limit == Decimal("3.60")
    assert SandboxKey.objects.get(hash=info.hash).limit == Decimal("3.60")


def test_raising_the_limit_reopens_a_key_that_reached_its_cap(openrouter):
    client = get_openrouter_client()
    info = _key(client)
    assert simulate_spend(info.hash, Decimal("5")) == Decimal("1.80")  # stops at the cap
    assert client.get_key(info.hash).limit_remaining == 0
    raised = client.update_key(info.hash, limit=Decimal("3.60"))
    assert raised.limit_remaining == Decimal("1.80")
    assert simulate_spend(info.hash, Decimal("1")) == Decimal("1")


@pytest.mark.parametrize("limit", ["-1", '"3.60"', "true", "1e12", "NaN"])
def test_nonsense_limits_are_400_and_change_nothing(api_url, openrouter, limit):
    info = _key(get_openrouter_client())
    response = requests.patch(
        f"{api_url}/keys/{info.hash}",
        data=f'{{"limit": {limit}}}',
        headers={"Authorization": f"Bearer {MANAGEMENT_KEY}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert SandboxKey.objects.get(hash=info.hash).limit == Decimal("1.80")


def test_patch_faults_refuse_without_applying(openrouter):
    client = get_openrouter_client()
    info = _key(client)
    fault = inject_status(503, method="PATCH", path_prefix="/keys")
    with pytest.raises(OpenRouterServerError):
        client.update_key(info.hash, limit=Decimal("3.60"))
    assert SandboxKey.objects.get(hash=info.hash).limit == Decimal("1.80")
    fault.refresh_from_db()
    assert fault.hits == 1


def test_a_lost_patch_answer_is_applied_at_openrouter(openrouter):
    client = get_openrouter_client()
    info = _key(client)
    inject_lost_response(method="PATCH", path_prefix="/keys", status_code=504)
    with pytest.raises(OpenRouterServerError):
        client.update_key(info.hash, limit=Decimal("3.60"))
    assert client.get_key(info.hash).limit == Decimal("3.60")  # applied; only the answer was lost


def test_a_timed_out_patch_is_applied_too(openrouter, settings):
    settings.HTTP_TIMEOUT = (2, 0.5)
    client = get_openrouter_client()
    info = _key(client)
    inject_lost_response(method="PATCH", path_prefix="/keys", latency_ms=1200)
    with pytest.raises(OpenRouterNetworkError):
        client.update_key(info.hash, limit=Decimal("3.60"))
    time.sleep(0.8)
    assert SandboxKey.objects.get(hash=info.hash).limit == Decimal("3.60")


def test_patch_latency(openrouter):
    client = get_openrouter_client()
    info = _key(client)
    inject_latency(300, times=1, method="PATCH")
    started = time.monotonic()
    client.update_key(info.hash, limit=Decimal("3.60"))
    assert time.monotonic() - started >= 0.3
