"""Logging in or signing up from "Order" keeps the order and returns to the review step."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"


def review_url(tokens=200000):
    return reverse("orders:new") + f"?model=anthropic/claude-3-sonnet&tokens={tokens}"


def test_order_while_logged_out_leads_to_a_login_page_that_names_the_order(client, sonnet):
    response = client.get(review_url(), follow=True)
    html = response.content.decode()
    assert response.request["PATH_INFO"] == reverse("accounts:login")
    assert "Log in to finish your order" in html
    assert "200,000 tokens of Anthropic: Claude 3 Sonnet" in html and "$2.16" in html
    # the header's and the page's signup links keep the order
    signup = reverse("accounts:signup") + "?next=" + quote(review_url(), safe="/")
    assert html.count(f'href="{signup}"') == 2


def test_login_returns_to_the_review_step(client, user, sonnet):
    response = client.post(
        reverse("accounts:login") + "?next=" + quote(review_url(), safe=""),
        {"username": user.email, "password": PASSWORD, "next": review_url()},
    )
    assert response.status_code == 302 and response["Location"] == review_url()


def test_signup_shows_the_order_and_returns_to_the_review_step(client, sonnet):
    page = client.get(reverse("accounts:signup"), {"next": review_url()}).content.decode()
    assert "Create an account to finish your order" in page and "$2.16" in page
    response = client.post(
        reverse("accounts:signup"),
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD, "next": review_url()},
    )
    assert response.status_code == 302 and response["Location"] == review_url()


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/orders/new/?model=anthropic/claude-3-sonnet&tokens=200000",
        "/orders/new/?model=nope&tokens=200000",
        "/orders/new/?model=anthropic/claude-3-sonnet&tokens=-5",
        "/orders/new/?model=anthropic/claude-3-sonnet&tokens=99999999999999999999",
        "/orders/",
        "/orders/new/?" + "x" * 5000,
    ],
)
def test_no_summary_for_foreign_or_invalid_next(client, sonnet, next_url):
    html = client.get(reverse("accounts:login"), {"next": next_url}).content.decode()
    assert "to finish your order" not in html


def test_plain_login_page_has_no_summary_and_plain_links(client):
    html = client.get(reverse("accounts:login")).content.decode()
    assert "to finish your order" not in html
    assert f'href="{reverse("accounts:signup")}"' in html
