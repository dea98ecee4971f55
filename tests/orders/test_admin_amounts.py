"""Staff see counts on the index, times to the second, and expected vs received amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import EventSource, OrderEvent, OrderReason, OrderStatus, Refund, RefundStatus
from orders.staff_amounts import order_received_payment, staff_amount
from tests.orders.staff_fixtures import make_order

pytestmark = pytest.mark.django_db
S = OrderStatus


def test_admin_index_links_carry_the_counts(staff_client):
    for _ in range(2):
        make_order(status=S.NEEDS_REVIEW, reason=OrderReason.WRONG_AMOUNT)
    make_order(status=S.FAILED, reason=OrderReason.OUT_OF_CREDITS)
    make_order(status=S.DELIVERED)
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert "Orders needing review (2)" in html and "Failed orders (1)" in html


def test_status_is_the_second_column_of_the_order_list(staff_client):
    make_order(status=S.PENDING)
    html = staff_client.get(reverse("admin:orders_aitokenorder_changelist")).content.decode()
    headers = html.split("<thead>")[1].split("</thead>")[0]
    assert headers.index("column-order_id") < headers.index("column-status_with_reason") < headers.index(
        "column-customer_email"
    )


def test_order_list_shows_times_to_the_second(staff_client):
    order = make_order(status=S.PENDING)
    html = staff_client.get(reverse("admin:orders_aitokenorder_changelist")).content.decode()
    assert order.created_at.strftime("%Y-%m-%d %H:%M:%S") in html


@pytest.mark.parametrize(
    ("amount", "code", "shown"),
    [
        (Decimal("0.000023000000000000"), "BTC", "0.00002300 BTC"),
        (Decimal("10.800000000000000000"), "USDT_TRC20", "10.800000 USDT"),
        (Decimal("0.000000001"), "BTC", "0.000000001 BTC"),  # more places than the coin has: shown in full
        (None, "BTC", "—"),
    ],
)
def test_staff_amounts_are_trimmed_to_the_currency_precision(amount, code, shown):
    assert staff_amount(amount, code) == shown


def _paid_event(order, crypto_amount: str):
    OrderEvent.objects.create(
        order=order, source=EventSource.CALLBACK, from_status=S.PENDING, to_status=S.NEEDS_REVIEW,
        details={"payment": {"is_paid": True, "crypto_amount": crypto_amount, "crypto_currency": order.crypto_type,
                             "fiat_amount": "1.94", "fiat_currency": "USD", "paid_at": "2026-11-29T10:00:05+00:00"}},
    )


def test_order_page_and_approve_form_show_expected_and_received(staff_client):
    order = make_order(status=S.NEEDS_REVIEW, reason=OrderReason.WRONG_AMOUNT)
    _paid_event(order, "0.00002004")
    change = staff_client.get(reverse("admin:orders_aitokenorder_change", args=[order.pk])).content.decode()
    expected = staff_amount(order.crypto_amount, order.crypto_type)
    assert expected in change and "0.00002004 BTC ($1.94 USD)" in change
    assert "000000000" not in change.split("Expected amount")[1][:300]  # no 18-decimal tails
    approve = staff_client.get(
        reverse("admin:orders_aitokenorder_staff_action", args=[order.pk, "approve-payment"])
    ).content.decode()
    assert f"<dt>Expected</dt><dd>{expected}</dd>" in approve
    assert "0.00002004 BTC ($1.94 USD) at 2026-11-29T10:00:05+00:00" in approve


def test_received_says_nothing_when_nothing_arrived(staff_client):
    order = make_order(status=S.PENDING)
    change = staff_client.get(reverse("admin:orders_aitokenorder_change", args=[order.pk])).content.decode()
    assert "nothing received yet" in change


def test_a_garbled_gateway_record_is_skipped_not_crashed_on(staff_client):
    order = make_order(status=S.NEEDS_REVIEW, reason=OrderReason.WRONG_AMOUNT)
    _paid_event(order, "not-a-number")
    change = staff_client.get(reverse("admin:orders_aitokenorder_change", args=[order.pk]))
    assert change.status_code == 200 and "nothing received yet" in change.content.decode()


def _timeline(order) -> list[OrderEvent]:
    return list(order.events.order_by("created_at", "id"))


def test_received_from_the_loaded_timeline_matches_the_query():
    """The order page hands its timeline to `order_received_payment`: the same answer, no query."""
    order = make_order(status=S.NEEDS_REVIEW, reason=OrderReason.WRONG_AMOUNT)
    assert order_received_payment(order=order, timeline=_timeline(order)) is None
    _paid_event(order, "0.00002004")
    _paid_event(order, "not-a-number")  # newer but garbled: skipped by both
    OrderEvent.objects.create(order=order, source=EventSource.POLLER, details={"payment": {"is_paid": False}})
    OrderEvent.objects.create(order=order, source=EventSource.STAFF, message="a note", details={"attempt": 1})
    queried = order_received_payment(order=order)
    assert queried is not None and queried.crypto_amount == "0.00002004 BTC"
    assert order_received_payment(order=order, timeline=_timeline(order)) == queried


def test_order_page_with_a_refund_and_a_long_timeline_stays_within_its_queries(
    staff_client, django_assert_max_num_queries
):
    order = make_order(status=S.REFUNDED)
    _paid_event(order, "0.00002004")
    for i in range(20):
        OrderEvent.objects.create(order=order, source=EventSource.STAFF, message=f"note {i}")
    Refund.objects.create(order=order, address="bc1qrefundaddress", network="BTC", status=RefundStatus.REQUESTED)
    url = reverse("admin:orders_aitokenorder_change", args=[order.pk])
    staff_client.get(url)  # the session and the signed-in user are remembered after the first page
    # the order, its refund and its timeline (which the received amount reads too), and the
    # sandbox account's add permission in the admin's sidebar
    with django_assert_max_num_queries(4):
        page = staff_client.get(url)
    html = page.content.decode()
    assert "0.00002004 BTC ($1.94 USD)" in html and "note 19" in html
    assert "Refund to the customer" in html and "bc1qrefundaddress" in html and "field-status" in html
    assert "TOTAL_FORMS" not in html  # a read-only page: no formset management inputs to post
