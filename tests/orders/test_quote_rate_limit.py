"""`/api/quote` and `/quote/` are rate limited per IP — generously (a person typing never hits it)."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
API = reverse("orders:api_quote")
FRAGMENT = reverse("orders:quote_fragment")
QUERY = {"model": "anthropic/claude-3-sonnet", "tokens": "200000"}


def test_api_quote_answers_429_json_past_the_per_ip_limit(client, sonnet, settings):
    settings.QUOTE_RATE_LIMIT = "3/m"
    for _ in range(3):
        assert client.get(API, QUERY, REMOTE_ADDR="203.0.113.7").status_code == 200
    response = client.get(API, QUERY, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 429
    assert response.json()["valid"] is False and "Too many" in response.json()["errors"][0]
    # another address is not affected
    assert client.get(API, QUERY, REMOTE_ADDR="198.51.100.9").status_code == 200


def test_the_quote_fragment_shares_the_limit_and_shows_the_friendly_page(client, sonnet, settings):
    settings.QUOTE_RATE_LIMIT = "2/m"
    assert client.get(API, QUERY, REMOTE_ADDR="203.0.113.8").status_code == 200
    assert client.get(FRAGMENT, QUERY, REMOTE_ADDR="203.0.113.8", HTTP_HX_REQUEST="true").status_code == 200
    response = client.get(FRAGMENT, QUERY, REMOTE_ADDR="203.0.113.8", HTTP_HX_REQUEST="true")
    assert response.status_code == 429


def test_hostile_input_still_counts(client, sonnet, settings):
    settings.QUOTE_RATE_LIMIT = "2/m"
    for tokens in ("-1", "1e309"):
        assert client.get(API, {"model": "x" * 500, "tokens": tokens}, REMOTE_ADDR="203.0.113.9").status_code == 400
    assert client.get(API, QUERY, REMOTE_ADDR="203.0.113.9").status_code == 429


def test_the_default_is_generous(client, sonnet, settings):
    assert settings.QUOTE_RATE_LIMIT == "300/m"
    for _ in range(60):  # a customer typing a long number, one quote per keystroke, several times over
        assert client.get(API, QUERY, REMOTE_ADDR="203.0.113.10").status_code == 200
