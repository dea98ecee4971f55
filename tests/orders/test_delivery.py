"""The delivered key on the order page, its live usage fragment, and the tokens-ready email."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from orders.customer_mail import DELIVERED, customer_mail_send
from orders.models import AITokenOrder, OrderStatus
from orders.services.fulfilment import order_fulfil
from orders.views.delivery_context import delivery_context, mask_key
from tests.factories import AIModelFactory, OrderFactory, UserFactory
from tests.orders.fulfilment_fakes import fake_openrouter_account, paid_order  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def delivered(fake_openrouter):
    AIModelFactory(id="anthropic/claude-3-sonnet", name="Anthropic: Claude 3 Sonnet")
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    order.plaintext = fake_openrouter.plaintexts[-1]
    return order


@pytest.fixture
def refreshes(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr("orders.tasks.fulfilment.key_usage_refresh.delay", lambda **kw: sent.append(kw))
    return sent


def test_mask_keeps_only_prefix_and_last_four():
    key = "sk-or-v1-" + "ab12" * 16
    masked = mask_key(key)
    assert masked.startswith("sk-or-v1-") and masked.endswith(key[-4:])
    assert "ab12ab12" not in masked


def test_delivery_context_has_key_model_and_limit(delivered):
    ctx = delivery_context(delivered)["delivery"]
    assert ctx.key == delivered.plaintext
    assert delivered.plaintext not in ctx.key_masked
    assert ctx.model_name == "Anthropic: Claude 3 Sonnet"
    assert ctx.token_count == 200000
    assert ctx.limit_usd == "1.80"
    assert ctx.base_url == "https://openrouter.ai/api/v1"
    assert ctx.usage.limit == Decimal("1.80")
    assert ctx.usage_url == reverse("orders:usage_fragment", args=[delivered.order_id])


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.FULFILLING, OrderStatus.FAILED])
def test_no_delivery_context_before_delivery(status):
    assert delivery_context(OrderFactory(status=status)) == {}


def test_delivery_context_survives_a_lost_encryption_key(delivered, settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    ctx = delivery_context(delivered)["delivery"]
    assert ctx.key is None


def test_delivery_partial_renders_reveal_copy_and_instructions(delivered, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        html = render_to_string("orders/_delivery.html", delivery_context(delivered))
    # the key: masked text, plaintext only in the data attribute app.js reveals/copies
    assert 'data-reveal-target="delivered-key"' in html
    assert 'data-copy-target="delivered-key"' in html
    assert f'data-value="{delivered.plaintext}"' in html
    assert f'data-masked="{mask_key(delivered.plaintext)}"' in html
    # what it buys
    assert "200,000 tokens" in html and "Anthropic: Claude 3 Sonnet" in html and "$1.80" in html
    # how to use it
    assert "https://openrouter.ai/api/v1" in html
    assert "from openai import OpenAI" in html and "curl " in html
    assert "max_tokens" in html and "cheapest provider" in html
    # live usage by htmx from the owner-only fragment
    assert f'hx-get="/orders/{delivered.order_id}/usage/"' in html
    assert "<script" not in html and " style=" not in html and "onclick" not in html


def test_usage_fragment_for_the_owner_shows_stored_numbers(client, delivered, refreshes):
    AITokenOrder.objects.filter(pk=delivered.pk).update(
        key_usage_usd=Decimal("0.45"), key_limit_remaining_usd=Decimal("1.35"), key_usage_checked_at=timezone.now()
    )
    client.force_login(delivered.user)
    response = client.get(reverse("orders:usage_fragment", args=[delivered.order_id]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "$0.4500" in body and "$1.3500" in body and "$1.80" in body
    assert "150,000 tokens left" in body  # 1.35 / 0.000009
    assert refreshes == []  # fresh numbers: nothing to refresh
    assert delivered.plaintext not in body


@pytest.mark.parametrize("who", ["anonymous", "stranger"])
def test_usage_fragment_is_404_for_anyone_else(client, delivered, refreshes, who):
    if who == "stranger":
        client.force_login(UserFactory())
    response = client.get(reverse("orders:usage_fragment", args=[delivered.order_id]))
    assert response.status_code == 404
    assert refreshes == []


def test_usage_fragment_is_404_before_delivery(client, refreshes):
    order = paid_order()
    client.force_login(order.user)
    assert client.get(reverse("orders:usage_fragment", args=[order.order_id])).status_code == 404
    assert client.get(reverse("orders:usage_fragment", args=["TS-nope"])).status_code == 404


@responses.activate
def test_stale_usage_asks_a_worker_at_most_once_a_minute_and_never_calls_openrouter(
    client, delivered, refreshes, monkeypatch, django_assert_max_num_queries
):
    # given usage last checked five minutes ago, and no HTTP allowed at all while rendering
    AITokenOrder.objects.filter(pk=delivered.pk).update(key_usage_checked_at=timezone.now() - timedelta(minutes=5))

    def no_remote(*args, **kwargs):
        raise AssertionError("the fragment called OpenRouter while rendering")

    modules = (
        "orders.services.key_usage", "orders.services.fulfilment", "orders.services.reconciler", "openrouter.credits"
    )
    for module in modules:
        monkeypatch.setattr(f"{module}.get_openrouter_client", no_remote)
    client.force_login(delivered.user)
    url = reverse("orders:usage_fragment", args=[delivered.order_id])
    # when the page polls it three times
    for _ in range(3):
        with django_assert_max_num_queries(3):
            response = client.get(url)
        assert response.status_code == 200
        assert "refreshing" in response.content.decode()
    # then one refresh task was enqueued, none of the polls touched the network
    assert refreshes == [{"order_pk": delivered.pk}]
    assert len(responses.calls) == 0


def test_usage_refresh_is_asked_again_after_a_minute(client, delivered, refreshes):
    from django.core.cache import cache

    AITokenOrder.objects.filter(pk=delivered.pk).update(key_usage_checked_at=timezone.now() - timedelta(minutes=5))
    client.force_login(delivered.user)
    url = reverse("orders:usage_fragment", args=[delivered.order_id])
    client.get(url)
    cache.delete(f"usage-refresh:{delivered.pk}")  # the one-minute guard expired
    client.get(url)
    assert len(refreshes) == 2


def test_usage_fragment_refresh_updates_the_numbers_via_the_task(client, delivered, fake_openrouter):
    # eager tasks: the enqueued refresh runs right away against the fake account
    fake_openrouter.spend(delivered.key_hash, Decimal("0.90"))
    AITokenOrder.objects.filter(pk=delivered.pk).update(key_usage_checked_at=timezone.now() - timedelta(minutes=5))
    client.force_login(delivered.user)
    client.get(reverse("orders:usage_fragment", args=[delivered.order_id]))
    delivered.refresh_from_db()
    assert delivered.key_usage_usd == Decimal("0.90")
    assert delivered.key_limit_remaining_usd == Decimal("0.90")


def test_tokens_ready_email_links_to_the_order_and_never_carries_the_key(delivered, mailoutbox, settings):
    mailoutbox.clear()
    customer_mail_send(order=delivered, kind=DELIVERED)
    (mail,) = mailoutbox
    assert mail.to == [delivered.user.email]
    assert delivered.order_id in mail.subject
    url = settings.SITE_URL + reverse("orders:detail", args=[delivered.order_id])
    assert url in mail.body
    html = mail.alternatives[0][0]
    assert url in html
    for text in (mail.subject, mail.body, html):
        assert delivered.plaintext not in text
        assert not re.search(r"sk-or-v1-[0-9a-f]{8,}", text)
