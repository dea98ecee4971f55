"""Brute-force and abuse limits on the account doors (LOGIN/SIGNUP/PASSWORD_RESET_RATE_LIMIT)."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth import authenticate as real_authenticate

from accounts.models import User
from tests.accounts.conftest import PASSWORD
from tests.factories import StaffFactory, UserFactory

LOGIN_URL = "/accounts/login/"
SIGNUP_URL = "/accounts/signup/"
RESET_URL = "/accounts/password_reset/"


def attempt(client, email, password, ip="198.51.100.7"):
    return client.post(LOGIN_URL, {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_default_login_rate_is_five_a_minute(settings):
    assert settings.LOGIN_RATE_LIMIT == "5/m"


@pytest.mark.django_db
def test_sixth_attempt_from_one_ip_is_refused_even_with_the_right_password(client, frozen_clock):
    # given: five failures from one IP, each against a different account
    victim = UserFactory()
    for n in range(5):
        assert attempt(client, f"guess{n}@example.com", "wrong-password").status_code == 200

    # when: the sixth attempt has the right credentials
    with mock.patch("django.contrib.auth.forms.authenticate", wraps=real_authenticate) as authenticate:
        response = attempt(client, victim.email, PASSWORD)

    # then: the friendly 429 page, and the password was never even checked
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert response.templates[0].name == "429.html"
    authenticate.assert_not_called()
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_sixth_attempt_on_one_email_is_refused_from_any_ip(client, frozen_clock):
    # given: five failures against one account from five IPs, in varying case
    victim = UserFactory(email="victim@example.com")
    for n, typed in enumerate(
        [
            "victim@example.com",
            "VICTIM@example.com",
            "Victim@Example.com",
            " victim@example.com",
            "ＶＩＣＴＩＭ@example.com",
        ]
    ):
        assert attempt(client, typed, "wrong-password", ip=f"203.0.113.{n + 1}").status_code == 200

    # when: a sixth, fresh IP tries the right password
    with mock.patch("django.contrib.auth.forms.authenticate", wraps=real_authenticate) as authenticate:
        response = attempt(client, victim.email, PASSWORD, ip="192.0.2.99")

    # then
    assert response.status_code == 429
    authenticate.assert_not_called()
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_five_attempts_are_allowed_and_the_fifth_can_succeed(client, frozen_clock):
    user = UserFactory()
    for _ in range(4):
        attempt(client, user.email, "wrong-password")

    response = attempt(client, user.email, PASSWORD)

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(user.pk)


@pytest.mark.django_db
def test_other_ips_and_other_accounts_are_not_affected(client, frozen_clock):
    # given: one IP exhausted its attempts against one account
    UserFactory(email="victim@example.com")
    bystander = UserFactory()
    for _ in range(6):
        attempt(client, "victim@example.com", "wrong-password", ip="198.51.100.7")

    # when: another customer logs in from elsewhere
    response = attempt(client, bystander.email, PASSWORD, ip="192.0.2.10")

    # then
    assert response.status_code == 302


@pytest.mark.django_db
def test_page_views_do_not_count(client, frozen_clock, user):
    for _ in range(10):
        assert client.get(LOGIN_URL).status_code == 200

    assert attempt(client, user.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_the_limit_lifts_after_the_window(client, frozen_clock, user):
    for _ in range(6):
        attempt(client, user.email, "wrong-password")
    assert attempt(client, user.email, PASSWORD).status_code == 429

    frozen_clock.shift(timedelta(minutes=2))

    assert attempt(client, user.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_login_rate_follows_the_setting(client, frozen_clock, settings, user):
    settings.LOGIN_RATE_LIMIT = "2/m"
    attempt(client, user.email, "wrong-password")
    attempt(client, user.email, "wrong-password")

    assert attempt(client, user.email, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_hostile_emails_still_count_against_the_ip(client, frozen_clock, user):
    for junk in ["", "x" * 10_240, "\x00", "not-an-email", "ａ@ｂ.ｃ"]:
        attempt(client, junk, "wrong-password")

    assert attempt(client, user.email, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_admin_login_shares_the_store_login_limits(client, frozen_clock):
    # given: the store login door exhausted for this account
    staff = StaffFactory(email="boss@example.com")
    for n in range(5):
        attempt(client, "boss@example.com", "wrong-password", ip=f"203.0.113.{n + 1}")

    # when: the attacker switches to the admin's door
    response = client.post(
        "/admin/login/", {"username": staff.email, "password": PASSWORD, "next": "/admin/"}, REMOTE_ADDR="192.0.2.50"
    )

    # then
    assert response.status_code == 429
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_signup_is_limited_per_ip(client, frozen_clock, settings):
    settings.SIGNUP_RATE_LIMIT = "2/h"
    for n in range(2):
        client.post(SIGNUP_URL, {"email": f"bot{n}@example.com", "password1": "x", "password2": "y"})

    response = client.post(
        SIGNUP_URL,
        {"email": "bot9@example.com", "password1": "violet-otter-parade-42", "password2": "violet-otter-parade-42"},
    )

    assert response.status_code == 429
    assert not User.objects.exists()
    # a different IP may still sign up
    other = client.post(
        SIGNUP_URL,
        {"email": "real@example.com", "password1": "violet-otter-parade-42", "password2": "violet-otter-parade-42"},
        REMOTE_ADDR="192.0.2.77",
    )
    assert other.status_code == 302


@pytest.mark.django_db
def test_password_reset_is_limited_per_ip(client, frozen_clock, settings, mailoutbox):
    settings.PASSWORD_RESET_RATE_LIMIT = "2/h"
    user = UserFactory()
    client.post(RESET_URL, {"email": "a@example.com"})
    client.post(RESET_URL, {"email": "b@example.com"})

    response = client.post(RESET_URL, {"email": user.email})

    assert response.status_code == 429
    assert mailoutbox == []


@pytest.mark.django_db
def test_password_reset_is_limited_per_email_so_a_victim_is_not_mail_bombed(client, frozen_clock, settings, mailoutbox):
    settings.PASSWORD_RESET_RATE_LIMIT = "2/h"
    user = UserFactory(email="victim@example.com")
    for n, typed in enumerate(["victim@example.com", "VICTIM@example.com", "Victim@Example.COM"]):
        client.post(RESET_URL, {"email": typed}, REMOTE_ADDR=f"203.0.113.{n + 1}")

    assert len(mailoutbox) == 2
    assert all(m.to == [user.email] for m in mailoutbox)


def test_default_signup_and_reset_rates(settings):
    assert settings.SIGNUP_RATE_LIMIT == "20/h"
    assert settings.PASSWORD_RESET_RATE_LIMIT == "5/h"


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no trusted proxy: the header is ignored
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # a forged entry on the left is ignored
        (2, "6.6.6.6, 203.0.113.9, 198.51.100.1", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.1"),  # fewer hops than proxies: fall back to the connection
        (1, "not-an-ip", "10.0.0.1"),
        (1, "", "10.0.0.1"),
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(rf, settings, proxies, forwarded_for, expected):
    from accounts.throttling import client_ip

    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)

    assert client_ip(request) == expected


@pytest.mark.django_db
def test_behind_a_proxy_customers_are_limited_separately(client, frozen_clock, settings, user):
    # given: one proxy in front; an attacker exhausts their own address's attempts
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATELIMIT_IP_META_KEY = "accounts.throttling.client_ip"
    for n in range(6):
        client.post(
            LOGIN_URL,
            {"username": f"guess{n}@example.com", "password": "x"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="203.0.113.66",
        )

    # when: a customer comes through the same proxy
    ok = client.post(
        LOGIN_URL,
        {"username": user.email, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.5",
    )
    # and the attacker forges a fresh address on the left of the header
    blocked = client.post(
        LOGIN_URL,
        {"username": "guess9@example.com", "password": "x"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.66",
    )

    # then
    assert ok.status_code == 302
    assert blocked.status_code == 429
