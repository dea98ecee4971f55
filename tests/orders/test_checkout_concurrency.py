"""Double-submit races on PostgreSQL: one order and one gateway payment, whatever the timing."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from unittest import mock

import pytest
import responses
import simplejson
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import AITokenOrder
from orders.services.placing import CheckoutUnavailable, OrderRejected, order_place
from tests.concurrency import run_together
from tests.conftest import needs_postgres
from tests.factories import UserFactory
from tests.orders.checkout_support import GATEWAY_URL, ms

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]
SONNET = "anthropic/claude-3-sonnet"


@pytest.fixture(autouse=True)
def capacity_ok():
    with mock.patch("orders.services.placing.ensure_capacity", return_value=None):
        yield


@pytest.fixture
def slow_gateway(settings):
    """`POST /payment` takes a while, so a second submission arrives while the first is in flight."""
    settings.KRYPTO_EXPRESS_API_URL = GATEWAY_URL
    created: list[dict] = []
    state = {"status": 201}

    def reply(request):
        payload = json.loads(request.body, parse_float=Decimal)
        created.append(payload)
        time.sleep(0.3)
        if state["status"] != 201:
            return state["status"], {"Content-Type": "application/json"}, '{"message": "down"}'
        now = timezone.now()
        record = {
            "id": 900 + len(created), "paymentType": "PAYMENT", "fiatCurrency": "USD",
            "fiatAmount": payload["fiatAmount"],
            "cryptoAmount": Decimal("0.00002227"), "cryptoCurrency": payload["cryptoCurrency"],
            "expireDatetime": ms(now + timezone.timedelta(hours=2)), "createDatetime": ms(now), "paidAt": None,
            "address": "bc1qrace", "isPaid": False, "isWithdrawn": False, "hash": uuid.uuid4().hex * 2,
            "callbackUrl": payload["callbackUrl"],
        }
        return 201, {"Content-Type": "application/json"}, simplejson.dumps(record, use_decimal=True)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, GATEWAY_URL + "/payment", callback=reply)
        yield created, state


def place(user, key, **overrides):
    kwargs = dict(user=user, model_id=SONNET, token_count=200000, crypto_type="BTC", seen_total=Decimal("2.16"),
                  idempotency_key=key)
    kwargs.update(overrides)
    return lambda: order_place(**kwargs)


def test_double_click_creates_one_order_and_one_gateway_payment(slow_gateway, user, sonnet):
    created, _ = slow_gateway
    key = uuid.uuid4()
    results, errors = run_together(place(user, key), place(user, key), place(user, key))
    assert errors == []
    assert AITokenOrder.objects.count() == 1
    assert len(created) == 1
    order = AITokenOrder.objects.get()
    assert {r.order_id for r in results} == {order.order_id}
    assert all(r.payment_hash == order.payment_hash for r in results)


def test_double_submit_through_the_view_redirects_both_to_one_order(slow_gateway, user, sonnet):
    created, _ = slow_gateway
    data = {"model": SONNET, "tokens": "200000", "crypto": "BTC", "seen_total": "2.16",
            "idempotency_key": str(uuid.uuid4())}

    def submit():
        client = Client()
        client.force_login(user)
        return client.post(reverse("orders:list"), data)

    results, errors = run_together(submit, submit)
    assert errors == []
    assert [r.status_code for r in results] == [302, 302]
    assert results[0]["Location"] == results[1]["Location"]
    assert AITokenOrder.objects.count() == 1 and len(created) == 1


def test_when_the_gateway_fails_a_waiting_duplicate_is_told_too(slow_gateway, user, sonnet):
    created, state = slow_gateway
    state["status"] = 503
    key = uuid.uuid4()
    results, errors = run_together(place(user, key), place(user, key))
    assert results == []
    assert len(errors) == 2 and all(isinstance(e, CheckoutUnavailable) for e in errors)
    assert not AITokenOrder.objects.exists()
    assert len(created) == 1


def test_unpaid_limit_cannot_be_raced_past(slow_gateway, user, sonnet, settings):
    settings.MAX_UNPAID_ORDERS_PER_USER = 1
    created, _ = slow_gateway
    results, errors = run_together(place(user, uuid.uuid4()), place(user, uuid.uuid4()), place(user, uuid.uuid4()))
    assert len(results) == 1
    assert len(errors) == 2 and all(isinstance(e, OrderRejected) for e in errors)
    assert AITokenOrder.objects.count() == 1 and len(created) == 1


def test_two_checkouts_cannot_both_pass_on_the_last_dollar_of_headroom(slow_gateway, sonnet):
    # given headroom for exactly one 200,000-token Sonnet order (base $1.80), and a balance read
    # slow enough that both checkouts are inside the capacity check at the same time
    from orders.services import capacity

    def slow_balance():
        time.sleep(0.3)
        return Decimal("1.80")

    alice, bob = UserFactory(), UserFactory()
    with mock.patch.object(capacity, "_read_balance", side_effect=slow_balance), \
            mock.patch("orders.services.placing.ensure_capacity", capacity.ensure_capacity), \
            mock.patch("orders.services.capacity.alert_staff"):
        # when both check out at once
        results, errors = run_together(place(alice, uuid.uuid4()), place(bob, uuid.uuid4()))
    # then exactly one order was reserved (and one gateway payment made); the other was refused
    assert len(results) == 1, (results, errors)
    assert len(errors) == 1 and isinstance(errors[0], CheckoutUnavailable)
    assert AITokenOrder.objects.count() == 1
    created, _ = slow_gateway
    assert len(created) == 1
