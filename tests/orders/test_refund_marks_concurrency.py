"""A refundable mark racing a status change, a second mark, or a refund — on PostgreSQL, real threads."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import AITokenOrder, OrderReason, OrderStatus, RefundStatus
from orders.services import refunds
from orders.services.refund_marks import order_staff_mark_refundable, order_staff_unmark_refundable
from orders.services.refunds import RefundRefused
from orders.services.staff_actions import StaffActionRefused
from orders.services.transitions import order_transition
from payments.sandbox.models import SandboxWithdrawal
from tests.concurrency import run_together
from tests.conftest import needs_postgres
from tests.live_sandboxes import use_live_gateway
from tests.orders.refund_support import BTC_REFUND_ADDRESS, paid_sandbox_order

pytestmark = [needs_postgres, pytest.mark.postgres, pytest.mark.live, pytest.mark.django_db(transaction=True)]
S = OrderStatus
REASON = "Customer complaint, refund agreed"


@pytest.fixture
def gateway(live_server, settings):
    use_live_gateway(settings, live_server.url)
    settings.ALERT_THROTTLE_SECONDS = 0


def attempt(fn, **kwargs):
    def run():
        try:
            return fn(**kwargs)
        except (StaffActionRefused, RefundRefused) as exc:
            return f"refused: {exc}"

    return run


def test_concurrent_marks_mark_once(gateway, staff_user):
    order = paid_sandbox_order(status=S.DELIVERED, key_hash="a" * 64, key_disabled=True)
    results, errors = run_together(*[attempt(order_staff_mark_refundable, order=AITokenOrder.objects.get(pk=order.pk),
                                             actor=staff_user, note=REASON) for _ in range(4)])
    assert errors == []
    assert sum(not r.startswith("refused: ") for r in results) == 1, results
    assert order.events.filter(details__action="mark_refundable").count() == 1


def test_a_mark_racing_a_late_payment_on_an_expired_order(gateway, staff_user):
    """expired → needs_review (the late payment arrives) while staff mark it: never inconsistent."""
    for _ in range(4):
        order = paid_sandbox_order(status=S.EXPIRED, paid_at=None)

        def late_payment(order=order):
            return order_transition(order=AITokenOrder.objects.get(pk=order.pk), from_status=S.EXPIRED,
                                    to_status=S.NEEDS_REVIEW, source="poller", reason=OrderReason.PAID_LATE)

        mark = attempt(order_staff_mark_refundable, order=AITokenOrder.objects.get(pk=order.pk), actor=staff_user,
                       note=REASON)
        results, errors = run_together(mark, late_payment)
        assert errors == [], errors
        order.refresh_from_db()
        assert order.status == S.NEEDS_REVIEW  # the late payment always lands (marking changes no status)
        marked = order.events.filter(details__action="mark_refundable").count()
        assert marked == (0 if str(results).count("refused: ") else 1)
        assert (order.refundable_marked_at is not None) == bool(marked)
        assert refunds.refund_can_request(order=order)  # refundable either way


def test_withdrawing_the_mark_racing_a_refund_confirm_never_sends_for_an_unmarked_order(gateway, staff_user):
    for _ in range(3):
        order = paid_sandbox_order(status=S.DELIVERED, key_hash=f"{AITokenOrder.objects.count() + 7:064x}",
                                   key_disabled=True, key_usage_usd=Decimal(0))
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
        refunds.refund_set_address(order=order, address=BTC_REFUND_ADDRESS, actor=order.user)

        confirm = attempt(refunds.refund_confirm, order=AITokenOrder.objects.get(pk=order.pk), actor=staff_user)
        unmark = attempt(order_staff_unmark_refundable, order=AITokenOrder.objects.get(pk=order.pk),
                         actor=staff_user, note="withdrawn in a race")
        results, errors = run_together(confirm, unmark)
        assert errors == [], errors
        order.refresh_from_db()
        sent = SandboxWithdrawal.objects.filter(payment_id=int(order.payment_id)).count()
        if sent:
            assert order.status == S.REFUNDED and order.refundable_marked_at is not None, results
            assert any(isinstance(r, str) and "the mark stays" in r for r in results), results
        else:
            assert order.status == S.DELIVERED and order.refundable_marked_at is None, results
            assert order.refund.status == RefundStatus.REQUESTED
