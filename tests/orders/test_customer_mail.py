"""Which mail each status change sends, what it says, and what it never says."""

from __future__ import annotations

import re
import smtplib
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from orders import customer_mail
from orders.models import OrderReason, OrderStatus
from orders.services import staff_actions
from orders.services.transitions import order_transition
from orders.tasks.mail import send_customer_mail
from storefront.encryption import encrypt
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
S = OrderStatus
SECRET_KEY_TEXT = "sk-or-v1-" + "ab" * 32


@pytest.fixture(autouse=True)
def _no_fulfilment():
    """Entering `paid` would start a fulfilment; these tests are about mail only."""
    with mock.patch("orders.tasks.fulfil_order.delay") as delay:
        yield delay


def customer_mails(order):
    return [m for m in mail.outbox if m.to == [order.user.email]]


def move(order, to_status, capture, **kwargs):
    with capture(execute=True):
        assert order_transition(order=order, from_status=order.status, to_status=to_status, source="staff", **kwargs)


@pytest.mark.parametrize(
    ("start", "to_status", "extra", "subject"),
    [
        (S.PENDING, S.PAID, {}, "Payment received — order {id}"),
        (S.FULFILLING, S.DELIVERED, {}, "Your tokens are ready — order {id}"),
        (S.PENDING, S.EXPIRED, {}, "Order {id} expired unpaid"),
        (S.PENDING, S.NEEDS_REVIEW, {"reason": OrderReason.WRONG_AMOUNT}, "Order {id} is being checked by our staff"),
        (S.FULFILLING, S.FAILED, {"reason": OrderReason.OUT_OF_CREDITS}, "Order {id} is delayed — we're on it"),
        (S.NEEDS_REVIEW, S.PAID, {}, "Payment received — order {id}"),
        (S.FAILED, S.REFUNDED, {"updates": {"refund_reference": "tx-9f8e7d"}}, "Order {id} was refunded"),
    ],
)
def test_each_customer_facing_transition_sends_its_one_mail(
    start, to_status, extra, subject, django_capture_on_commit_callbacks
):
    order = OrderFactory(status=start, key_encrypted=encrypt(SECRET_KEY_TEXT))
    move(order, to_status, django_capture_on_commit_callbacks, **extra)
    (message,) = customer_mails(order)
    assert message.subject == subject.format(id=order.order_id)
    assert message.to == [order.user.email]
    html = message.alternatives[0][0]
    order_url = reverse("orders:detail", args=[order.order_id])
    assert order_url in message.body and order_url in html
    for text in (message.subject, message.body, html):
        assert SECRET_KEY_TEXT not in text and not re.search(r"sk-or-v1-[0-9a-f]{8,}", text)


@pytest.mark.parametrize(
    ("start", "to_status"),
    [(S.PAID, S.FULFILLING), (S.FULFILLING, S.PAID), (S.FAILED, S.PAID)],
)
def test_internal_steps_send_no_mail(start, to_status, django_capture_on_commit_callbacks):
    order = OrderFactory(status=start)
    move(order, to_status, django_capture_on_commit_callbacks)
    assert customer_mails(order) == []


def test_the_delayed_mail_never_names_the_internal_cause(django_capture_on_commit_callbacks):
    order = OrderFactory(status=S.FULFILLING)
    move(order, S.FAILED, django_capture_on_commit_callbacks, reason=OrderReason.OUT_OF_CREDITS)
    (message,) = customer_mails(order)
    for text in (message.subject, message.body, message.alternatives[0][0]):
        assert "credit" not in text.lower() and "openrouter out" not in text.lower()
        assert "staff have been alerted" in text or message.subject in text


def test_the_refund_mail_carries_the_transaction_reference(django_capture_on_commit_callbacks):
    order = OrderFactory(status=S.NEEDS_REVIEW)
    move(order, S.REFUNDED, django_capture_on_commit_callbacks, updates={"refund_reference": "0xfeedbeef42"})
    (message,) = customer_mails(order)
    assert "0xfeedbeef42" in message.body and "0xfeedbeef42" in message.alternatives[0][0]


def test_a_rolled_back_transition_sends_nothing(django_capture_on_commit_callbacks):
    order = OrderFactory()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        order_transition(order=order, from_status=S.PENDING, to_status=S.EXPIRED, source="poller")
        raise RuntimeError("boom")
    assert callbacks == [] and mail.outbox == []


def test_placed_mail_has_the_payment_link_amount_and_expiry():
    address = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"
    order = OrderFactory(crypto_type="USDT_TRC20", crypto_amount=Decimal("10.8"), address=address)
    customer_mail.customer_mail_send(order=order, kind=customer_mail.PLACED)
    (message,) = customer_mails(order)
    assert "10.800000 USDT" in message.body  # every decimal place, never a dropped zero
    assert "USDT on TRON (TRC-20)" in message.body and "USDT_TRC20" not in message.body
    assert "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE" in message.body
    assert order.expires_at.strftime("%H:%M:%S") in message.body
    assert "200,000" in message.body  # formatted token count
    assert reverse("orders:detail", args=[order.order_id]) in message.alternatives[0][0]


def test_key_disabled_mail(django_capture_on_commit_callbacks):
    order = OrderFactory(status=S.DELIVERED, key_hash="h" * 64, delivered_at=timezone.now())
    client = mock.Mock()
    client.update_key.return_value = mock.Mock(usage=0, limit_remaining=0)
    with (
        mock.patch.object(staff_actions, "get_openrouter_client", return_value=client),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert staff_actions.order_disable_key(order=order)
    (message,) = customer_mails(order)
    assert message.subject == f"The API key of order {order.order_id} was disabled"


def test_a_mail_goes_out_once_even_if_its_task_runs_twice():
    order = OrderFactory(status=S.DELIVERED)
    assert send_customer_mail(order.pk, customer_mail.DELIVERED) is True
    assert send_customer_mail(order.pk, customer_mail.DELIVERED) is False
    assert len(mail.outbox) == 1


def test_the_task_retries_while_the_mail_server_is_down(settings):
    order = OrderFactory(status=S.DELIVERED)
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise smtplib.SMTPServerDisconnected("down")
        return 1

    with mock.patch("django.core.mail.EmailMultiAlternatives.send", flaky):
        send_customer_mail.apply(args=(order.pk, customer_mail.DELIVERED))
    assert len(calls) == 3


def test_unknown_mail_kind_is_refused():
    with pytest.raises(ValueError):
        customer_mail.customer_mail_enqueue(order_pk=1, kind="<script>")


def test_a_vanished_order_sends_nothing():
    assert send_customer_mail(999999, customer_mail.PAID) is False
    assert mail.outbox == []
