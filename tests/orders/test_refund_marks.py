"""Staff mark a delivered or expired order refundable: who may, what the customer then sees, what stays shut.

The refund itself against the gateway sandbox is in `test_refund_marks_live.py`; the races on
PostgreSQL in `test_refund_marks_concurrency.py`.
"""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from orders.customer_mail import REFUND_OFFER_WITHDRAWN, REFUND_OFFERED, refund_offer_occasion
from orders.models import AITokenOrder, OrderEvent, OrderStatus, Refund, RefundStatus
from orders.services.refund_marks import order_staff_mark_refundable, order_staff_unmark_refundable
from orders.services.refunds import RefundRefused, refund_can_request, refund_set_address
from orders.services.staff_actions import StaffActionRefused, order_staff_mark_refunded
from orders.services.top_up import REFUND_OFFERED_MESSAGE, key_order_problem
from orders.services.transitions import order_transition
from orders.tasks.mail import send_customer_mail
from payments.client import KryptoExpressNetworkError
from tests.factories import UserFactory
from tests.orders.refund_support import BTC_REFUND_ADDRESS
from tests.orders.staff_fixtures import make_order

pytestmark = pytest.mark.django_db
S = OrderStatus
REASON = "Customer complaint #4411: model answered in the wrong language"
CHANGELIST = "admin:orders_aitokenorder_changelist"


def markable(status=S.DELIVERED, **fields) -> AITokenOrder:
    fields.setdefault("payment_id", "4242")
    fields.setdefault("payment_hash", f"hash-{status}-{timezone.now().timestamp()}")
    fields.setdefault("crypto_type", "BTC")
    return make_order(status=status, **fields)


def action_url(order, slug: str) -> str:
    return reverse("admin:orders_aitokenorder_staff_action", args=[order.pk, slug])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def gateway(*, is_paid: bool):
    return SimpleNamespace(get_payment=lambda payment_hash: SimpleNamespace(is_paid=is_paid, is_withdrawn=False))


def customer_mails(order):
    return [m for m in mail.outbox if m.to == [order.user.email]]


# --- Which orders may be marked ------------------------------------------------------------------


def test_a_delivered_order_is_marked_with_reason_event_and_one_mail(staff_user, django_capture_on_commit_callbacks):
    order = markable(key_disabled=True)
    assert not refund_can_request(order=order)
    with django_capture_on_commit_callbacks(execute=True):
        message = order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    assert "marked refundable" in message
    order.refresh_from_db()
    assert order.status == S.DELIVERED  # marking changes no status
    assert order.refundable_marked_at and order.refundable_marked_by == staff_user
    assert order.refundable_reason == REASON
    event = order.events.get(details__action="mark_refundable")
    assert event.actor == staff_user and event.details["note"] == REASON and not event.to_status
    assert REASON not in event.message  # messages are listed by the customer's order API
    assert refund_can_request(order=order)

    (sent,) = customer_mails(order)
    assert sent.subject == f"A refund is offered for order {order.order_id}: where should we send it?"
    html = sent.alternatives[0][0]
    for body in (sent.body, html):
        assert "Bitcoin" in body and f"/orders/{order.order_id}/" in body
        assert "network fee" in body and "no longer works" in body
        assert REASON not in body and "complaint" not in body  # the staff reason stays in the admin

    # the same offer's task delivered again sends nothing more
    first_offer = refund_offer_occasion(order.refundable_marked_at)
    assert send_customer_mail(order.pk, REFUND_OFFERED, first_offer) is False
    assert len(customer_mails(order)) == 1


