"""Money rule 5 (docs/ARCHITECTURE.md, "Money rules").

Delivered keys, the management key and callback secrets never leak.

The fulfil flow here runs through the REAL OpenRouter client with HTTP stubbed by `responses`,
so the management key really travels through the code that logs.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import timedelta

import pytest
import responses
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from orders.models import AITokenOrder
from orders.services.fulfilment import order_fulfil
from orders.services.key_usage import key_usage_refresh
from orders.services.reconciler import fulfilment_reconcile
from storefront.encryption import decrypt, encrypt
from tests.factories import StaffFactory, UserFactory
from tests.orders.fulfilment_fakes import paid_order

pytestmark = pytest.mark.django_db

BASE = "https://openrouter.test/api/v1"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.OPENROUTER_API_URL = BASE
    settings.OPENROUTER_API_KEY = "mgmt-" + secrets.token_hex(20)
    return settings


@pytest.fixture
def openrouter_http():
    """OpenRouter over stubbed HTTP: POST /keys returns a fresh key; /keys lists it."""
    state = {"key": "sk-or-v1-" + secrets.token_hex(32), "hash": secrets.token_hex(32), "name": ""}

    def create(request):
        body = json.loads(request.body)
        state["name"] = body["name"]
        return 201, {}, json.dumps({"data": _data(state, body["limit"]), "key": state["key"]})

    def listing(request):
        data = [_data(state, 1.8)] if state["name"] else []
        return 200, {}, json.dumps({"data": data})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, f"{BASE}/keys", callback=create)
        mock.add_callback(responses.GET, f"{BASE}/keys", callback=listing)
        mock.add(responses.GET, f"{BASE}/credits", json={"data": {"total_credits": 100, "total_usage": 1}})
        yield state


def _data(state, limit):
    return {
        "hash": state["hash"],
        "name": state["name"],
        "label": state["key"][:12] + "...",
        "disabled": False,
        "limit": limit,
        "limit_remaining": limit,
        "usage": 0,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": None,
    }


@pytest.fixture
def delivered(openrouter_http, django_capture_on_commit_callbacks):
    callback_secret = "cbsecret-" + secrets.token_hex(16)
    order = paid_order(callback_secret_encrypted=encrypt(callback_secret))
    with django_capture_on_commit_callbacks(execute=True):  # customer mail goes out on commit
        order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    assert order.status == "delivered"
    order.plaintext = openrouter_http["key"]
    order.callback_secret = callback_secret
    return order


def _secrets_of(order, settings) -> list[str]:
    return [order.plaintext, order.callback_secret, settings.OPENROUTER_API_KEY]


def test_stored_key_is_encrypted_not_plaintext(delivered):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orders_aitokenorder WHERE id = %s", [delivered.pk])
        row = " ".join(str(value) for value in cursor.fetchone())
    assert delivered.plaintext not in row
    assert delivered.callback_secret not in row
    assert decrypt(delivered.key_encrypted) == delivered.plaintext


def test_secrets_never_reach_the_logs(openrouter_http, caplog, settings, client):
    caplog.set_level(logging.DEBUG)
    callback_secret = "cbsecret-" + secrets.token_hex(16)
    order = paid_order(callback_secret_encrypted=encrypt(callback_secret))
    order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    AITokenOrder.objects.filter(pk=order.pk).update(key_usage_checked_at=timezone.now() - timedelta(hours=1))
    key_usage_refresh()
    fulfilment_reconcile()
    client.force_login(order.user)
    client.get(reverse("orders:detail", args=[order.order_id]))
    client.get(reverse("orders:usage_fragment", args=[order.order_id]))
    text = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert "openrouter_call" in text  # the real client logged its calls...
    for secret in (openrouter_http["key"], callback_secret, settings.OPENROUTER_API_KEY):
        assert secret not in text  # ...and none of the secrets


def test_secrets_never_reach_emails(delivered, mailoutbox, settings):
    assert len(mailoutbox) >= 2  # the customer and staff were told
    for mail in mailoutbox:
        parts = [mail.subject, mail.body, *(alt[0] for alt in getattr(mail, "alternatives", []))]
        for secret in _secrets_of(delivered, settings):
            assert all(secret not in part for part in parts)


def test_secrets_never_reach_admin_pages(delivered, client, settings):
    client.force_login(StaffFactory())
    pages = [
        reverse("admin:orders_aitokenorder_changelist"),
        reverse("admin:orders_aitokenorder_changelist") + f"?q={delivered.order_id}",
        reverse("admin:orders_aitokenorder_change", args=[delivered.pk]),
        reverse("orders:detail", args=[delivered.order_id]),  # staff see the order, not the key
        reverse("orders:api_detail", args=[delivered.order_id]),
    ]
    for url in pages:
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        body = response.content.decode()
        for secret in _secrets_of(delivered, settings):
            assert secret not in body, url
        assert delivered.key_encrypted not in body


def test_another_users_api_gets_nothing(delivered, client, settings):
    client.force_login(UserFactory())
    for url in (
        reverse("orders:api_detail", args=[delivered.order_id]),
        reverse("orders:detail", args=[delivered.order_id]),
        reverse("orders:usage_fragment", args=[delivered.order_id]),
    ):
        response = client.get(url)
        assert response.status_code == 404
        for secret in _secrets_of(delivered, settings):
            assert secret not in response.content.decode()


def test_owner_api_carries_no_key(delivered, client, settings):
    client.force_login(delivered.user)
    body = client.get(reverse("orders:api_detail", args=[delivered.order_id])).content.decode()
    assert delivered.order_id in body
    for secret in _secrets_of(delivered, settings):
        assert secret not in body
    assert delivered.key_encrypted not in body


def test_the_owner_page_shows_the_key(delivered, client):
    client.force_login(delivered.user)
    body = client.get(reverse("orders:detail", args=[delivered.order_id])).content.decode()
    assert delivered.plaintext in body  # in data-value, for reveal/copy
    assert delivered.callback_secret not in body


# --- rotation ----------------------------------------------------------------------------------------


def test_rotate_encryption_re_encrypts_under_the_newest_key(delivered, settings, capsys):
    from cryptography.fernet import Fernet

    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old_keys]
    call_command("rotate_encryption")
    out = capsys.readouterr().out
    assert "2 secret(s)" in out
    assert delivered.plaintext not in out and delivered.callback_secret not in out
    # the old key can go now: everything still decrypts
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    delivered.refresh_from_db()
    assert decrypt(delivered.key_encrypted) == delivered.plaintext
    assert decrypt(delivered.callback_secret_encrypted) == delivered.callback_secret


def test_rotate_dry_run_writes_nothing(delivered, settings):
    from cryptography.fernet import Fernet

    before = delivered.key_encrypted
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    call_command("rotate_encryption", "--dry-run")
    delivered.refresh_from_db()
    assert delivered.key_encrypted == before


def test_rotate_refuses_quietly_on_secrets_it_cannot_read(delivered, settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key is gone
    with pytest.raises(CommandError) as excinfo:
        call_command("rotate_encryption")
    assert delivered.order_id in str(excinfo.value)
    assert delivered.plaintext not in str(excinfo.value)
