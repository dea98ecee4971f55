"""Exactly one withdrawal per order under concurrent confirms, on PostgreSQL over real HTTP."""

from __future__ import annotations

import pytest

from orders.models import OrderStatus, Refund, RefundStatus
from orders.services import refunds
from orders.services.refunds import RefundRefused
from orders.services.staff_actions import StaffActionRefused, order_staff_approve_payment
from payments.sandbox.models import SandboxPayment, SandboxWithdrawal
from tests.concurrency import run_together
from tests.conftest import needs_postgres
from tests.live_sandboxes import use_live_gateway
from tests.orders.refund_support import BTC_REFUND_ADDRESS, paid_sandbox_order

pytestmark = [needs_postgres, pytest.mark.postgres, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gateway(live_server, settings):
    use_live_gateway(settings, live_server.url)
    settings.ALERT_THROTTLE_SECONDS = 0


def confirm(order, actor):
    def run():
        try:
            return refunds.refund_confirm(order=order, actor=actor).status
        except RefundRefused as exc:
            return f"refused: {exc}"

    return run


@pytest.mark.parametrize("racers", [2, 6])
def test_concurrent_confirms_withdraw_exactly_once(gateway, staff_user, racers):
    order = paid_sandbox_order()
    refunds.refund_set_address(order=order, address=BTC_REFUND_ADDRESS, actor=order.user)

    results, errors = run_together(*[confirm(order, staff_user) for _ in range(racers)])

    assert errors == []
    assert results.count(RefundStatus.SENT) == 1, results
    assert all(r.startswith("refused: ") for r in results if r != RefundStatus.SENT)
    assert SandboxWithdrawal.objects.count() == 1
    assert SandboxPayment.objects.get(pk=int(order.payment_id)).is_withdrawn
    refund = Refund.objects.get(order=order)
    assert refund.status == RefundStatus.SENT and refund.attempts == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.events.filter(to_status=OrderStatus.REFUNDED).count() == 1


def test_confirm_racing_a_staff_approval_never_both_win(gateway, staff_user):
    for _ in range(3):
        order = paid_sandbox_order()
        refunds.refund_set_address(order=order, address=BTC_REFUND_ADDRESS, actor=order.user)

        def approve(order=order):
            try:
                return order_staff_approve_payment(order=order, actor=staff_user, confirmation=order.order_id,
                                                   note="approved in a race")
            except StaffActionRefused as exc:
                return f"refused: {exc}"

        results, errors = run_together(confirm(order, staff_user), approve)
        assert errors == []
        order.refresh_from_db()
        sent = SandboxWithdrawal.objects.filter(payment_id=int(order.payment_id)).count()
        # either the refund went out (and the order is refunded) or the approval won and nothing was sent
        assert (order.status, sent) in {(OrderStatus.REFUNDED, 1), (OrderStatus.PAID, 0), (OrderStatus.FULFILLING, 0),
                                        (OrderStatus.DELIVERED, 0), (OrderStatus.FAILED, 0)}, (order.status, results)