def test_a_withdrawn_offer_is_mailed_and_a_new_offer_gets_its_own_mail(staff_user, django_capture_on_commit_callbacks):
    order = markable(key_disabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    order.refresh_from_db()
    first_offer = refund_offer_occasion(order.refundable_marked_at)
    with django_capture_on_commit_callbacks(execute=True):
        message = order_staff_unmark_refundable(order=order, actor=staff_user, note="offer made by mistake")
    assert "customer is told by email" in message

    withdrawn = customer_mails(order)[-1]
    assert withdrawn.subject == f"The refund offered for order {order.order_id} was withdrawn"
    for body in (withdrawn.body, withdrawn.alternatives[0][0]):
        assert "withdrawn the refund" in body and f"/orders/{order.order_id}/" in body
        assert "offer made by mistake" not in body and REASON not in body  # never the staff's reasons
        assert "keeps working" not in body  # this key was disabled
    assert send_customer_mail(order.pk, REFUND_OFFER_WITHDRAWN, first_offer) is False  # redelivered: once

    with django_capture_on_commit_callbacks(execute=True):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    subjects = [m.subject.split(" for order")[0] for m in customer_mails(order)]
    assert subjects == ["A refund is offered", "The refund offered", "A refund is offered"]
    # the first offer's task, delivered late, does not announce a withdrawn offer again
    assert send_customer_mail(order.pk, REFUND_OFFERED, first_offer) is False
    assert len(customer_mails(order)) == 3


def test_an_offer_withdrawn_before_its_mail_went_out_sends_neither(staff_user, django_capture_on_commit_callbacks):
    order = markable(key_disabled=True)
    with django_capture_on_commit_callbacks(execute=False) as offer_mail:  # the mail server is slow
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    with django_capture_on_commit_callbacks(execute=True):
        order_staff_unmark_refundable(order=order, actor=staff_user, note="offer made by mistake")
    for enqueue in offer_mail:
        enqueue()
    assert customer_mails(order) == []


def test_the_withdrawal_mail_of_a_delivered_order_says_its_live_key_keeps_working(
    staff_user, django_capture_on_commit_callbacks
):
    order = markable()
    with django_capture_on_commit_callbacks(execute=True):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    with django_capture_on_commit_callbacks(execute=True):
        order_staff_unmark_refundable(order=order, actor=staff_user, note="the customer is happy again")
    assert "keeps working" in " ".join(customer_mails(order)[-1].body.split())


def test_a_live_key_may_be_marked_but_staff_are_told_to_disable_it(staff_user):
    order = markable()
    message = order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    assert "disable it before sending the refund" in message


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (S.PENDING, "still in progress"),
        (S.PAID, "still in progress"),
        (S.FULFILLING, "still in progress"),
        (S.REFUNDED, "already refunded"),
        (S.FAILED, "refundable already"),
        (S.NEEDS_REVIEW, "refundable already"),
    ],
)
def test_other_statuses_are_refused_with_the_reason(staff_user, status, why):
    order = markable(status=status)
    with pytest.raises(StaffActionRefused, match=why):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    order.refresh_from_db()
    assert order.refundable_marked_at is None and not order.events.exists()


def test_an_expired_order_is_marked_only_when_the_gateway_shows_it_paid(staff_user):
    order = markable(status=S.EXPIRED, paid_at=None)
    with pytest.raises(StaffActionRefused, match=r"no payment received.*nothing to refund"):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON, client=gateway(is_paid=False))
    down = SimpleNamespace(get_payment=mock.Mock(side_effect=KryptoExpressNetworkError("down")))
    with pytest.raises(StaffActionRefused, match="could not be read"):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON, client=down)
    order.refresh_from_db()
    assert order.refundable_marked_at is None

    order_staff_mark_refundable(order=order, actor=staff_user, note=REASON, client=gateway(is_paid=True))
    order.refresh_from_db()
    assert order.refundable_marked_at is not None
    assert order.events.get(details__action="mark_refundable").details["gateway_is_paid"] is True


def test_no_payment_or_no_refund_network_is_refused(staff_user):
    with pytest.raises(StaffActionRefused, match="no gateway payment"):
        order_staff_mark_refundable(order=markable(payment_id="", payment_hash=None), actor=staff_user, note=REASON)
    with pytest.raises(StaffActionRefused, match="cannot be refunded to an address"):
        order_staff_mark_refundable(order=markable(crypto_type="DOGE"), actor=staff_user, note=REASON)


@pytest.mark.parametrize("note", ["", "   ", "ok", "x" * 251, "bad\x00reason"])
def test_the_reason_is_required_and_clean(staff_user, note):
    order = markable()
    with pytest.raises(StaffActionRefused):
        order_staff_mark_refundable(order=order, actor=staff_user, note=note)
    order.refresh_from_db()
    assert order.refundable_marked_at is None


def test_marking_twice_is_refused(staff_user):
    order = markable()
    order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    with pytest.raises(StaffActionRefused, match="already marked"):
        order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    assert order.events.filter(details__action="mark_refundable").count() == 1


def test_a_key_with_a_top_up_being_applied_cannot_be_marked(staff_user):
    key_order = markable(key_disabled=True)
    make_order(status=S.FULFILLING, top_up_of=key_order, user=key_order.user)
    with pytest.raises(StaffActionRefused, match="top-up of its key is being applied"):
        order_staff_mark_refundable(order=key_order, actor=staff_user, note=REASON)


