"""Refunds against the gateway sandbox over real HTTP: the path, the refusals, and exactly once.

Nothing between the refund service and the sandbox is stubbed: the store's KryptoExpress client
calls `/sandbox/kryptoexpress/api/wallet/withdrawal` on the live server, and the sandbox's own
tables (`SandboxWithdrawal`, `SandboxPayment.is_withdrawn`) say how many times money left.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from orders.models import AITokenOrder, OrderStatus, Refund, RefundStatus
from orders.services import refunds
from orders.services.refunds import RefundRefused
from payments.client import KryptoExpressNetworkError, get_kryptoexpress_client
from payments.sandbox import wallet
from payments.sandbox.models import SandboxPayment, SandboxWithdrawal
from tests.live_sandboxes import use_live_gateway
from tests.orders.refund_support import BTC_REFUND_ADDRESS, TRON_REFUND_ADDRESS, paid_sandbox_order

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
S, R = OrderStatus, RefundStatus


@pytest.fixture
def gateway_url(live_server, settings):
    settings.SITE_URL = live_server.url
    settings.ADMINS = [("Staff", "staff@example.com")]
    settings.ALERT_THROTTLE_SECONDS = 0
    yield use_live_gateway(settings, live_server.url)
    wallet.fault_set(mode=None)


def withdrawals() -> int:
    return SandboxWithdrawal.objects.count()


def ready(order: AITokenOrder, address: str = BTC_REFUND_ADDRESS) -> AITokenOrder:
    refunds.refund_set_address(order=order, address=address, actor=order.user)
    return order


def staff_alerts() -> list:
    return [m for m in mail.outbox if m.to == ["staff@example.com"]]


# --- The path ------------------------------------------------------------------------------------


def test_dry_run_shows_fees_and_sends_nothing(gateway_url):
    order = ready(paid_sandbox_order())
    quote = refunds.refund_quote(order=order)
    # 2.16 USD at 97,000 USD/BTC = 0.00002227 BTC; network fee 0.0000035; 0.5% service fee rounded up.
    assert quote.total == Decimal("0.00002227")
    assert quote.blockchain_fee == Decimal("0.0000035")
    assert quote.service_fee == Decimal("0.00000012")
    assert quote.receiving == Decimal("0.00001865")
    assert quote.total == quote.blockchain_fee + quote.service_fee + quote.receiving
    assert quote.address == BTC_REFUND_ADDRESS
    assert withdrawals() == 0
    assert not SandboxPayment.objects.get(pk=int(order.payment_id)).is_withdrawn


def test_confirm_sends_once_refunds_the_order_and_mails_the_transaction(gateway_url, staff_user):
    order = ready(paid_sandbox_order())
    refund = refunds.refund_confirm(order=order, actor=staff_user)

    assert refund.status == R.SENT
    sent = SandboxWithdrawal.objects.get()
    assert sent.payment_id == int(order.payment_id) and sent.to_address == BTC_REFUND_ADDRESS
    assert refund.tx_ids == sent.tx_ids and len(refund.tx_ids) == 1
    assert refund.receiving_amount == Decimal("0.00001865") and refund.fee_amount == Decimal("0.00000362")
    assert SandboxPayment.objects.get(pk=int(order.payment_id)).is_withdrawn
    order.refresh_from_db()
    assert order.status == S.REFUNDED and order.refund_reference == refund.tx_ids[0]
    messages = list(order.events.values_list("message", flat=True))
    assert "Refund confirmed: withdrawal intent recorded" in messages
    assert any(m.startswith("Refund sent to the customer") for m in messages)
    event = order.events.get(to_status=S.REFUNDED)
    assert event.actor == staff_user and event.details["tx_ids"] == refund.tx_ids

    customer_mail = [m for m in mail.outbox if m.to == [order.user.email]]
    assert len(customer_mail) == 1
    body = customer_mail[0].body
    assert refund.tx_ids[0] in body and f"https://mempool.space/tx/{refund.tx_ids[0]}" in body
    assert "0.00001865" in body and order.payment_hash not in body

    # then: nobody can send it again, by any door
    with pytest.raises(RefundRefused, match="already refunded"):
        refunds.refund_confirm(order=order, actor=staff_user)
    assert withdrawals() == 1


def test_tron_refund_links_to_tronscan(gateway_url, staff_user):
    order = ready(paid_sandbox_order(crypto="USDT_TRC20", total=Decimal("5.00")), TRON_REFUND_ADDRESS)
    quote = refunds.refund_quote(order=order)
    assert (quote.total, quote.blockchain_fee, quote.service_fee, quote.receiving) == (
        Decimal("5"), Decimal("1"), Decimal("0.025"), Decimal("3.975")
    )
    refund = refunds.refund_confirm(order=order, actor=staff_user)
    assert refund.status == R.SENT
    assert f"https://tronscan.org/#/transaction/{refund.tx_ids[0]}" in mail.outbox[-1].body


# --- Refusals: nothing sent, a clear reason --------------------------------------------------------


def test_refused_without_an_address(gateway_url):
    order = paid_sandbox_order()
    with pytest.raises(RefundRefused, match="not given a refund address"):
        refunds.refund_quote(order=order)
    with pytest.raises(RefundRefused, match="not given a refund address"):
        refunds.refund_confirm(order=order)
    assert withdrawals() == 0


def test_refused_while_the_order_holds_a_live_key(gateway_url):
    order = ready(paid_sandbox_order(status=S.FAILED))
    AITokenOrder.objects.filter(pk=order.pk).update(key_hash="k" * 64, key_disabled=False)
    with pytest.raises(RefundRefused, match="live key: disable it first"):
        refunds.refund_confirm(order=order)
    assert withdrawals() == 0 and Refund.objects.get(order=order).status == R.REQUESTED


def test_refused_in_full_when_the_key_was_used(gateway_url):
    order = ready(paid_sandbox_order(status=S.FAILED))
    AITokenOrder.objects.filter(pk=order.pk).update(key_hash="k" * 64, key_disabled=True, key_usage_usd=Decimal("0.4"))
    with pytest.raises(RefundRefused, match="not refundable in full"):
        refunds.refund_confirm(order=order)
    assert withdrawals() == 0


def test_refused_when_the_funds_were_already_withdrawn_at_the_gateway(gateway_url):
    order = ready(paid_sandbox_order())
    SandboxPayment.objects.filter(pk=int(order.payment_id)).update(is_withdrawn=True)
    with pytest.raises(RefundRefused, match=r"already withdrawn.*Mark refunded"):
        refunds.refund_quote(order=order)
    with pytest.raises(RefundRefused, match="already withdrawn"):
        refunds.refund_confirm(order=order)
    assert withdrawals() == 0 and Refund.objects.get(order=order).status == R.REQUESTED


@pytest.mark.parametrize("status", [S.PENDING, S.PAID, S.DELIVERED, S.EXPIRED])
def test_refused_for_orders_that_are_not_refundable(gateway_url, status):
    order = paid_sandbox_order(status=status)
    with pytest.raises(RefundRefused):
        refunds.refund_set_address(order=order, address=BTC_REFUND_ADDRESS)
    Refund.objects.create(order=order, address=BTC_REFUND_ADDRESS, network="bitcoin")
    with pytest.raises(RefundRefused, match="only failed or under-review"):
        refunds.refund_confirm(order=order)
    assert withdrawals() == 0


def test_refused_while_a_refund_is_in_flight(gateway_url):
    order = ready(paid_sandbox_order())
    Refund.objects.filter(order=order).update(status=R.SENDING, sending_since=timezone.now())
    with pytest.raises(RefundRefused, match="in flight"):
        refunds.refund_confirm(order=order)
    with pytest.raises(RefundRefused, match="already started"):
        refunds.refund_set_address(order=order, address=BTC_REFUND_ADDRESS, actor=order.user)
    assert withdrawals() == 0


def test_staff_cannot_approve_or_mark_refunded_while_a_refund_is_in_flight(gateway_url, staff_user):
    from orders.services.staff_actions import (
        StaffActionRefused,
        order_staff_approve_payment,
        order_staff_mark_refunded,
    )

    order = ready(paid_sandbox_order())
    Refund.objects.filter(order=order).update(status=R.UNKNOWN, sending_since=timezone.now())
    with pytest.raises(StaffActionRefused, match="refund to the customer"):
        order_staff_approve_payment(order=order, actor=staff_user, confirmation=order.order_id, note="paid late, ok")
    with pytest.raises(StaffActionRefused, match="refund to the customer"):
        order_staff_mark_refunded(order=order, actor=staff_user, refund_reference="manual-ref-1")
    order.refresh_from_db()
    assert order.status == S.NEEDS_REVIEW


def test_a_gateway_refusal_sends_nothing_and_lets_staff_try_again(gateway_url, staff_user):
    order = ready(paid_sandbox_order())
    SandboxPayment.objects.filter(pk=int(order.payment_id)).update(is_paid=False)  # the gateway will say 400
    refund = refunds.refund_confirm(order=order, actor=staff_user)
    assert refund.status == R.REFUSED and "not paid" in refund.last_error
    assert withdrawals() == 0
    # the customer may still change the address; staff may confirm again once the gateway agrees
    refunds.refund_set_address(order=order, address="1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", actor=order.user)
    SandboxPayment.objects.filter(pk=int(order.payment_id)).update(is_paid=True)
    refund = refunds.refund_confirm(order=order, actor=staff_user)
    assert refund.status == R.SENT and refund.attempts == 2
    assert SandboxWithdrawal.objects.get().to_address == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


# --- Crashes and lost answers: never resent --------------------------------------------------------


def test_a_process_killed_between_intent_and_call_is_reconciled_by_staff_not_resent(gateway_url, staff_user, settings):
    # given: the intent was recorded (sending) and the process died before calling the gateway
    order = ready(paid_sandbox_order())
    started = timezone.now()
    Refund.objects.filter(order=order).update(status=R.SENDING, sending_since=started, attempts=1)

    # when: anyone tries again, nothing is sent
    with pytest.raises(RefundRefused, match="in flight"):
        refunds.refund_confirm(order=order, actor=staff_user)
    # a fresh intent may still be mid-call: re-check refuses to judge it yet
    with pytest.raises(RefundRefused, match="may still be on its way"):
        refunds.refund_reconcile(order=order, actor=staff_user)
    assert withdrawals() == 0
    assert order.order_id in refunds.refunds_stuck(now=started + timedelta(seconds=settings.REFUND_STALE_SECONDS + 1))

    # then: once stale, the re-check reads isWithdrawn (false) and hands the refund back to staff
    later = started + timedelta(seconds=settings.REFUND_STALE_SECONDS + 1)
    message = refunds.refund_reconcile(order=order, actor=staff_user, now=later)
    assert "nothing was sent" in message
    assert Refund.objects.get(order=order).status == R.REQUESTED and withdrawals() == 0
    # and a person confirms again: exactly one withdrawal in the end
    assert refunds.refund_confirm(order=order, actor=staff_user).status == R.SENT
    assert withdrawals() == 1


def test_a_lost_answer_after_the_funds_left_is_never_resent(gateway_url, staff_user, settings):
    settings.HTTP_TIMEOUT = (3.0, 0.5)
    settings.SANDBOX_WALLET_LOST_ANSWER_SECONDS = 1.5
    order = ready(paid_sandbox_order())
    wallet.fault_set(mode="timeout_after")

    refund = refunds.refund_confirm(order=order, actor=staff_user)

    # the sandbox sent the funds once; the store never asked again, and re-read isWithdrawn instead
    assert withdrawals() == 1
    assert refund.status == R.SENT and refund.tx_ids == []
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    assert order.refund_reference == f"KryptoExpress withdrawal of payment {order.payment_id}"
    assert any("transaction id unknown" in m.subject for m in staff_alerts())
    with pytest.raises(RefundRefused):
        refunds.refund_confirm(order=order, actor=staff_user)
    assert withdrawals() == 1


class ForgetfulClient:
    """The real client, except that reading a payment fails after the withdrawal call (gateway down)."""

    def __init__(self):
        self._client = get_kryptoexpress_client()
        self.withdraw_calls = 0

    def get_payment(self, payment_hash):
        if self.withdraw_calls:
            raise KryptoExpressNetworkError("GET /payment: timed out")
        return self._client.get_payment(payment_hash)

    def withdraw_payment(self, **kwargs):
        self.withdraw_calls += 1
        return self._client.withdraw_payment(**kwargs)


def test_an_unknown_outcome_alerts_staff_and_the_recheck_settles_it(gateway_url, staff_user, settings):
    settings.HTTP_TIMEOUT = (3.0, 0.5)
    settings.SANDBOX_WALLET_LOST_ANSWER_SECONDS = 1.5
    order = ready(paid_sandbox_order())
    wallet.fault_set(mode="timeout_after")
    client = ForgetfulClient()

    refund = refunds.refund_confirm(order=order, actor=staff_user, client=client)

    assert refund.status == R.UNKNOWN and client.withdraw_calls == 1 and withdrawals() == 1
    assert any("URGENT" in m.subject and "outcome unknown" in m.subject for m in staff_alerts())
    order.refresh_from_db()
    assert order.status == S.NEEDS_REVIEW
    with pytest.raises(RefundRefused, match="in flight"):
        refunds.refund_confirm(order=order, actor=staff_user)
    later = timezone.now() + timedelta(seconds=settings.REFUND_STALE_SECONDS + 1)
    assert "withdrawn" in refunds.refund_reconcile(order=order, actor=staff_user, now=later)
    order.refresh_from_db()
    assert order.status == S.REFUNDED and Refund.objects.get(order=order).status == R.SENT
    assert withdrawals() == 1


def test_a_gateway_500_before_sending_is_not_retried_automatically(gateway_url, staff_user, settings):
    order = ready(paid_sandbox_order())
    wallet.fault_set(mode="error_500")
    refund = refunds.refund_confirm(order=order, actor=staff_user)
    assert refund.status == R.UNKNOWN and withdrawals() == 0
    later = timezone.now() + timedelta(seconds=settings.REFUND_STALE_SECONDS + 1)
    assert "nothing was sent" in refunds.refund_reconcile(order=order, actor=staff_user, now=later)
    assert refunds.refund_confirm(order=order, actor=staff_user).status == R.SENT
    assert withdrawals() == 1


# --- The command -----------------------------------------------------------------------------------


def test_command_dry_run_then_confirm(gateway_url, capsys):
    order = ready(paid_sandbox_order())
    call_command("refund_order", order.order_id)
    out = capsys.readouterr().out
    assert "customer gets    0.00001865 BTC" in out and "nothing was sent" in out
    assert withdrawals() == 0
    call_command("refund_order", order.order_id, "--confirm")
    assert "Sent." in capsys.readouterr().out
    assert withdrawals() == 1
    with pytest.raises(CommandError, match=r"Refused: .*already refunded"):
        call_command("refund_order", order.order_id, "--confirm")
    assert withdrawals() == 1


def test_command_exits_non_zero_with_the_reason(gateway_url):
    order = paid_sandbox_order()
    with pytest.raises(CommandError, match="not given a refund address"):
        call_command("refund_order", order.order_id)
    with pytest.raises(CommandError, match="No order"):
        call_command("refund_order", "TS-nope")


# --- Admin -----------------------------------------------------------------------------------------


def test_admin_refund_action_shows_the_dry_run_and_confirm_sends(gateway_url, staff_client):
    order = ready(paid_sandbox_order())
    changelist = "/admin/orders/aitokenorder/"
    response = staff_client.post(changelist, {"action": "refund_to_customer", "_selected_action": [order.pk]})
    assert response.status_code == 302
    page = staff_client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "Dry run" in html
    for figure in ("0.00002227", "0.0000035", "0.00000012", "0.00001865", BTC_REFUND_ADDRESS):
        assert figure in html
    assert withdrawals() == 0
    # the customer changes the address after the dry run: the confirm of the old one sends nothing
    Refund.objects.filter(order=order).update(address="1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    staff_client.post(response["Location"], {"confirm": "1", "address": BTC_REFUND_ADDRESS})
    assert withdrawals() == 0 and Refund.objects.get(order=order).status == R.REQUESTED
    Refund.objects.filter(order=order).update(address=BTC_REFUND_ADDRESS)
    done = staff_client.post(response["Location"], {"confirm": "1", "address": BTC_REFUND_ADDRESS})
    assert done.status_code == 302 and withdrawals() == 1
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    # a second confirm (double click, second tab) sends nothing
    staff_client.post(response["Location"], {"confirm": "1", "address": BTC_REFUND_ADDRESS})
    assert withdrawals() == 1
    detail = staff_client.get(f"/admin/orders/aitokenorder/{order.pk}/change/").content.decode()
    assert "Refund to the customer" in detail


def test_customer_sees_the_sent_refund_on_the_order_page_and_api(gateway_url, client, staff_user):
    order = ready(paid_sandbox_order())
    refund = refunds.refund_confirm(order=order, actor=staff_user)
    client.force_login(order.user)
    html = client.get(f"/orders/{order.order_id}/").content.decode()
    assert "Refund sent" in html and refund.tx_ids[0] in html and "mempool.space/tx/" in html
    data = client.get(f"/api/orders/{order.order_id}").json()
    assert data["status"] == "refunded"
    assert data["refund"]["status"] == "sent" and data["refund"]["tx_ids"] == refund.tx_ids
    assert data["refund"]["receiving_amount"] == "0.00001865" and data["refund"]["fee_amount"] == "0.00000362"
    assert data["refund"]["refunded_at"]
