"""The signed-in user remembered for a few seconds per process: same checks as Django, own copies,
and a bounded window for changes made in another process."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts import remembered_users
from tests.spies import spy_on

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.AUTH_USER_CACHE_SECONDS = 5
    remembered_users.forget_remembered_users()
    yield
    remembered_users.forget_remembered_users()


def orders_page(client):
    return client.get(reverse("orders:list"))


def test_a_remembered_user_costs_no_query(user_client, django_assert_num_queries):
    assert orders_page(user_client).status_code == 200
    with django_assert_num_queries(1):  # the orders list itself; no session, no user row
        assert orders_page(user_client).status_code == 200


def test_a_user_deactivated_in_this_process_is_signed_out_at_once(user_client, user):
    orders_page(user_client)
    user.is_active = False
    user.save()
    assert orders_page(user_client).status_code == 302  # to the login page


def test_a_change_made_elsewhere_reaches_the_session_when_the_memory_expires(user_client, user, monkeypatch):
    orders_page(user_client)
    # Another process deactivates the user: no signal reaches this one.
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert orders_page(user_client).status_code == 200  # still remembered, for at most the setting's seconds
    now = remembered_users.time.monotonic()
    monkeypatch.setattr(remembered_users.time, "monotonic", lambda: now + 6)
    assert orders_page(user_client).status_code == 302


def test_a_password_changed_elsewhere_ends_other_sessions_after_the_window(user_client, user, monkeypatch):
    orders_page(user_client)
    changed = get_user_model().objects.get(pk=user.pk)
    changed.set_password("a-new-horse-battery-staple")
    get_user_model().objects.filter(pk=user.pk).update(password=changed.password)
    now = remembered_users.time.monotonic()
    monkeypatch.setattr(remembered_users.time, "monotonic", lambda: now + 6)
    assert orders_page(user_client).status_code == 302


def test_zero_seconds_checks_the_database_on_every_request(user_client, user, settings):
    settings.AUTH_USER_CACHE_SECONDS = 0
    orders_page(user_client)
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert orders_page(user_client).status_code == 302


def test_each_request_gets_its_own_copy_of_the_user(rf, user_client, user):
    orders_page(user_client)
    session = user_client.session
    first, second = rf.get("/"), rf.get("/")
    first.session = second.session = session
    one, two = remembered_users.request_user(first), remembered_users.request_user(second)
    assert one.pk == two.pk == user.pk
    one.first_name = "changed by a view"
    assert two.first_name != "changed by a view"
    assert remembered_users.request_user(first).first_name != "changed by a view"


def test_a_forged_session_hash_is_refused_not_remembered(client, user):
    client.force_login(user)
    orders_page(client)
    session = client.session
    session["_auth_user_hash"] = "0" * 64
    session.save()
    assert orders_page(client).status_code == 302


# --- the session key, remembered: no session read for a verified session -----------------------


@pytest.fixture
def session_loads(monkeypatch):
    """Counts reads of the session store (each a cache round trip, or a query on a miss)."""
    from django.contrib.sessions.backends.cached_db import SessionStore

    return spy_on(monkeypatch, SessionStore, "load")


def catalogue(client):
    return client.get(reverse("orders:catalogue"))


def signed_in(response) -> bool:
    return reverse("accounts:logout") in response.content.decode()


def test_a_remembered_session_is_not_read_again(user_client, user, session_loads):
    catalogue(user_client)
    session_loads.clear()
    response = catalogue(user_client)
    assert response.status_code == 200 and signed_in(response)
    assert session_loads == []
    assert "Cookie" in response["Vary"]  # the page depends on the session: shared caches must not mix them


def test_a_view_that_uses_the_session_still_reads_it(user_client, session_loads):
    catalogue(user_client)
    session_loads.clear()
    session = user_client.session
    session["note"] = "kept"
    session.save()
    assert orders_page(user_client).status_code == 200
    assert session_loads  # the orders list reads it (pending order): loaded as always


def test_logging_out_in_this_process_forgets_the_session_at_once(user_client, user):
    old_cookie = user_client.cookies["sessionid"].value
    catalogue(user_client)
    user_client.post(reverse("accounts:logout"))
    from django.test import Client

    replay = Client()
    replay.cookies["sessionid"] = old_cookie  # a copy of the cookie the browser dropped
    assert not signed_in(catalogue(replay))
    assert orders_page(replay).status_code == 302


def test_a_log_out_elsewhere_reaches_a_copied_cookie_when_the_memory_expires(user_client, user, monkeypatch):
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX
    from django.contrib.sessions.models import Session
    from django.core.cache import cache

    key = user_client.cookies["sessionid"].value
    catalogue(user_client)
    # Another process logs out: the session is gone from the database and the cache, no signal here.
    Session.objects.filter(session_key=key).update(expire_date="2000-01-01T00:00:00Z")
    cache.delete(KEY_PREFIX + key)
    assert signed_in(catalogue(user_client))  # remembered, for the window only
    now = remembered_users.time.monotonic()
    monkeypatch.setattr(remembered_users.time, "monotonic", lambda: now + 6)
    assert not signed_in(catalogue(user_client))


@pytest.mark.parametrize("cookie", ["", "short", "x" * 40, "../../etc/passwd", "\x00" * 32])
def test_an_unknown_session_key_is_never_answered_from_memory(client, user_client, cookie, session_loads):
    catalogue(user_client)
    client.cookies["sessionid"] = cookie
    response = catalogue(client)
    assert response.status_code == 200 and not signed_in(response)


def test_zero_seconds_reads_the_session_every_time(user_client, settings, session_loads):
    settings.AUTH_USER_CACHE_SECONDS = 0
    catalogue(user_client)
    session_loads.clear()
    catalogue(user_client)
    assert len(session_loads) == 1