def test_a_marked_key_takes_no_top_up(staff_user):
    key_order = markable()
    assert key_order_problem(key_order) == ""
    order_staff_mark_refundable(order=key_order, actor=staff_user, note=REASON)
    key_order.refresh_from_db()
    assert key_order_problem(key_order) == REFUND_OFFERED_MESSAGE


# --- Withdrawing the mark ----------------------------------------------------------------------------


def test_the_mark_can_be_withdrawn_until_a_refund_starts(staff_user):
    order = markable(key_disabled=True)
    order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    refund_set_address(order=order, address=BTC_REFUND_ADDRESS, actor=order.user)
    Refund.objects.filter(order=order).update(status=RefundStatus.SENDING, sending_since=timezone.now())
    with pytest.raises(StaffActionRefused, match="sent or is in flight; the mark stays"):
        order_staff_unmark_refundable(order=order, actor=staff_user, note="changed my mind")
    Refund.objects.filter(order=order).update(status=RefundStatus.REQUESTED, sending_since=None)

    order_staff_unmark_refundable(order=order, actor=staff_user, note="changed my mind")
    order.refresh_from_db()
    assert order.refundable_marked_at is None and order.refundable_reason == ""
    assert not refund_can_request(order=order)
    with pytest.raises(RefundRefused):
        refund_set_address(order=order, address=BTC_REFUND_ADDRESS, actor=order.user)
    with pytest.raises(StaffActionRefused, match="not marked refundable"):
        order_staff_unmark_refundable(order=order, actor=staff_user, note="changed my mind")


# --- The lifecycle: refunded only when marked --------------------------------------------------------


@pytest.mark.parametrize("status", [S.DELIVERED, S.EXPIRED])
def test_the_one_transition_refuses_an_unmarked_order(status):
    order = markable(status=status, key_disabled=True)
    assert not order_transition(order=order, from_status=status, to_status=S.REFUNDED, source="staff")
    AITokenOrder.objects.filter(pk=order.pk).update(refundable_marked_at=timezone.now())
    assert order_transition(order=order, from_status=status, to_status=S.REFUNDED, source="staff")
    order.refresh_from_db()
    assert order.status == S.REFUNDED


def test_mark_refunded_by_hand_needs_the_mark_and_a_disabled_key(staff_user):
    order = markable()
    with pytest.raises(StaffActionRefused, match="not marked refundable"):
        order_staff_mark_refunded(order=order, actor=staff_user, refund_reference="txid-by-hand-1")
    order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    with pytest.raises(StaffActionRefused, match="live key: disable it before refunding"):
        order_staff_mark_refunded(order=order, actor=staff_user, refund_reference="txid-by-hand-1")
    AITokenOrder.objects.filter(pk=order.pk).update(key_disabled=True, key_usage_usd="0.25")
    # a used key is fine by hand: staff refunded the unused part themselves
    order_staff_mark_refunded(order=order, actor=staff_user, refund_reference="txid-by-hand-1")
    order.refresh_from_db()
    assert order.status == S.REFUNDED and order.refund_reference == "txid-by-hand-1"


# --- What the customer sees --------------------------------------------------------------------------


def test_the_order_page_and_api_offer_the_refund_once_marked(client, staff_user):
    order = markable(key_disabled=True)
    client.force_login(order.user)
    page = client.get(f"/orders/{order.order_id}/").content.decode()
    assert 'id="refund"' not in page
    api = client.get(f"/api/orders/{order.order_id}").json()
    assert api["refund_offered"] is False and api["refund"] is None

    order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    page = client.get(f"/orders/{order.order_id}/").content.decode()
    assert 'id="refund"' in page and "Your Bitcoin address" in page
    assert "network fee" in page and "We are offering you a refund" in page
    assert REASON not in page and "complaint" not in page
    api = client.get(f"/api/orders/{order.order_id}").json()
    assert api["refund_offered"] is True and api["refund"] is None
    assert "refundable_reason" not in api and REASON not in str(api)

    response = client.post(f"/orders/{order.order_id}/refund-address/", {"address": BTC_REFUND_ADDRESS})
    assert response.status_code == 302
    api = client.get(f"/api/orders/{order.order_id}").json()
    assert api["refund"]["address"] == BTC_REFUND_ADDRESS and api["refund"]["status"] == "requested"

    # withdrawn: the page stops asking and the address-only refund is not shown as a refund
    order_staff_unmark_refundable(order=order, actor=staff_user, note="offer made by mistake")
    page = client.get(f"/orders/{order.order_id}/").content.decode()
    assert 'id="refund"' not in page
    api = client.get(f"/api/orders/{order.order_id}").json()
    assert api["refund_offered"] is False and api["refund"] is None


