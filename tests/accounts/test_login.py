import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from tests.accounts.conftest import PASSWORD
from tests.factories import StaffFactory, UserFactory

LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"


def test_account_urls_are_named():
    assert reverse("accounts:login") == LOGIN_URL
    assert reverse("accounts:logout") == LOGOUT_URL


@pytest.mark.django_db
def test_login_page_asks_for_an_email(client):
    html = client.get(LOGIN_URL).content.decode()

    assert '<label for="id_username">Email</label>' in html
    assert 'type="email" name="username" autocomplete="email"' in html
    assert 'autocomplete="current-password"' in html
    assert reverse("accounts:password_reset") in html
    assert reverse("accounts:signup") in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "typed", ["alice@example.com", "ALICE@EXAMPLE.COM", "Alice@Example.Com", "  alice@example.com "]
)
def test_login_works_with_any_email_case(client, typed):
    # given
    user = UserFactory(email="alice@example.com")

    # when
    response = client.post(LOGIN_URL, {"username": typed, "password": PASSWORD})

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("orders:catalogue")
    assert client.session[SESSION_KEY] == str(user.pk)


@pytest.mark.django_db
def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, user):
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD + "!"})

    assert response.status_code == 200
    assert response.context["form"].has_error("__all__", "invalid_login")
    assert "don&#x27;t match an account" in response.content.decode()
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_unknown_email_gets_the_same_error_as_a_wrong_password(client, user):
    known = client.post(LOGIN_URL, {"username": user.email, "password": "wrong-password-1"})
    unknown = client.post(LOGIN_URL, {"username": "nobody@example.com", "password": "wrong-password-1"})

    assert known.context["form"].errors == unknown.context["form"].errors


@pytest.mark.django_db
def test_inactive_account_cannot_log_in(client):
    user = UserFactory(is_active=False)

    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})

    assert response.status_code == 200
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["", "x" * 10_240, "not-an-email", "alice@example.com\x00", "\u0130@example.com"])
def test_hostile_login_input_is_a_form_error(client, username):
    response = client.post(LOGIN_URL, {"username": username, "password": "p" * 10_240})

    assert response.status_code == 200
    assert not response.context["form"].is_valid()
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_login_redirects_to_a_safe_next_url(client, user):
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD, "next": "/orders/"})

    assert response["Location"] == "/orders/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", "https:evil.example"],
)
def test_login_refuses_open_redirects(client, user, next_url):
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD, "next": next_url})

    assert response.status_code == 302
    assert response["Location"] == reverse("orders:catalogue")


@pytest.mark.django_db
def test_login_page_carries_next_to_the_form_and_the_signup_link(client):
    html = client.get(LOGIN_URL + "?next=/orders/new/").content.decode()

    assert '<input type="hidden" name="next" value="/orders/new/">' in html
    assert reverse("accounts:signup") + "?next=/orders/new/" in html


@pytest.mark.django_db
def test_signed_in_customer_visiting_login_is_sent_on(user_client):
    response = user_client.get(LOGIN_URL)

    assert response.status_code == 302


@pytest.mark.django_db
def test_logout_by_get_only_asks_and_keeps_the_session(user_client, user):
    response = user_client.get(LOGOUT_URL, {"next": "/orders/"})

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<form method="post" action="{LOGOUT_URL}"' in html and "csrfmiddlewaretoken" in html
    assert user.email in html and 'href="/orders/"' in html  # "stay signed in" goes back
    assert "no-store" in response["Cache-Control"]
    assert user_client.session[SESSION_KEY] == str(user.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", "x" * 5000])
def test_logout_page_never_links_away_from_the_site(user_client, next_url):
    html = user_client.get(LOGOUT_URL, {"next": next_url}).content.decode()

    assert "evil.example" not in html and "javascript:" not in html
    stay = re.search(r'<a class="button button-secondary" href="([^"]*)">Stay signed in</a>', html).group(1)
    assert urlsplit(stay).scheme == "" and urlsplit(stay).netloc == ""


@pytest.mark.django_db
def test_logout_page_sends_a_signed_out_visitor_on(client):
    response = client.get(LOGOUT_URL)

    assert response.status_code == 302 and response["Location"] == reverse("orders:catalogue")


@pytest.mark.django_db
def test_logout_is_get_or_post_only(user_client, user):
    for method in (user_client.put, user_client.delete, user_client.patch):
        assert method(LOGOUT_URL).status_code == 405
    assert user_client.session[SESSION_KEY] == str(user.pk)


@pytest.mark.django_db
def test_logout_by_post_ends_the_session(user_client):
    response = user_client.post(LOGOUT_URL)

    assert response.status_code == 302
    assert response["Location"] == reverse("orders:catalogue")
    assert SESSION_KEY not in user_client.session


@pytest.mark.django_db
def test_logout_requires_the_csrf_token(user, settings):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(LOGOUT_URL)

    assert response.status_code == 403
    assert client.session[SESSION_KEY] == str(user.pk)


@pytest.mark.django_db
def test_staff_can_log_into_the_admin_with_any_email_case(client):
    staff = StaffFactory(email="boss@example.com")

    response = client.post("/admin/login/", {"username": "Boss@Example.COM", "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(staff.pk)
