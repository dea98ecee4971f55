"""The OpenRouter sandbox's request handling (Django test client): validation and hostile input."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from openrouter.models import AIModel
from openrouter.sandbox.faults import inject_fault, inject_lost_response, inject_status, take_faults
from openrouter.sandbox.models import SandboxFault, SandboxKey

pytestmark = pytest.mark.django_db

ROOT = "/sandbox/openrouter/api/v1"
AUTH = {"HTTP_AUTHORIZATION": "Bearer sandbox-management-key"}


@pytest.fixture(autouse=True)
def _key(settings):
    settings.OPENROUTER_API_KEY = "sandbox-management-key"


def post(client, path, payload, **extra):
    data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return client.post(ROOT + path, data=data, content_type="application/json", **AUTH, **extra)


def create(client, **payload):
    payload.setdefault("name", "order-1")
    response = post(client, "/keys", payload)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_key_response_shape(client):
    body = create(client, limit=4.5, expires_at="2099-12-31T23:59:59Z")
    assert set(body) == {"data", "key"}
    data = body["data"]
    assert data["limit"] == 4.5 and data["limit_remaining"] == 4.5 and data["usage"] == 0
    assert data["disabled"] is False
    assert data["expires_at"].startswith("2099-12-31T23:59:59")
    assert data["label"].startswith("sk-or-v1-") and body["key"] not in data["label"]
    assert body["key"] not in json.dumps(data)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "n" * 501}, "name"),
        ({"name": "o", "limit": "4.5"}, "limit"),
        ({"name": "o", "limit": -1}, "limit"),
        ({"name": "o", "limit": True}, "limit"),
        ({"name": "o", "limit": 1e12}, "limit"),
        ({"name": "o", "expires_at": "2000-01-01T00:00:00Z"}, "future"),
        ({"name": "o", "expires_at": "2099-01-01T00:00:00+02:00"}, "UTC"),
        ({"name": "o", "expires_at": "tomorrow"}, "ISO"),
        ({"name": "o", "limit_reset": "hourly"}, "limit_reset"),
        ({"name": "o", "include_byok_in_limit": "yes"}, "include_byok"),
    ],
)
def test_create_key_rejects_bad_payloads_with_400(client, payload, message):
    response = post(client, "/keys", payload)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert not SandboxKey.objects.exists()


@pytest.mark.parametrize("raw", [b"{not json", b"[1,2]", b'{"name": "o", "limit": NaN}', b"\xff\xfe"])
def test_create_key_rejects_malformed_bodies(client, raw):
    response = post(client, "/keys", raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


def test_patch_validates_types(client):
    key_hash = create(client)["data"]["hash"]
    for payload in ({"disabled": "true"}, {"limit": "1"}, {}, {"name": ""}):
        response = client.patch(
            f"{ROOT}/keys/{key_hash}", data=json.dumps(payload), content_type="application/json", **AUTH
        )
        assert response.status_code == 400, payload
    response = client.patch(
        f"{ROOT}/keys/{key_hash}", data=json.dumps({"limit": None}), content_type="application/json", **AUTH
    )
    assert response.json()["data"]["limit"] is None and response.json()["data"]["limit_remaining"] is None


@pytest.mark.parametrize("offset", ["-1", "abc", "1.5", "٣", "9" * 30])
def test_list_rejects_bad_offsets(client, offset):
    response = client.get(ROOT + "/keys", {"offset": offset}, **AUTH)
    assert response.status_code == 400


def test_unknown_key_paths_and_methods(client):
    assert client.get(ROOT + "/keys/nope", **AUTH).status_code == 404
    assert client.get(ROOT + "/keys/nope", **AUTH).json()["error"]["code"] == 404
    response = client.get(ROOT + "/does/not/exist")
    assert response.status_code == 404 and response.json()["error"]["code"] == 404
    response = client.put(ROOT + "/keys", **AUTH)
    assert response.status_code == 405 and response.json()["error"]["code"] == 405
    assert client.post(ROOT + "/models").status_code == 405


def test_views_are_csrf_exempt(settings):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post(ROOT + "/keys", data=json.dumps({"name": "o"}), content_type="application/json", **AUTH)
    assert response.status_code == 201


def test_trailing_slash_is_tolerated(client):
    assert client.get(ROOT + "/models/").status_code == 200
    assert client.get(ROOT + "/credits/", **AUTH).status_code == 200


# --- Fault API ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "status"},  # no status code
        {"kind": "status", "status_code": 200},
        {"kind": "status", "status_code": 500, "times": 0},
        {"kind": "status", "status_code": 500, "method": "BREW"},
        {"kind": "status", "status_code": 500, "path_prefix": "keys"},
        {"kind": "latency"},
        {"kind": "lose_response", "status_code": 404},
        {"kind": "explode", "status_code": 500},
        {"kind": "status", "status_code": "500"},
        {"kind": "status", "status_code": 429, "retry_after": -1},
    ],
)
def test_inject_fault_validates(kwargs):
    with pytest.raises(ValueError):
        inject_fault(**kwargs)
    assert not SandboxFault.objects.exists()


def test_take_faults_consumes_one_use_per_call_and_stops_at_the_first_status():
    first = inject_status(500, times=1)
    second = inject_status(503, times=1)
    lost = inject_lost_response(method="", path_prefix="")
    plan = take_faults(method="GET", path="/credits")
    assert plan.status == first and plan.lost is None
    plan = take_faults(method="GET", path="/credits")
    assert plan.status == second
    plan = take_faults(method="GET", path="/credits")
    assert plan.status is None and plan.lost == lost
    assert take_faults(method="GET", path="/credits").used == []
    assert list(SandboxFault.objects.values_list("remaining", "hits")) == [(0, 1), (0, 1), (0, 1)]


def test_control_endpoint_rejects_bad_faults_and_needs_the_key(client):
    response = post(client, "/_sandbox/faults", {"kind": "status", "status_code": "x"})
    assert response.status_code == 400
    response = post(client, "/_sandbox/faults", {"kind": "status", "status_code": 500, "evil": 1})
    assert response.status_code == 400
    response = client.post(
        ROOT + "/_sandbox/faults",
        data=json.dumps({"kind": "status", "status_code": 500}),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert not SandboxFault.objects.exists()


def test_control_spend_validates(client):
    key_hash = create(client, limit=1)["data"]["hash"]
    for usd in ("-1", "abc", None, "NaN", True):
        response = post(client, f"/_sandbox/keys/{key_hash}/spend", {"usd": usd})
        assert response.status_code == 400, usd
    assert post(client, "/_sandbox/keys/nope/spend", {"usd": "1"}).status_code == 404
    assert SandboxKey.objects.get().usage == Decimal(0)


def test_expired_key_spends_nothing(client):
    from openrouter.sandbox.faults import simulate_spend

    key_hash = create(client, limit=1)["data"]["hash"]
    SandboxKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert simulate_spend(key_hash, Decimal("0.5")) == Decimal(0)


def test_control_models_changes_the_catalogue(client):
    post(client, "/_sandbox/models", {"id": "openai/gpt-4o", "prompt": "0.000005"})
    post(client, "/_sandbox/models", {"id": "anthropic/claude-3-opus", "hidden": True})
    post(client, "/_sandbox/models", {"id": "new/model", "name": "New", "prompt": "0.000001", "completion": "0.000002"})
    models = {m["id"]: m for m in client.get(ROOT + "/models").json()["data"]}
    assert models["openai/gpt-4o"]["pricing"]["prompt"] == "0.000005"
    assert "anthropic/claude-3-opus" not in models
    assert models["new/model"]["pricing"]["completion"] == "0.000002"
    assert client.delete(ROOT + "/_sandbox/models", **AUTH).status_code == 200
    assert "anthropic/claude-3-opus" in {m["id"] for m in client.get(ROOT + "/models").json()["data"]}


# --- sync_models --in-process ------------------------------------------------------------------


def test_sync_models_in_process_needs_no_web_server(settings, capsys):
    # given an API URL nobody listens on
    settings.OPENROUTER_API_URL = "http://127.0.0.1:9/sandbox/openrouter/api/v1"
    settings.DEFAULT_MODEL = "anthropic/claude-3-sonnet"
    # when
    call_command("sync_models", "--in-process")
    # then
    assert "models" in capsys.readouterr().out
    assert AIModel.objects.orderable().filter(pk="anthropic/claude-3-sonnet").exists()
    assert AIModel.objects.count() >= 8