def test_an_expired_marked_order_no_longer_says_nothing_was_charged(client, staff_user):
    order = markable(status=S.EXPIRED)
    AITokenOrder.objects.filter(pk=order.pk).update(refundable_marked_at=timezone.now(), refundable_reason=REASON)
    client.force_login(order.user)
    page = client.get(f"/orders/{order.order_id}/").content.decode()
    assert "a payment for this order reached us" in page and "nothing was charged" not in page
    assert 'id="refund"' in page and REASON not in page


def test_another_customer_cannot_give_the_address(client, staff_user):
    order = markable(key_disabled=True)
    order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    client.force_login(UserFactory())
    response = client.post(f"/orders/{order.order_id}/refund-address/", {"address": BTC_REFUND_ADDRESS})
    assert response.status_code == 404 and not Refund.objects.exists()


# --- The admin: confirmation page, hostile input -----------------------------------------------------


def test_admin_mark_page_then_post_marks(staff_client, staff_user):
    order = markable()
    detail = staff_client.get(reverse("admin:orders_aitokenorder_change", args=[order.pk])).content.decode()
    assert action_url(order, "mark-refundable") in detail
    page = staff_client.get(action_url(order, "mark-refundable"))
    html = page.content.decode()
    assert page.status_code == 200 and "Reason (staff only)" in html and "This order's key is live" in html
    assert "staff-action-page" in html  # the shared frame of staff action pages
    order.refresh_from_db()
    assert order.refundable_marked_at is None  # a GET changes nothing

    response = staff_client.post(action_url(order, "mark-refundable"), {"note": REASON, "confirm": "1"}, follow=True)
    assert any("marked refundable" in t for t in texts(response))
    order.refresh_from_db()
    assert order.refundable_marked_at is not None and order.refundable_marked_by == staff_user
    detail = staff_client.get(reverse("admin:orders_aitokenorder_change", args=[order.pk])).content.decode()
    assert REASON in detail and action_url(order, "unmark-refundable") in detail


def test_admin_missing_reason_redisplays_the_form_and_changes_nothing(staff_client):
    order = markable()
    response = staff_client.post(action_url(order, "mark-refundable"), {"note": "  ", "confirm": "1"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    order.refresh_from_db()
    assert order.refundable_marked_at is None and not OrderEvent.objects.filter(order=order).exists()


@pytest.mark.parametrize("status", [S.PENDING, S.PAID, S.FULFILLING, S.REFUNDED, S.FAILED])
def test_admin_wrong_status_is_refused_on_get_and_post(staff_client, status):
    order = markable(status=status)
    response = staff_client.get(action_url(order, "mark-refundable"), follow=True)
    assert any("not possible while the order is" in t for t in texts(response))
    response = staff_client.post(action_url(order, "mark-refundable"), {"note": REASON, "confirm": "1"}, follow=True)
    assert texts(response)  # a refusal message
    order.refresh_from_db()
    assert order.refundable_marked_at is None and order.status == status


def test_admin_already_marked_get_says_so(staff_client, staff_user):
    order = markable()
    order_staff_mark_refundable(order=order, actor=staff_user, note=REASON)
    response = staff_client.get(action_url(order, "mark-refundable"), follow=True)
    assert any("already marked refundable" in t for t in texts(response))
    response = staff_client.get(action_url(order, "mark-refunded"))
    assert response.status_code == 200  # mark refunded is offered once marked


def test_admin_mark_refunded_is_not_offered_for_an_unmarked_delivered_order(staff_client):
    order = markable(key_disabled=True)
    response = staff_client.get(action_url(order, "mark-refunded"), follow=True)
    assert any("not marked refundable" in t for t in texts(response))


def test_non_staff_cannot_reach_the_action(client):
    order = markable()
    client.force_login(order.user)
    for method in (client.get, client.post):
        response = method(action_url(order, "mark-refundable"), {"note": REASON, "confirm": "1"})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    order.refresh_from_db()
    assert order.refundable_marked_at is None


def test_changelist_action_goes_to_the_confirmation_page_for_one_order(staff_client):
    first, second = markable(), markable()
    response = staff_client.post(
        reverse(CHANGELIST), {"action": "mark_refundable", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    assert any("one order at a time" in t for t in texts(response))
    response = staff_client.post(reverse(CHANGELIST), {"action": "mark_refundable", "_selected_action": [first.pk]})
    assert response.status_code == 302 and response["Location"] == action_url(first, "mark-refundable")

