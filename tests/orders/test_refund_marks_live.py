"""Refunding an order staff marked refundable, against the gateway sandbox over real HTTP.

A delivered order is refunded through the gateway only once marked, and only with its key
disabled and unused; a top-up's refund looks at the key it added to. The admin action and the
command accept a marked order like a failed one.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.models import AITokenOrder, OrderStatus, Refund, RefundStatus
from orders.services import refunds
from orders.services.refund_marks import order_staff_mark_refundable, order_staff_unmark_refundable
from orders.services.refunds import RefundRefused
from orders.services.staff_actions import StaffActionRefused
from payments.sandbox import wallet
from payments.sandbox.models import SandboxPayment, SandboxWithdrawal
from tests.live_sandboxes import use_live_gateway
from tests.orders.refund_support import BTC_REFUND_ADDRESS, paid_sandbox_order

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
S, R = OrderStatus, RefundStatus
REASON = "Customer complaint: the key never worked for them"


@pytest.fixture
def gateway_url(live_server, settings):
    settings.SITE_URL = live_server.url
    settings.ALERT_THROTTLE_SECONDS = 0
    yield use_live_gateway(settings, live_server.url)
    wallet.fault_set(mode=None)


def delivered(**key) -> AITokenOrder:
    fields = {"key_hash": f"{AITokenOrder.objects.count() + 1:064x}", "key_disabled": True, "key_usage_usd": Decimal(0)}
    fields.update(key)
    return paid_sandbox_order(status=S.DELIVERED, **fields)


def marked_with_address(order: AITokenOrder, staff) -> AITokenOrder:
    order_staff_mark_refundable(order=order, actor=staff, note=REASON)
    refunds.refund_set_address(order=order, address=BTC_REFUND_ADDRESS, actor=order.user)
    return order


def test_a_marked_delivered_order_with_a_disabled_unused_key_is_refunded_once(gateway_url, staff_user):
    order = marked_with_address(delivered(), staff_user)
    quote = refunds.refund_quote(order=order)
    assert quote.receiving == Decimal("0.00001865") and SandboxWithdrawal.objects.count() == 0

    refund = refunds.refund_confirm(order=order, actor=staff_user)
    assert refund.status == R.SENT and SandboxWithdrawal.objects.count() == 1
    assert SandboxPayment.objects.get(pk=int(order.payment_id)).is_withdrawn
    order.refresh_from_db()
    assert order.status == S.REFUNDED and order.refund_reference == refund.tx_ids[0]
    event = order.events.get(to_status=S.REFUNDED)
    assert event.from_status == S.DELIVERED and event.actor == staff_user
    with pytest.raises(RefundRefused, match="already refunded"):
        refunds.refund_confirm(order=order, actor=staff_user)
    with pytest.raises(StaffActionRefused, match="already refunded"):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    assert SandboxWithdrawal.objects.count() == 1


def test_an_unmarked_delivered_order_is_refused(gateway_url, staff_user):
    order = delivered()
    Refund.objects.create(order=order, address=BTC_REFUND_ADDRESS, network="bitcoin")
    with pytest.raises(RefundRefused, match="Mark it refundable first"):
        refunds.refund_confirm(order=order, actor=staff_user)
    # marked, given an address, then the mark withdrawn: refused again, nothing sent
    marked_with_address(order, staff_user)
    order_staff_unmark_refundable(order=order, actor=staff_user, note="offered by mistake")
    with pytest.raises(RefundRefused, match="only failed or under-review"):
        refunds.refund_confirm(order=order, actor=staff_user)
    assert SandboxWithdrawal.objects.count() == 0


def test_a_live_key_is_refused_until_disabled(gateway_url, staff_user):
    order = marked_with_address(delivered(key_disabled=False), staff_user)
    with pytest.raises(RefundRefused, match="live key: disable it first"):
        refunds.refund_quote(order=order)
    with pytest.raises(RefundRefused, match="live key: disable it first"):
        refunds.refund_confirm(order=order, actor=staff_user)
    assert SandboxWithdrawal.objects.count() == 0 and Refund.objects.get(order=order).status == R.REQUESTED


def test_a_used_key_is_not_refundable_in_full(gateway_url, staff_user):
    order = marked_with_address(delivered(key_usage_usd=Decimal("0.03")), staff_user)
    with pytest.raises(RefundRefused, match=r"not refundable in full.*Mark refunded"):
        refunds.refund_confirm(order=order, actor=staff_user)
    assert SandboxWithdrawal.objects.count() == 0


def test_a_top_up_refund_looks_at_the_key_it_added_to(gateway_url, staff_user):
    key_order = delivered(key_disabled=False)
    top_up = paid_sandbox_order(status=S.DELIVERED, user=key_order.user, top_up_of=key_order)
    marked_with_address(top_up, staff_user)
    with pytest.raises(RefundRefused, match=rf"live key \(the key of order {key_order.order_id}"):
        refunds.refund_confirm(order=top_up, actor=staff_user)
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_disabled=True, key_usage_usd=Decimal("0.5"))
    with pytest.raises(RefundRefused, match="not refundable in full"):
        refunds.refund_confirm(order=top_up, actor=staff_user)
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_usage_usd=Decimal(0))
    assert refunds.refund_confirm(order=top_up, actor=staff_user).status == R.SENT
    top_up.refresh_from_db()
    key_order.refresh_from_db()
    assert top_up.status == S.REFUNDED and key_order.status == S.DELIVERED
    assert SandboxWithdrawal.objects.get().payment_id == int(top_up.payment_id)


def test_a_marked_expired_order_with_a_paid_payment_is_refunded(gateway_url, staff_user):
    order = paid_sandbox_order(status=S.EXPIRED, paid_at=None)
    marked_with_address(order, staff_user)  # the gateway says paid: the mark is allowed
    assert refunds.refund_confirm(order=order, actor=staff_user).status == R.SENT
    order.refresh_from_db()
    assert order.status == S.REFUNDED


def test_an_expired_order_the_gateway_shows_unpaid_cannot_be_marked(gateway_url, staff_user):
    order = paid_sandbox_order(status=S.EXPIRED, paid_at=None)
    SandboxPayment.objects.filter(pk=int(order.payment_id)).update(is_paid=False, paid_at=None)
    with pytest.raises(StaffActionRefused, match="no payment received"):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)


def test_the_command_and_the_admin_action_accept_a_marked_order(gateway_url, staff_user, staff_client, capsys):
    order = marked_with_address(delivered(), staff_user)
    call_command("refund_order", order.order_id)
    assert "customer gets    0.00001865 BTC" in capsys.readouterr().out
    response = staff_client.post("/admin/orders/aitokenorder/",
                                 {"action": "refund_to_customer", "_selected_action": [order.pk]})
    page = staff_client.get(response["Location"]).content.decode()
    assert "Dry run" in page and BTC_REFUND_ADDRESS in page
    assert SandboxWithdrawal.objects.count() == 0
    call_command("refund_order", order.order_id, "--confirm")
    assert "Sent." in capsys.readouterr().out and SandboxWithdrawal.objects.count() == 1

    unmarked = delivered()
    Refund.objects.create(order=unmarked, address=BTC_REFUND_ADDRESS, network="bitcoin")
    with pytest.raises(CommandError, match="Mark it refundable first"):
        call_command("refund_order", unmarked.order_id, "--confirm")
    assert SandboxWithdrawal.objects.count() == 1
