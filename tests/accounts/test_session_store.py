"""Session cookies Django could never have made are no session: nothing looked up, no error."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.session_store import SessionStore

pytestmark = pytest.mark.django_db

HOSTILE = ["\x00" * 32, "abc\x00defghijk", "A" * 32, "é" * 32, "x" * 41, "x" * 5000, "../../../etc/passwd",
           "' OR 1=1 --", "short"]


def test_the_store_uses_this_engine():
    assert settings.SESSION_ENGINE == "accounts.session_store"


def test_a_key_django_made_still_works(user_client, user):
    key = user_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert SessionStore(key).session_key == key
    assert user_client.get(reverse("orders:list")).status_code == 200


@pytest.mark.parametrize("cookie", HOSTILE)
def test_a_hostile_cookie_is_an_anonymous_visitor_and_no_lookup(client, cookie):
    assert SessionStore(cookie).session_key is None
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("orders:catalogue"))
        orders = client.get(reverse("orders:list"))
    assert response.status_code == 200 and reverse("accounts:login") in response.content.decode()
    assert orders.status_code == 302  # to the login page, not a 500
    assert not [q for q in queries if "django_session" in q["sql"]]
