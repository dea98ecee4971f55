"""`POST /orders/<order_id>/refund-address/`: owner only, hostile input changes nothing."""

from __future__ import annotations

import pytest

from orders.models import OrderEvent, OrderStatus, Refund, RefundStatus
from tests.factories import OrderFactory, StaffFactory, UserFactory
from tests.orders.refund_support import BTC_REFUND_ADDRESS

pytestmark = pytest.mark.django_db
S = OrderStatus


def url(order) -> str:
    return f"/orders/{order.order_id}/refund-address/"


@pytest.fixture
def order(user):
    return OrderFactory(user=user, status=S.NEEDS_REVIEW, reason="paid_late", payment_id="77",
                        address="bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


def test_owner_records_an_address_and_sees_it(user_client, order):
    response = user_client.post(url(order), {"address": f" {BTC_REFUND_ADDRESS} "})
    assert response.status_code == 302 and response["Location"].endswith(f"/orders/{order.order_id}/#refund")
    refund = Refund.objects.get(order=order)
    assert refund.address == BTC_REFUND_ADDRESS and refund.status == RefundStatus.REQUESTED
    assert OrderEvent.objects.filter(order=order, source="customer", message="Refund address recorded").exists()
    html = user_client.get(f"/orders/{order.order_id}/").content.decode()
    assert BTC_REFUND_ADDRESS in html and "Change refund address" in html
    data = user_client.get(f"/api/orders/{order.order_id}").json()
    assert data["refund"] == {"address": BTC_REFUND_ADDRESS, "status": "requested", "tx_ids": [],
                              "receiving_amount": None, "fee_amount": None, "refunded_at": None}


def test_the_address_can_change_until_the_refund_starts(user_client, order):
    user_client.post(url(order), {"address": BTC_REFUND_ADDRESS})
    user_client.post(url(order), {"address": "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"})
    assert Refund.objects.get(order=order).address == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    Refund.objects.filter(order=order).update(status=RefundStatus.SENDING, sending_since="2026-01-01T00:00:00Z")
    user_client.post(url(order), {"address": BTC_REFUND_ADDRESS})
    assert Refund.objects.get(order=order).address == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    html = user_client.get(f"/orders/{order.order_id}/").content.decode()
    assert "can no longer be changed" in html and "Refund on its way" in html
    assert "unknown" not in html.lower() and "sending (intent" not in html.lower()  # no internal states


HOSTILE = [
    "",
    "   ",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # checksum flipped
    "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",  # testnet
    "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",  # TRON for a Bitcoin order
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",  # the store's own deposit address
    "bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",  # mixed case
    "x" * 10_240,  # 10 kB
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("address", HOSTILE)
def test_hostile_addresses_change_nothing_and_show_a_message_by_the_field(user_client, order, address):
    response = user_client.post(url(order), {"address": address}, follow=True)
    assert response.status_code == 200
    assert not Refund.objects.filter(order=order).exists()
    assert not OrderEvent.objects.filter(order=order, message="Refund address recorded").exists()
    html = response.content.decode()
    assert 'id="refund-address-error"' in html and "<script>alert(1)</script>" not in html
    assert len(html) < 60_000  # the 10 kB input is not echoed back in full


def test_other_customers_and_staff_get_404_and_anonymous_must_log_in(client, order):
    client.force_login(UserFactory())
    assert client.post(url(order), {"address": BTC_REFUND_ADDRESS}).status_code == 404
    client.force_login(StaffFactory())
    assert client.post(url(order), {"address": BTC_REFUND_ADDRESS}).status_code == 404
    client.logout()
    assert client.post(url(order), {"address": BTC_REFUND_ADDRESS}).status_code == 302
    assert not Refund.objects.exists()


def test_get_is_not_allowed_and_unknown_orders_are_404(user_client, order):
    assert user_client.get(url(order)).status_code == 405
    assert user_client.post("/orders/TS-unknown/refund-address/", {"address": BTC_REFUND_ADDRESS}).status_code == 404
    assert user_client.post("/orders/" + "A" * 300 + "/refund-address/", {"address": "x"}).status_code == 404


@pytest.mark.parametrize("status", [S.PENDING, S.PAID, S.FULFILLING, S.DELIVERED, S.EXPIRED, S.REFUNDED])
def test_orders_that_are_not_refundable_do_not_ask_and_refuse(user_client, user, status):
    order = OrderFactory(user=user, status=status, payment_id="78")
    html = user_client.get(f"/orders/{order.order_id}/").content.decode()
    assert 'id="refund"' not in html
    user_client.post(url(order), {"address": BTC_REFUND_ADDRESS})
    assert not Refund.objects.exists()
    assert user_client.get(f"/api/orders/{order.order_id}").json()["refund"] is None


def test_order_page_asks_for_an_address_on_the_orders_network_without_javascript(user_client, order):
    html = user_client.get(f"/orders/{order.order_id}/").content.decode()
    assert f'<form method="post" action="/orders/{order.order_id}/refund-address/"' in html
    assert "Your Bitcoin address" in html and "network fee" in html


def test_order_page_query_count_stays_constant(user_client, order, django_assert_max_num_queries):
    user_client.post(url(order), {"address": BTC_REFUND_ADDRESS})
    with django_assert_max_num_queries(12):
        assert user_client.get(f"/orders/{order.order_id}/").status_code == 200
