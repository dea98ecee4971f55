"""OpenRouterClient against recorded-style HTTP (``responses``): parsing, errors, secrecy."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime

import pytest
import requests
import responses
from responses import matchers

from openrouter.client import (
    TRANSIENT_ERRORS,
    CreatedKey,
    OpenRouterAuthError,
    OpenRouterBadRequest,
    OpenRouterClient,
    OpenRouterError,
    OpenRouterForbidden,
    OpenRouterNetworkError,
    OpenRouterNotFound,
    OpenRouterPaymentRequired,
    OpenRouterRateLimited,
    OpenRouterServerError,
    get_openrouter_client,
)

BASE = "https://openrouter.test/api/v1"
API_KEY = "sk-or-v1-management-secret-0123456789abcdef"


@pytest.fixture
def client():
    return OpenRouterClient(base_url=BASE + "/", api_key=API_KEY, timeout=(1, 2))


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def key_data(n: int = 1, **overrides) -> dict:
    data = {
        "hash": f"{n:064x}",
        "name": f"order-{n}",
        "label": "sk-or-v1-abc...xyz",
        "disabled": False,
        "limit": Decimal("4.5"),
        "limit_remaining": Decimal("4.5"),
        "usage": 0,
        "created_at": "2026-01-02T03:04:05.678Z",
        "updated_at": None,
        "expires_at": None,
    }
    data.update(overrides)
    return data


def body(payload) -> str:
    import simplejson

    return simplejson.dumps(payload, use_decimal=True)


# --- Happy paths -------------------------------------------------------------------------------


def test_list_models_parses_string_prices_as_exact_decimals(client, mocked):
    # given a catalogue with a normal, a tiny, a free, a router and a broken entry
    mocked.get(
        BASE + "/models",
        body=json.dumps(
            {
                "data": [
                    {
                        "id": "anthropic/claude-3-sonnet",
                        "name": "Anthropic: Claude 3 Sonnet",
                        "context_length": 200000,
                        "pricing": {"prompt": "0.000003", "completion": "0.000015", "request": "0"},
                    },
                    {
                        "id": "google/gemini-flash-1.5",
                        "name": "G",
                        "pricing": {"prompt": "7.5e-8", "completion": "3e-7"},
                    },
                    {"id": "x/free:free", "name": "Free", "pricing": {"prompt": "0", "completion": "0"}},
                    {"id": "openrouter/auto", "name": "Auto", "pricing": {"prompt": "-1", "completion": "-1"}},
                    {"id": "x/broken", "name": "B", "pricing": {"prompt": "abc", "completion": None}},
                    {"id": "x/noprice", "name": "N"},
                    {"name": "no id at all"},
                    "not even an object",
                ]
            }
        ),
    )
    # when
    models = {m.id: m for m in client.list_models()}
    # then
    sonnet = models["anthropic/claude-3-sonnet"]
    assert sonnet.prompt_price == Decimal("0.000003") and isinstance(sonnet.prompt_price, Decimal)
    assert sonnet.completion_price == Decimal("0.000015")
    assert sonnet.request_price == Decimal(0)
    assert sonnet.context_length == 200000
    assert sonnet.name == "Anthropic: Claude 3 Sonnet"
    assert models["google/gemini-flash-1.5"].prompt_price == Decimal("0.000000075")
    assert models["x/free:free"].prompt_price == Decimal(0)
    assert models["openrouter/auto"].prompt_price == Decimal(-1)
    assert models["x/broken"].prompt_price is None and models["x/broken"].completion_price is None
    assert models["x/noprice"].prompt_price is None
    assert len(models) == 6


def test_list_models_does_not_send_the_key(client, mocked):
    mocked.get(BASE + "/models", json={"data": []})
    client.list_models()
    assert "Authorization" not in mocked.calls[0].request.headers


def test_numbers_never_pass_through_float(client, mocked):
    # given a number that float would round
    mocked.get(BASE + "/credits", body='{"data": {"total_credits": 100.10000000000000001, "total_usage": 25.75}}')
    # when
    credits = client.get_credits()
    # then
    assert credits.total_credits == Decimal("100.10000000000000001")
    assert credits.balance == Decimal("74.35000000000000001")


def test_get_credits_sends_bearer_key(client, mocked):
    mocked.get(
        BASE + "/credits",
        json={"data": {"total_credits": 100.5, "total_usage": 25}},
        match=[matchers.header_matcher({"Authorization": f"Bearer {API_KEY}"})],
    )
    credits = client.get_credits()
    assert credits.total_credits == Decimal("100.5")
    assert credits.total_usage == Decimal(25)
    assert credits.balance == Decimal("75.5")


def test_get_credits_with_missing_numbers_is_a_server_error(client, mocked):
    mocked.get(BASE + "/credits", json={"data": {"total_credits": "lots"}})
    with pytest.raises(OpenRouterServerError):
        client.get_credits()


def test_create_key_sends_exact_decimal_limit_and_utc_expiry(client, mocked):
    # given
    mocked.post(
        BASE + "/keys", status=201, body=body({"data": key_data(1, limit=Decimal("1.80")), "key": "sk-or-v1-x"})
    )
    expires = datetime(2027, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=2)))
    # when
    created = client.create_key(name="order-1", limit=Decimal("1.80"), expires_at=expires)
    # then: the limit is a JSON number with its exact digits, the expiry UTC with Z
    raw = mocked.calls[0].request.body.decode()
    assert '"limit": 1.80' in raw
    sent = json.loads(raw, parse_float=Decimal)
    assert sent["limit"] == Decimal("1.80")
    assert sent["expires_at"] == "2027-12-31T21:59:59Z"
    assert sent["name"] == "order-1"
    assert sent["limit_reset"] is None
    assert mocked.calls[0].request.headers["Content-Type"] == "application/json"
    assert created.key == "sk-or-v1-x"
    assert created.info.limit == Decimal("1.80")
    assert created.info.created_at == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_created_key_repr_hides_the_plaintext(client, mocked):
    mocked.post(BASE + "/keys", status=201, body=body({"data": key_data(), "key": "sk-or-v1-plaintext-secret"}))
    created = client.create_key(name="order-1", limit=Decimal("2"))
    assert isinstance(created, CreatedKey)
    assert "sk-or-v1-plaintext-secret" not in repr(created)
    assert "sk-or-v1-plaintext-secret" not in str(created)


def test_create_key_without_key_in_response_is_transient(client, mocked):
    mocked.post(BASE + "/keys", status=201, json={"data": {"hash": "abc", "name": "n"}})
    with pytest.raises(OpenRouterServerError) as excinfo:
        client.create_key(name="order-1", limit=Decimal("2"))
    assert isinstance(excinfo.value, TRANSIENT_ERRORS)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"name": "", "limit": Decimal("1")}, "name"),
        ({"name": "o", "limit": Decimal("-1")}, "limit"),
        ({"name": "o", "limit": Decimal("NaN")}, "limit"),
        ({"name": "o", "limit": 1.5}, "limit"),
        ({"name": "o", "limit": Decimal("1"), "expires_at": datetime(2030, 1, 1)}, "timezone"),
    ],
)
def test_create_key_refuses_bad_arguments_before_any_request(client, mocked, kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        client.create_key(**kwargs)
    assert len(mocked.calls) == 0


def test_get_key_parses_usage_and_limits(client, mocked):
    mocked.get(
        BASE + f"/keys/{1:064x}",
        body=body({"data": key_data(1, usage=Decimal("1.25"), limit_remaining=Decimal("3.25"), disabled=True)}),
    )
    info = client.get_key(f"{1:064x}")
    assert info.usage == Decimal("1.25")
    assert info.limit_remaining == Decimal("3.25")
    assert info.disabled is True


def test_unlimited_key_has_no_limit(client, mocked):
    mocked.get(BASE + "/keys/abc", body=body({"data": key_data(1, hash="abc", limit=None, limit_remaining=None)}))
    info = client.get_key("abc")
    assert info.limit is None and info.limit_remaining is None


@pytest.mark.parametrize("bad_hash", ["../credits", "a/b", "", "x" * 200, "abc?offset=1", "ключ"])
def test_hostile_key_hashes_never_reach_the_network(client, mocked, bad_hash):
    with pytest.raises(ValueError):
        client.get_key(bad_hash)
    with pytest.raises(ValueError):
        client.delete_key(bad_hash)
    assert len(mocked.calls) == 0


def test_list_keys_follows_offset_pages_of_100(client, mocked):
    # given 250 keys over three pages
    for offset, count in ((0, 100), (100, 100), (200, 50)):
        mocked.get(
            BASE + "/keys",
            body=body({"data": [key_data(n) for n in range(offset, offset + count)]}),
            match=[matchers.query_param_matcher({"offset": str(offset), "include_disabled": "true"})],
        )
    # when
    keys = client.list_keys()
    # then
    assert len(keys) == 250
    assert [k.hash for k in keys] == [f"{n:064x}" for n in range(250)]
    assert len(mocked.calls) == 3


def test_list_keys_asks_for_one_more_page_after_a_full_one(client, mocked):
    mocked.get(
        BASE + "/keys",
        body=body({"data": [key_data(n) for n in range(100)]}),
        match=[matchers.query_param_matcher({"offset": "0", "include_disabled": "true"})],
    )
    mocked.get(
        BASE + "/keys",
        json={"data": []},
        match=[matchers.query_param_matcher({"offset": "100", "include_disabled": "true"})],
    )
    assert len(client.list_keys()) == 100
    assert len(mocked.calls) == 2


def test_list_keys_stops_when_the_server_ignores_offset(client, mocked):
    # given a broken server that always returns the same full page
    mocked.get(BASE + "/keys", body=body({"data": [key_data(n) for n in range(100)]}))
    # then the client gives up instead of looping forever
    with pytest.raises(OpenRouterServerError, match="too many pages"):
        client.list_keys()


def test_update_key_sends_only_given_fields(client, mocked):
    mocked.patch(BASE + "/keys/abc", body=body({"data": key_data(1, hash="abc", disabled=True)}))
    info = client.update_key("abc", disabled=True)
    assert json.loads(mocked.calls[0].request.body) == {"disabled": True}
    assert info.disabled is True


def test_update_key_needs_something_to_change(client, mocked):
    with pytest.raises(ValueError):
        client.update_key("abc")
    assert len(mocked.calls) == 0


def test_delete_key(client, mocked):
    mocked.delete(BASE + "/keys/abc", json={"deleted": True})
    assert client.delete_key("abc") is None


def test_delete_key_without_confirmation_is_an_error(client, mocked):
    mocked.delete(BASE + "/keys/abc", json={"deleted": False})
    with pytest.raises(OpenRouterServerError):
        client.delete_key("abc")


# --- Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, OpenRouterBadRequest),
        (401, OpenRouterAuthError),
        (402, OpenRouterPaymentRequired),
        (403, OpenRouterForbidden),
        (404, OpenRouterNotFound),
        (429, OpenRouterRateLimited),
        (500, OpenRouterServerError),
        (502, OpenRouterServerError),
        (503, OpenRouterServerError),
        (504, OpenRouterServerError),
        (410, OpenRouterError),
    ],
)
def test_each_status_raises_its_error_class_with_the_service_message(client, mocked, status, error_class):
    mocked.get(BASE + "/credits", status=status, json={"error": {"code": status, "message": f"boom {status}"}})
    with pytest.raises(error_class) as excinfo:
        client.get_credits()
    assert type(excinfo.value) is error_class
    assert excinfo.value.status_code == status
    assert f"boom {status}" in str(excinfo.value)


def test_transient_errors_are_exactly_429_5xx_and_network():
    assert set(TRANSIENT_ERRORS) == {OpenRouterRateLimited, OpenRouterServerError, OpenRouterNetworkError}
    for permanent in (
        OpenRouterBadRequest,
        OpenRouterAuthError,
        OpenRouterPaymentRequired,
        OpenRouterForbidden,
        OpenRouterNotFound,
    ):
        assert not issubclass(permanent, TRANSIENT_ERRORS)


def test_error_without_json_body_still_maps_status(client, mocked):
    mocked.get(BASE + "/credits", status=502, body="<html>Bad gateway</html>", content_type="text/html")
    with pytest.raises(OpenRouterServerError) as excinfo:
        client.get_credits()
    assert excinfo.value.status_code == 502


def test_success_with_non_json_body_is_a_server_error(client, mocked):
    mocked.get(BASE + "/credits", status=200, body="<html>maintenance</html>")
    with pytest.raises(OpenRouterServerError):
        client.get_credits()


@pytest.mark.parametrize("raw", ['{"data": {"total_credits": NaN, "total_usage": 1}}', "[1, 2]", ""])
def test_hostile_success_bodies_are_refused(client, mocked, raw):
    mocked.get(BASE + "/credits", status=200, body=raw)
    with pytest.raises(OpenRouterServerError):
        client.get_credits()


def test_rate_limit_honours_retry_after_seconds(client, mocked):
    mocked.get(
        BASE + "/credits",
        status=429,
        headers={"Retry-After": "7"},
        json={"error": {"code": 429, "message": "Rate limit exceeded"}},
    )
    with pytest.raises(OpenRouterRateLimited) as excinfo:
        client.get_credits()
    assert excinfo.value.retry_after == 7.0
    assert excinfo.value.status_code == 429


def test_rate_limit_honours_retry_after_http_date(client, mocked):
    when = datetime.now(UTC) + timedelta(seconds=120)
    mocked.get(BASE + "/credits", status=429, headers={"Retry-After": format_datetime(when, usegmt=True)}, json={})
    with pytest.raises(OpenRouterRateLimited) as excinfo:
        client.get_credits()
    assert 100 <= excinfo.value.retry_after <= 121


@pytest.mark.parametrize("header", [None, "soon", "nan", "inf", ""])
def test_rate_limit_without_usable_retry_after(client, mocked, header):
    headers = {"Retry-After": header} if header is not None else {}
    mocked.get(BASE + "/credits", status=429, headers=headers, json={})
    with pytest.raises(OpenRouterRateLimited) as excinfo:
        client.get_credits()
    assert excinfo.value.retry_after is None


def test_negative_retry_after_is_zero(client, mocked):
    mocked.get(BASE + "/credits", status=429, headers={"Retry-After": "-5"}, json={})
    with pytest.raises(OpenRouterRateLimited) as excinfo:
        client.get_credits()
    assert excinfo.value.retry_after == 0.0


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectTimeout("x"),
        requests.ReadTimeout("x"),
        requests.ConnectionError("x"),
        requests.exceptions.ChunkedEncodingError("x"),
    ],
)
def test_network_failures_are_network_errors_without_status(client, mocked, exc):
    mocked.get(BASE + "/credits", body=exc)
    with pytest.raises(OpenRouterNetworkError) as excinfo:
        client.get_credits()
    assert excinfo.value.status_code is None
    assert isinstance(excinfo.value, TRANSIENT_ERRORS)


# --- Secrets -----------------------------------------------------------------------------------


def test_key_echoed_by_the_service_never_reaches_messages_or_logs(client, mocked, caplog):
    # given a service that echoes our key and a customer key back in its error message
    caplog.set_level(logging.DEBUG)
    mocked.get(
        BASE + "/credits",
        status=401,
        json={"error": {"code": 401, "message": f"Invalid key {API_KEY} (also sk-or-v1-deadbeefcafe1234)"}},
    )
    # when
    with pytest.raises(OpenRouterAuthError) as excinfo:
        client.get_credits()
    # then
    for text in (str(excinfo.value), repr(excinfo.value), excinfo.value.message, caplog.text):
        assert API_KEY not in text
        assert "deadbeefcafe1234" not in text
    assert "[redacted]" in str(excinfo.value)


def test_key_never_in_client_repr_or_logs_of_a_successful_call(client, mocked, caplog):
    caplog.set_level(logging.DEBUG)
    mocked.post(BASE + "/keys", status=201, body=body({"data": key_data(), "key": "sk-or-v1-customer-plaintext"}))
    created = client.create_key(name="order-1", limit=Decimal("1"))
    assert API_KEY not in repr(client)
    assert API_KEY not in caplog.text
    assert created.key not in caplog.text
    assert "openrouter_call POST /keys status=201" in caplog.text


def test_network_error_messages_and_logs_hold_no_key(client, mocked, caplog):
    caplog.set_level(logging.DEBUG)
    mocked.get(BASE + "/credits", body=requests.ConnectionError(f"refused while sending Bearer {API_KEY}"))
    with pytest.raises(OpenRouterNetworkError) as excinfo:
        client.get_credits()
    assert API_KEY not in str(excinfo.value)
    assert API_KEY not in caplog.text
    assert excinfo.value.__cause__ is None


def test_malformed_key_setting_does_not_leak_through_requests_error(caplog):
    # requests quotes an invalid header value in its exception message: the client must not pass it on
    caplog.set_level(logging.DEBUG)
    bad = "sk-or-v1-secret-with-newline\nInjected: 1"
    client = OpenRouterClient(base_url=BASE, api_key=bad, timeout=1)
    with pytest.raises(OpenRouterAuthError) as excinfo:
        client.get_credits()
    assert "secret-with-newline" not in str(excinfo.value)
    assert "secret-with-newline" not in repr(excinfo.value)
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    assert "secret-with-newline" not in caplog.text


def test_long_or_multiline_service_messages_are_one_short_line(client, mocked):
    mocked.get(BASE + "/credits", status=400, json={"error": {"code": 400, "message": "line1\nline2 " + "x" * 5000}})
    with pytest.raises(OpenRouterBadRequest) as excinfo:
        client.get_credits()
    assert "\n" not in str(excinfo.value)
    assert len(str(excinfo.value)) < 400


# --- Construction ------------------------------------------------------------------------------


class RecordingSession(requests.Session):
    def __init__(self):
        super().__init__()
        self.kwargs = []

    def request(self, method, url, **kwargs):
        self.kwargs.append((method, url, kwargs))
        return super().request(method, url, **kwargs)


def test_explicit_timeouts_are_passed_to_every_request(mocked):
    session = RecordingSession()
    client = OpenRouterClient(base_url=BASE, api_key=API_KEY, timeout=(3.05, 15), session=session)
    mocked.get(BASE + "/models", json={"data": []})
    mocked.get(BASE + "/credits", json={"data": {"total_credits": 1, "total_usage": 0}})
    client.list_models()
    client.get_credits()
    assert [kw["timeout"] for _, _, kw in session.kwargs] == [(3.05, 15), (3.05, 15)]


def test_get_openrouter_client_reads_settings_at_call_time(settings, mocked):
    # given settings changed after import
    settings.OPENROUTER_API_URL = "https://elsewhere.test/v1"
    settings.OPENROUTER_API_KEY = "changed-key"
    settings.HTTP_TIMEOUT = (0.5, 0.75)
    mocked.get(
        "https://elsewhere.test/v1/credits",
        json={"data": {"total_credits": 1, "total_usage": 0}},
        match=[matchers.header_matcher({"Authorization": "Bearer changed-key"})],
    )
    # when
    client = get_openrouter_client()
    # then
    assert client.base_url == "https://elsewhere.test/v1"
    assert client.timeout == (0.5, 0.75)
    assert client.get_credits().balance == Decimal(1)
    assert "changed-key" not in repr(client)


def test_get_openrouter_client_reuses_one_session_per_thread():
    assert get_openrouter_client().session is get_openrouter_client().session
