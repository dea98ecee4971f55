"""The signed-in user remembered for a few seconds per process: same checks as Django, own copies,
and a bounded window for changes made in another process."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts import remembered_users

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
