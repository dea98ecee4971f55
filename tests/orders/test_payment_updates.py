"""Applying a gateway record to an order: every branch, idempotency, and what goes out after."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
import responses
from django.core import mail
from django.db import transaction
from django.utils import timezone

from orders.models import AITokenOrder, EventSource, OrderEvent, OrderReason, OrderStatus
from orders.services.payment_updates import (
    order_apply_payment,
    order_refresh_payment,
    payment_decide,
    payment_record_details,
)
from payments.client import KryptoExpressNetworkError
from tests.factories import OrderFactory
from tests.orders.checkout_support import GATEWAY_URL, mocked_gateway, paid_json, paid_record, record_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fulfil_delay")]
S = OrderStatus


@pytest.fixture
def staff_alerts():
    with mock.patch("orders.alerts.alert_staff") as alert:
        yield alert


@pytest.fixture
def gateway(settings):
    with mocked_gateway(settings, all_requests_fired=True) as rsps:
        yield rsps


def apply(order, record, capture, source=EventSource.POLLER):
    with capture(execute=True):
        return order_apply_payment(order=order, record=record, source=source)


def test_matching_paid_record_marks_order_paid_and_enqueues_fulfilment_once(
    django_capture_on_commit_callbacks, fulfil_delay
):
    # given
    order = OrderFactory()
    paid_at = timezone.now() - timedelta(minutes=1)
    # when
    changed = apply(order, paid_record(order, paid_at=paid_at), django_capture_on_commit_callbacks)
    # then
    order.refresh_from_db()
    assert changed is True
    assert order.status == S.PAID
    assert order.reason == ""
    assert abs(order.paid_at - paid_at) < timedelta(milliseconds=1)
    fulfil_delay.assert_called_once_with(order.pk)
    event = order.events.get()
    assert (event.from_status, event.to_status, event.source) == (S.PENDING, S.PAID, EventSource.POLLER)
    assert event.details["payment"]["fiat_amount"] == "2.16"
    assert event.details["payment"]["is_paid"] is True


def test_paid_order_emails_the_customer_a_link_not_a_secret(django_capture_on_commit_callbacks):
    order = OrderFactory(callback_secret_encrypted="gAAAA-encrypted-secret")
    apply(order, paid_record(order), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [order.user.email]
    assert order.order_id in message.subject
    assert f"/orders/{order.order_id}/" in message.body
    html = message.alternatives[0][0]
    assert f"/orders/{order.order_id}/" in html
    assert "gAAAA" not in message.body + html


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"fiatAmount": Decimal("1.94")}, OrderReason.WRONG_AMOUNT),
        ({"fiatAmount": Decimal("2.17")}, OrderReason.WRONG_AMOUNT),
        ({"cryptoAmount": Decimal("0.00002004")}, OrderReason.WRONG_AMOUNT),
        ({"cryptoCurrency": "LTC"}, OrderReason.WRONG_CURRENCY),
        ({"fiatCurrency": "EUR"}, OrderReason.WRONG_CURRENCY),
        ({"paymentType": "DEPOSIT"}, OrderReason.WRONG_TYPE),
        ({"hash": "f" * 64}, OrderReason.WRONG_HASH),
    ],
)
def test_paid_but_mismatched_record_goes_to_review_never_paid(
    overrides, reason, django_capture_on_commit_callbacks, fulfil_delay, staff_alerts
):
    # given
    order = OrderFactory()
    # when
    changed = apply(order, paid_record(order, **overrides), django_capture_on_commit_callbacks)
    # then
    order.refresh_from_db()
    assert changed is True
    assert order.status == S.NEEDS_REVIEW
    assert order.reason == reason
    assert order.paid_at is not None
    fulfil_delay.assert_not_called()
    staff_alerts.assert_called_once()
    assert reason in staff_alerts.call_args.kwargs["kind"]
    assert order.order_id in staff_alerts.call_args.kwargs["subject"]
    # no "payment received" email for a payment we can't accept: the customer hears it is under review
    assert [m.subject for m in mail.outbox] == [f"Order {order.order_id} is being checked by our staff"]
    event = order.events.get()
    assert event.to_status == S.NEEDS_REVIEW and event.details["reason"] == reason


def test_payment_after_expiry_is_paid_late(django_capture_on_commit_callbacks, fulfil_delay, staff_alerts):
    order = OrderFactory(expires_at=timezone.now() - timedelta(minutes=10))
    record = paid_record(order, paid_at=timezone.now() - timedelta(minutes=2))
    assert apply(order, record, django_capture_on_commit_callbacks) is True
    order.refresh_from_db()
    assert (order.status, order.reason) == (S.NEEDS_REVIEW, OrderReason.PAID_LATE)
    fulfil_delay.assert_not_called()
    staff_alerts.assert_called_once()


def test_gateway_shortened_expiry_counts_for_lateness(django_capture_on_commit_callbacks, fulfil_delay, staff_alerts):
    # The gateway's own record says the window closed before the money arrived.
    order = OrderFactory()
    now = timezone.now()
    record = paid_record(order, paid_at=now, expireDatetime=int((now - timedelta(minutes=5)).timestamp() * 1000))
    apply(order, record, django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert (order.status, order.reason) == (S.NEEDS_REVIEW, OrderReason.PAID_LATE)
    fulfil_delay.assert_not_called()


def test_payment_just_before_expiry_is_on_time(django_capture_on_commit_callbacks, fulfil_delay):
    expires = timezone.now() - timedelta(seconds=30)
    order = OrderFactory(expires_at=expires)
    apply(order, paid_record(order, paid_at=expires - timedelta(seconds=1)), django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert order.status == S.PAID
    fulfil_delay.assert_called_once_with(order.pk)


def test_unpaid_before_expiry_changes_nothing_and_records_nothing(django_capture_on_commit_callbacks):
    order = OrderFactory()
    assert apply(order, record_for(order), django_capture_on_commit_callbacks) is False
    order.refresh_from_db()
    assert order.status == S.PENDING
    assert not OrderEvent.objects.exists()
    assert mail.outbox == []


def test_unpaid_past_expiry_expires_and_emails(django_capture_on_commit_callbacks, fulfil_delay):
    order = OrderFactory(expires_at=timezone.now() - timedelta(seconds=1))
    assert apply(order, record_for(order), django_capture_on_commit_callbacks) is True
    order.refresh_from_db()
    assert order.status == S.EXPIRED
    fulfil_delay.assert_not_called()
    assert len(mail.outbox) == 1
    assert "expired" in mail.outbox[0].subject
    assert order.order_id in mail.outbox[0].body


def test_gateway_expiring_early_expires_the_order_and_updates_its_expiry(django_capture_on_commit_callbacks):
    order = OrderFactory()  # our copy says two hours left
    gateway_expiry = timezone.now() - timedelta(seconds=5)
    record = record_for(order, expireDatetime=int(gateway_expiry.timestamp() * 1000))
    apply(order, record, django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert order.status == S.EXPIRED
    assert abs(order.expires_at - gateway_expiry) < timedelta(milliseconds=2)


def test_expired_order_found_paid_goes_to_review(django_capture_on_commit_callbacks, fulfil_delay, staff_alerts):
    order = OrderFactory(status=S.EXPIRED, expires_at=timezone.now() - timedelta(hours=1))
    assert apply(order, paid_record(order), django_capture_on_commit_callbacks) is True
    order.refresh_from_db()
    assert (order.status, order.reason) == (S.NEEDS_REVIEW, OrderReason.PAID_LATE)
    fulfil_delay.assert_not_called()
    staff_alerts.assert_called_once()


def test_expired_order_still_unpaid_changes_nothing(django_capture_on_commit_callbacks):
    order = OrderFactory(status=S.EXPIRED, expires_at=timezone.now() - timedelta(hours=1))
    assert apply(order, record_for(order), django_capture_on_commit_callbacks) is False
    assert not OrderEvent.objects.exists()


@pytest.mark.parametrize("status", [S.PAID, S.FULFILLING, S.DELIVERED, S.FAILED, S.NEEDS_REVIEW, S.REFUNDED])
def test_orders_past_payment_ignore_further_records(status, django_capture_on_commit_callbacks, fulfil_delay):
    order = OrderFactory(status=status, paid_at=timezone.now())
    for record in (paid_record(order), paid_record(order, fiatAmount=Decimal("1.00")), record_for(order)):
        assert apply(order, record, django_capture_on_commit_callbacks) is False
    order.refresh_from_db()
    assert order.status == status
    assert not OrderEvent.objects.exists()
    fulfil_delay.assert_not_called()


def test_applying_the_same_paid_record_twice_changes_once(django_capture_on_commit_callbacks, fulfil_delay):
    order = OrderFactory()
    record = paid_record(order)
    assert apply(order, record, django_capture_on_commit_callbacks) is True
    stale_copy = AITokenOrder.objects.get(pk=order.pk)
    stale_copy.status = S.PENDING  # a second path that read the order before the first wrote
    assert apply(stale_copy, record, django_capture_on_commit_callbacks) is False
    assert OrderEvent.objects.filter(to_status=S.PAID).count() == 1
    fulfil_delay.assert_called_once_with(order.pk)
    assert len(mail.outbox) == 1


def test_loser_of_a_race_re_decides_on_the_fresh_status(django_capture_on_commit_callbacks, fulfil_delay, staff_alerts):
    # given: this caller still believes the order is pending, but another path expired it
    order = OrderFactory(expires_at=timezone.now() - timedelta(minutes=1))
    AITokenOrder.objects.filter(pk=order.pk).update(status=S.EXPIRED)
    # when: it brings a payment made after expiry
    apply(order, paid_record(order), django_capture_on_commit_callbacks)
    # then: the expired order is sent to review, never straight to paid
    order.refresh_from_db()
    assert (order.status, order.reason) == (S.NEEDS_REVIEW, OrderReason.PAID_LATE)
    fulfil_delay.assert_not_called()


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_enqueues_and_emails_nothing(fulfil_delay):
    order = OrderFactory()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        assert order_apply_payment(order=order, record=paid_record(order), source=EventSource.CALLBACK) is True
        raise Boom
    order.refresh_from_db()
    assert order.status == S.PENDING
    assert not OrderEvent.objects.exists()
    fulfil_delay.assert_not_called()
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_committed_paid_transition_enqueues_fulfilment(fulfil_delay):
    order = OrderFactory()
    order_apply_payment(order=order, record=paid_record(order), source=EventSource.CALLBACK)
    fulfil_delay.assert_called_once_with(order.pk)


def test_refresh_reads_the_gateway_and_applies(gateway, django_capture_on_commit_callbacks, fulfil_delay):
    order = OrderFactory()
    gateway.get(
        GATEWAY_URL + "/payment",
        match=[responses.matchers.query_param_matcher({"hash": order.payment_hash})],
        body=json.dumps(paid_json(order), default=str),
        content_type="application/json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert order_refresh_payment(order=order, source=EventSource.CALLBACK) is True
    order.refresh_from_db()
    assert order.status == S.PAID
    assert order.events.get().source == EventSource.CALLBACK
    fulfil_delay.assert_called_once_with(order.pk)


def test_gateway_timeout_leaves_the_order_pending(gateway):
    import requests

    order = OrderFactory(expires_at=timezone.now() - timedelta(minutes=1))  # even an overdue one
    gateway.get(GATEWAY_URL + "/payment", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(KryptoExpressNetworkError):
        order_refresh_payment(order=order, source=EventSource.POLLER)
    order.refresh_from_db()
    assert order.status == S.PENDING
    assert not OrderEvent.objects.exists()


def test_refresh_without_a_payment_does_nothing(gateway):
    order = OrderFactory(payment_hash=None)
    assert order_refresh_payment(order=order, source=EventSource.POLLER) is False
    assert len(gateway.calls) == 0


def test_decision_is_pure_and_uses_the_stricter_expiry():
    order = OrderFactory.build(expires_at=timezone.now() + timedelta(hours=1))
    now = timezone.now()
    record = record_for(order, expireDatetime=int((now - timedelta(seconds=1)).timestamp() * 1000))
    decision = payment_decide(order=order, status=S.PENDING, record=record, now=now)
    assert decision is not None and decision.to_status == S.EXPIRED
    assert payment_decide(order=order, status=S.PENDING, record=record_for(order), now=now) is None


def test_record_details_are_json_safe_and_secret_free():
    order = OrderFactory.build(payment_id="77")
    details = payment_record_details(paid_record(order))
    text = json.dumps(details)  # would raise on Decimal/datetime
    assert details["fiat_amount"] == "2.16"
    assert details["crypto_amount"] == "0.00002227"
    assert "secret" not in text.lower()
    assert "callback" not in text.lower()
