"""What the order pages and the order API say about top-ups (database only, constant queries)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import AITokenOrder, OrderStatus
from storefront.encryption import decrypt
from tests.factories import OrderFactory, StaffFactory
from tests.orders.fulfilment_fakes import FakeOpenRouter, fake_openrouter_account  # noqa: F401
from tests.orders.top_up_support import delivered_key_order, paid_top_up

pytestmark = pytest.mark.django_db


def _detail(client, order):
    return client.get(reverse("orders:detail", args=[order.order_id])).content.decode()


def test_the_keys_order_shows_total_limit_usage_every_top_up_and_the_add_link(user_client, user, fake_openrouter):
    from orders.services.fulfilment import order_fulfil

    key_order = delivered_key_order(fake_openrouter, user=user)
    done = paid_top_up(key_order)
    order_fulfil(order_pk=done.pk)
    waiting = OrderFactory(user=user, status=OrderStatus.PENDING, top_up_of=key_order, token_count=400000,
                           base_usd_cost=Decimal("3.60"), markup_amount=Decimal("0.72"),
                           total_usd_cost=Decimal("4.32"))
    html = _detail(user_client, key_order)
    assert "Key limit and top-ups" in html
    assert 'id="key-total-limit"><strong>$3.60</strong>' in html
    assert done.order_id in html and waiting.order_id in html
    assert "Added" in html and "Awaiting payment" in html
    assert "Add tokens to this key" in html
    assert f"top_up_of={key_order.order_id}" in html
    # the usage box counts the raised limit
    assert "Limit $3.60" in html or "<dd>$3.60</dd>" in html


def test_a_delivered_top_up_says_what_it_added_to_which_key(user_client, user, fake_openrouter):
    from orders.services.fulfilment import order_fulfil

    key_order = delivered_key_order(fake_openrouter, user=user)
    order = paid_top_up(key_order)
    order_fulfil(order_pk=order.pk)
    html = _detail(user_client, order)
    last4 = decrypt(key_order.key_encrypted)[-4:]
    assert f"Added <strong>200,000 tokens / $1.80</strong> to key <code class=\"mono\">sk-or-…{last4}</code>" in html
    assert "Add tokens to this key" not in html
    assert decrypt(key_order.key_encrypted) not in html  # never the key itself


def test_no_add_link_for_a_disabled_key_or_for_staff(user_client, client, user, fake_openrouter):
    key_order = delivered_key_order(fake_openrouter, user=user)
    client.force_login(StaffFactory())
    assert "Add tokens to this key" not in _detail(client, key_order)
    last4 = decrypt(key_order.key_encrypted)[-4:]
    assert f"sk-or-…{last4}" not in _detail(client, paid_top_up(key_order))  # staff never see key digits
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_disabled=True)
    assert "Add tokens to this key" not in _detail(user_client, key_order)


def test_an_ordinary_order_page_has_no_top_up_box(user_client, user):
    order = OrderFactory(user=user, status=OrderStatus.PENDING)
    assert "topup-heading" not in _detail(user_client, order)


def test_order_page_queries_do_not_grow_with_top_ups(user_client, user, django_assert_max_num_queries):
    key_order = delivered_key_order(FakeOpenRouter(), user=user)
    OrderFactory(user=user, status=OrderStatus.DELIVERED, top_up_of=key_order)
    with django_assert_max_num_queries(12) as few:
        _detail(user_client, key_order)
    baseline = len(few.captured_queries)
    for _ in range(10):
        OrderFactory(user=user, status=OrderStatus.DELIVERED, top_up_of=key_order)
    with django_assert_max_num_queries(baseline):
        _detail(user_client, key_order)


def test_the_api_shows_top_up_of_and_the_keys_limit(user_client, user, fake_openrouter):
    from orders.services.fulfilment import order_fulfil

    key_order = delivered_key_order(fake_openrouter, user=user)
    order = paid_top_up(key_order)
    order_fulfil(order_pk=order.pk)
    ordinary = OrderFactory(user=user)

    key_json = user_client.get(reverse("orders:api_detail", args=[key_order.order_id])).json()
    top_up_json = user_client.get(reverse("orders:api_detail", args=[order.order_id])).json()
    ordinary_json = user_client.get(reverse("orders:api_detail", args=[ordinary.order_id])).json()
    assert key_json["top_up_of"] is None and key_json["key_limit_usd"] == "3.60"
    assert top_up_json["top_up_of"] == key_order.order_id and "key_limit_usd" not in top_up_json
    assert ordinary_json["top_up_of"] is None and "key_limit_usd" not in ordinary_json
