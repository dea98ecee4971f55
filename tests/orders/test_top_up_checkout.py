# ruff: noqa: F811 - pytest fixtures imported from the checkout suite are used as parameters
"""Checkout of a top-up: the same flow as a new key, refused before anything is written or sent."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import AITokenOrder, OrderStatus
from orders.services.capacity import promised_usd
from tests.factories import OrderFactory, UserFactory
from tests.orders.fulfilment_fakes import FakeOpenRouter
from tests.orders.test_checkout import (  # noqa: F401 - fixtures
    SONNET,
    capacity_ok,
    form_data,
    gateway,
    gateway_creates,
)
from tests.orders.top_up_support import delivered_key_order

pytestmark = pytest.mark.django_db
CREATE_URL = reverse("orders:list")
NEW_URL = reverse("orders:new")


@pytest.fixture
def key_order(user):
    return delivered_key_order(FakeOpenRouter(), user=user)


def test_checkout_places_a_top_up_of_the_customers_key(user_client, sonnet, gateway, key_order):
    sent = gateway_creates(gateway)
    response = user_client.post(CREATE_URL, form_data(top_up_of=key_order.order_id))
    assert response.status_code == 302
    order = AITokenOrder.objects.exclude(pk=key_order.pk).get()
    assert order.top_up_of_id == key_order.pk
    assert order.status == OrderStatus.PENDING and order.top_up_target_limit_usd is None
    # the same price and payment as any order
    assert order.total_usd_cost == Decimal("2.16") and order.base_usd_cost == Decimal("1.80")
    assert len(sent) == 1 and sent[0]["paymentType"] == "PAYMENT"


def test_the_quote_rules_apply_to_a_top_up(user_client, sonnet, gateway, key_order):
    sent = gateway_creates(gateway)
    # over the cap
    response = user_client.post(CREATE_URL, form_data(tokens="5000000", seen_total="54.00",
                                                      top_up_of=key_order.order_id))
    assert response.status_code == 400
    # the price changed: confirmation page keeps the top-up
    response = user_client.post(CREATE_URL, form_data(seen_total="2.00", top_up_of=key_order.order_id))
    html = response.content.decode()
    assert "The price has changed" in html
    assert f'name="top_up_of" value="{key_order.order_id}"' in html
    assert sent == [] and AITokenOrder.objects.count() == 1


def _refused(user_client, gateway, top_up_of, expected: str):
    sent = gateway_creates(gateway)
    before = AITokenOrder.objects.count()
    response = user_client.post(CREATE_URL, form_data(top_up_of=top_up_of))
    assert response.status_code == 400
    html = response.content.decode()
    assert expected in html.replace("&#x27;", "'")
    assert AITokenOrder.objects.count() == before, "no order row"
    assert sent == [], "no gateway call"
    assert 'name="top_up_of"' not in html  # a refused key is not carried along


def test_a_disabled_key_is_refused(user_client, sonnet, gateway, key_order):
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_disabled=True)
    _refused(user_client, gateway, key_order.order_id, "That key is disabled")


def test_an_expired_key_is_refused(user_client, sonnet, gateway, key_order):
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_expires_at=timezone.now() - timedelta(minutes=1))
    _refused(user_client, gateway, key_order.order_id, "That key has expired")


def test_another_customers_key_is_refused_like_an_unknown_one(user_client, sonnet, gateway):
    theirs = delivered_key_order(FakeOpenRouter(), user=UserFactory())
    _refused(user_client, gateway, theirs.order_id, "We couldn't find that key among your orders")


@pytest.mark.parametrize("status", [s for s in OrderStatus.values if s != OrderStatus.DELIVERED])
def test_an_undelivered_order_is_refused(user_client, user, sonnet, gateway, status):
    order = OrderFactory(user=user, status=status)
    _refused(user_client, gateway, order.order_id, "hasn't been delivered yet")


def test_a_top_up_of_a_top_up_is_refused_and_names_the_keys_order(user_client, user, sonnet, gateway, key_order):
    earlier = OrderFactory(user=user, status=OrderStatus.DELIVERED, top_up_of=key_order)
    _refused(user_client, gateway, earlier.order_id, f"use the order that delivered the key ({key_order.order_id})")


@pytest.mark.parametrize(
    "hostile",
    [
        "TS-doesnotexist0000",
        "' OR 1=1 --",
        "TS-" + "A" * 47,
        "x" * 5000,
        "TS-\u0000abcdefgh",
        "TS-<script>alert(1)</script>",
        "１２３",
        " ",
        "42",
    ],
)
def test_hostile_top_up_of_values_change_nothing(user_client, sonnet, gateway, key_order, hostile):
    sent = gateway_creates(gateway)
    response = user_client.post(CREATE_URL, form_data(top_up_of=hostile))
    assert response.status_code == 400 if hostile.strip() else response.status_code == 302
    if hostile.strip():
        assert AITokenOrder.objects.count() == 1 and sent == []
        assert "<script>alert(1)</script>" not in response.content.decode()


def test_a_list_of_top_up_of_values_uses_one_and_changes_nothing_when_it_is_bad(user_client, sonnet, gateway,
                                                                               key_order):
    sent = gateway_creates(gateway)
    data = form_data()
    data["top_up_of"] = ["nonsense", key_order.order_id]  # QueryDict takes the last; validated as usual
    response = user_client.post(CREATE_URL, data)
    assert response.status_code == 302 and len(sent) == 1
    assert AITokenOrder.objects.filter(top_up_of=key_order).count() == 1


def test_anonymous_cannot_top_up(client, sonnet, gateway, key_order):
    sent = gateway_creates(gateway)
    response = client.post(CREATE_URL, form_data(top_up_of=key_order.order_id))
    assert response.status_code == 302 and "login" in response["Location"]
    assert AITokenOrder.objects.count() == 1 and sent == []


# --- catalogue → review → checkout, without JavaScript ------------------------------------------


def test_the_top_up_travels_from_the_catalogue_to_the_review_page(user_client, sonnet, key_order):
    from tests.factories import TokenPackageFactory

    TokenPackageFactory(name="Starter", share="0.05")
    html = user_client.get(reverse("orders:catalogue"), {"model": SONNET, "top_up_of": key_order.order_id}).content
    html = html.decode()
    assert "Adding tokens to your key" in html and "sk-or-…" in html
    assert f'name="top_up_of" value="{key_order.order_id}"' in html  # the model picker and custom form
    assert f"top_up_of={key_order.order_id}" in html  # package links
    order_link = re.search(r'href="(/orders/new/\?[^"]+)"', html).group(1).replace("&amp;", "&")
    review = user_client.get(order_link).content.decode()
    assert f'name="top_up_of" value="{key_order.order_id}"' in review
    assert "Adding tokens to your key" in review


def test_the_custom_amount_keeps_the_top_up(user_client, sonnet, key_order):
    html = user_client.get(
        reverse("orders:catalogue"), {"model": SONNET, "tokens": "200000", "top_up_of": key_order.order_id}
    ).content.decode()
    assert f"tokens=200000&amp;top_up_of={key_order.order_id}" in html


def test_the_review_page_refuses_a_key_that_cannot_take_tokens(user_client, sonnet, key_order):
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_disabled=True)
    response = user_client.get(NEW_URL, {"model": SONNET, "tokens": "200000", "top_up_of": key_order.order_id})
    assert response.status_code == 400
    html = response.content.decode()
    assert "That key is disabled" in html and "Place order" not in html


def test_the_catalogue_ignores_a_bad_top_up_of_with_a_message(user_client, sonnet):
    html = user_client.get(reverse("orders:catalogue"), {"top_up_of": "TS-nope<b>"}).content.decode()
    assert "We couldn&#x27;t find that key" in html and 'name="top_up_of"' not in html


# --- capacity -----------------------------------------------------------------------------------


def test_a_pending_top_up_is_promised_like_a_pending_order_and_a_delivered_one_is_not_counted_twice(user,
                                                                                                  key_order):
    before = promised_usd()
    top_up = OrderFactory(user=user, status=OrderStatus.PENDING, top_up_of=key_order)
    assert promised_usd().total == before.total + top_up.base_usd_cost
    # delivered: the tokens now live in the key's (raised) remaining limit
    AITokenOrder.objects.filter(pk=top_up.pk).update(status=OrderStatus.DELIVERED)
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_limit_usd=Decimal("3.60"),
                                                         key_limit_remaining_usd=Decimal("3.60"))
    assert promised_usd().total == Decimal("3.60")


def test_idempotent_resubmission_of_a_top_up_makes_one_order(user_client, sonnet, gateway, key_order):
    sent = gateway_creates(gateway)
    data = form_data(top_up_of=key_order.order_id, idempotency_key=str(uuid.uuid4()))
    user_client.post(CREATE_URL, data)
    user_client.post(CREATE_URL, data)
    assert AITokenOrder.objects.filter(top_up_of=key_order).count() == 1 and len(sent) == 1
