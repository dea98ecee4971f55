"""Staff actions on orders: each allowed case through the admin, each refused case changing nothing."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from openrouter.client import KeyInfo, OpenRouterServerError
from orders import admin as orders_admin
from orders.models import AITokenOrder, EventSource, OrderEvent, OrderReason, OrderStatus
from orders.services import staff_actions
from orders.services.staff_actions import StaffActionRefused, staff_actions_available
from payments.client import KryptoExpressNetworkError, PaymentRecord
from tests.factories import UserFactory
from tests.orders.staff_fixtures import make_order

pytestmark = pytest.mark.django_db
S = OrderStatus
CHANGELIST = "admin:orders_aitokenorder_changelist"


def action_url(order, slug: str) -> str:
    return reverse("admin:orders_aitokenorder_staff_action", args=[order.pk, slug])


def run_list_action(client, action: str, *orders):
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [o.pk for o in orders]},
                       follow=True)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def staff_events(order) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(order=order, source=EventSource.STAFF).order_by("id"))


def unchanged(order) -> bool:
    before = (order.status, order.reason, order.refund_reference, order.key_disabled)
    order.refresh_from_db()
    return before == (order.status, order.reason, order.refund_reference, order.key_disabled)


# --- Retry fulfilment (failed → paid) ----------------------------------------------------------


def test_retry_fulfilment_moves_a_failed_order_back_to_paid(
    staff_client, staff_user, django_capture_on_commit_callbacks
):
    order = make_order(status=S.FAILED, reason=OrderReason.OUT_OF_CREDITS, fulfil_attempts=6)
    with mock.patch("orders.tasks.order_fulfil.delay") as enqueue, django_capture_on_commit_callbacks(execute=True):
        response = run_list_action(staff_client, "retry_fulfilment", order)
    order.refresh_from_db()
    assert order.status == S.PAID and order.reason == "" and order.fulfil_attempts == 0
    enqueue.assert_called_once_with(order.pk)
    (event,) = staff_events(order)
    assert (event.from_status, event.to_status, event.actor) == (S.FAILED, S.PAID, staff_user)
    assert event.details["previous_reason"] == "out_of_credits"
    assert any("will be retried" in t for t in texts(response))


@pytest.mark.parametrize(
    "status", [S.PENDING, S.PAID, S.FULFILLING, S.DELIVERED, S.EXPIRED, S.NEEDS_REVIEW, S.REFUNDED]
)
def test_retry_fulfilment_is_refused_unless_failed(staff_client, status):
    order = make_order(status=status)
    response = run_list_action(staff_client, "retry_fulfilment", order)
    assert unchanged(order)
    assert not staff_events(order)
    assert any("cannot retry fulfilment" in t for t in texts(response))


def test_retry_fulfilment_refused_when_the_order_already_holds_a_key(staff_user):
    order = make_order(status=S.FAILED, key_hash="f" * 64)
    with pytest.raises(StaffActionRefused, match="already holds a key"):
        staff_actions.order_staff_retry_fulfilment(order=order, actor=staff_user)
    assert unchanged(order)


def test_retry_on_a_stale_copy_is_refused_when_the_order_moved_on(staff_user):
    # given: the admin loaded the order as failed; meanwhile another staff member refunded it
    order = make_order(status=S.FAILED)
    AITokenOrder.objects.filter(pk=order.pk).update(status=S.REFUNDED)
    # when / then
    with pytest.raises(StaffActionRefused):
        staff_actions.order_staff_retry_fulfilment(order=order, actor=staff_user)
    order.refresh_from_db()
    assert order.status == S.REFUNDED


# --- Approve a needs_review payment ----------------------------------------------------------


def test_approve_shows_a_confirmation_form_first(staff_client):
    order = make_order(status=S.NEEDS_REVIEW, reason=OrderReason.WRONG_AMOUNT)
    response = staff_client.get(action_url(order, "approve-payment"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="confirmation"' in html and 'name="note"' in html and order.order_id in html
    order.refresh_from_db()
    assert order.status == S.NEEDS_REVIEW


def test_approve_with_typed_confirmation_and_reason_moves_to_paid(
    staff_client, staff_user, django_capture_on_commit_callbacks
):
    order = make_order(status=S.NEEDS_REVIEW, reason=OrderReason.WRONG_AMOUNT)
    with mock.patch("orders.tasks.order_fulfil.delay") as enqueue, django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            action_url(order, "approve-payment"),
            {"confirmation": order.order_id, "note": "Customer overpaid by 1 cent; fine."},
            follow=True,
        )
    order.refresh_from_db()
    assert order.status == S.PAID and order.reason == OrderReason.STAFF
    enqueue.assert_called_once_with(order.pk)
    (event,) = staff_events(order)
    assert event.actor == staff_user and event.to_status == S.PAID
    assert event.details["note"] == "Customer overpaid by 1 cent; fine."
    assert event.details["previous_reason"] == "wrong_amount"
    assert any("payment approved" in t for t in texts(response))


@pytest.mark.parametrize(
    "confirmation, note",
    [
        ("", "A good reason here"),
        ("TS-wrong", "A good reason here"),
        ("{order_id_lower}", "A good reason here"),
        ("{order_id}", ""),
        ("{order_id}", "ok"),
        ("{order_id}", "x" * 251),
    ],
)
def test_approve_without_exact_confirmation_or_reason_changes_nothing(staff_client, confirmation, note):
    order = make_order(status=S.NEEDS_REVIEW, reason=OrderReason.PAID_LATE)
    confirmation = confirmation.format(order_id=order.order_id, order_id_lower=order.order_id.lower())
    staff_client.post(action_url(order, "approve-payment"), {"confirmation": confirmation, "note": note})
    assert unchanged(order) and order.status == S.NEEDS_REVIEW
    assert not staff_events(order)


def test_wrong_confirmation_shows_the_form_again_keeping_the_reason(staff_client):
    order = make_order(status=S.NEEDS_REVIEW)
    response = staff_client.post(
        action_url(order, "approve-payment"), {"confirmation": "TS-nope", "note": "Checked the tx on chain"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Type the order id {order.order_id} exactly" in html and "Checked the tx on chain" in html
    assert unchanged(order)


@pytest.mark.parametrize("confirmation", ["", "TS-wrong", " ", "yes"])
def test_approve_service_itself_requires_the_typed_order_id(staff_user, confirmation):
    order = make_order(status=S.NEEDS_REVIEW)
    with pytest.raises(StaffActionRefused, match="Type the order id"):
        staff_actions.order_staff_approve_payment(
            order=order, actor=staff_user, confirmation=confirmation, note="A good reason here"
        )
    assert unchanged(order)


def test_approve_service_rejects_control_characters_in_the_reason(staff_user):
    order = make_order(status=S.NEEDS_REVIEW)
    with pytest.raises(StaffActionRefused, match="control characters"):
        staff_actions.order_staff_approve_payment(
            order=order, actor=staff_user, confirmation=order.order_id, note="fine\x00\x1b[31m really"
        )
    assert unchanged(order)


@pytest.mark.parametrize("status", [S.PENDING, S.FAILED, S.EXPIRED, S.DELIVERED, S.PAID, S.REFUNDED])
def test_approve_is_refused_unless_needs_review(staff_client, status):
    order = make_order(status=status)
    # the page itself refuses (redirect with a message) ...
    response = staff_client.get(action_url(order, "approve-payment"), follow=True)
    assert any("not possible" in t for t in texts(response))
    # ... and so does a forged POST
    response = staff_client.post(
        action_url(order, "approve-payment"), {"confirmation": order.order_id, "note": "forged request"}, follow=True
    )
    assert any("cannot approve" in t for t in texts(response))
    assert unchanged(order)
    assert not staff_events(order)


def test_list_action_for_approval_needs_exactly_one_order(staff_client):
    first, second = make_order(status=S.NEEDS_REVIEW), make_order(status=S.NEEDS_REVIEW)
    response = run_list_action(staff_client, "approve_payment", first, second)
    assert any("one order at a time" in t for t in texts(response))
    response = staff_client.post(reverse(CHANGELIST), {"action": "approve_payment", "_selected_action": [first.pk]})
    assert response.status_code == 302 and response["Location"] == action_url(first, "approve-payment")
    assert unchanged(first) and unchanged(second)


# --- Mark refunded ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.FAILED, S.NEEDS_REVIEW])
def test_mark_refunded_with_reference(staff_client, staff_user, status):
    order = make_order(status=status, reason=OrderReason.WRONG_AMOUNT)
    staff_client.post(
        action_url(order, "mark-refunded"), {"refund_reference": " 0xabc123def456 ", "note": "sent back"}
    )
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    assert order.refund_reference == "0xabc123def456"
    assert order.reason == OrderReason.WRONG_AMOUNT  # why it was refunded stays visible
    (event,) = staff_events(order)
    assert event.actor == staff_user and event.details["refund_reference"] == "0xabc123def456"


@pytest.mark.parametrize("reference", ["", "   ", "abc", "x" * 201])
def test_mark_refunded_requires_a_reference(staff_client, reference):
    order = make_order(status=S.FAILED)
    response = staff_client.post(action_url(order, "mark-refunded"), {"refund_reference": reference})
    assert response.status_code == 200  # the form again, with the error
    assert unchanged(order) and order.status == S.FAILED


@pytest.mark.parametrize("status", [S.PENDING, S.PAID, S.FULFILLING, S.DELIVERED, S.EXPIRED, S.REFUNDED])
def test_mark_refunded_is_refused_for_other_statuses(staff_client, status):
    order = make_order(status=status)
    response = staff_client.post(action_url(order, "mark-refunded"), {"refund_reference": "tx-123456"}, follow=True)
    assert any("cannot mark it refunded" in t for t in texts(response))
    assert unchanged(order)


def test_mark_refunded_is_refused_while_a_live_key_exists(staff_user):
    order = make_order(status=S.FAILED, key_hash="e" * 64, key_disabled=False)
    with pytest.raises(StaffActionRefused, match="disable it"):
        staff_actions.order_staff_mark_refunded(order=order, actor=staff_user, refund_reference="tx-123456")
    assert unchanged(order)


# --- Disable the delivered key ---------------------------------------------------------------


def _key_info(order, *, disabled: bool) -> KeyInfo:
    return KeyInfo(hash=order.key_hash, name=f"order {order.order_id}", label="sk-or-v1-abc...xyz", disabled=disabled,
                   limit=Decimal("1.80"), limit_remaining=Decimal("1.25"), usage=Decimal("0.55"),
                   created_at=timezone.now(), expires_at=None)


def test_disable_key_patches_openrouter_and_records_who(staff_client, staff_user):
    order = make_order(status=S.DELIVERED)
    client = mock.Mock()
    client.update_key.return_value = _key_info(order, disabled=True)
    with mock.patch("orders.services.staff_actions.get_openrouter_client", return_value=client):
        assert staff_client.get(action_url(order, "disable-key")).status_code == 200  # confirmation page
        response = staff_client.post(action_url(order, "disable-key"), follow=True)
    client.update_key.assert_called_once_with(order.key_hash, disabled=True)
    order.refresh_from_db()
    assert order.key_disabled is True and order.status == S.DELIVERED
    assert order.key_usage_usd == Decimal("0.55")
    events = staff_events(order)
    assert events and all(e.actor == staff_user for e in events)
    assert any("key disabled" in t for t in texts(response))


def test_disable_key_reports_openrouter_errors_and_changes_nothing(staff_client, staff_user):
    order = make_order(status=S.DELIVERED)
    client = mock.Mock()
    client.update_key.side_effect = OpenRouterServerError("upstream 502 with Bearer sk-or-v1-leakme123456",
                                                          status_code=502)
    with mock.patch("orders.services.staff_actions.get_openrouter_client", return_value=client):
        response = staff_client.post(action_url(order, "disable-key"), follow=True)
    assert unchanged(order) and order.key_disabled is False
    messages = texts(response)
    assert any("OpenRouterServerError" in t for t in messages)
    assert not any("leakme" in t for t in messages)
    (event,) = staff_events(order)
    assert event.actor == staff_user and event.details["status_code"] == 502


@pytest.mark.parametrize(
    "fields",
    [
        {"status": S.DELIVERED, "key_disabled": True},
        {"status": S.DELIVERED, "key_hash": None},
        {"status": S.FAILED, "key_hash": "d" * 64},
        {"status": S.PENDING},
    ],
)
def test_disable_key_is_refused_without_a_live_delivered_key(staff_client, fields):
    order = make_order(**fields)
    with mock.patch("orders.services.staff_actions.get_openrouter_client") as factory:
        response = staff_client.post(action_url(order, "disable-key"), follow=True)
    factory.assert_not_called()
    assert unchanged(order)
    assert any(order.order_id in t for t in texts(response))


# --- Re-check payment ------------------------------------------------------------------------


def _record(order, *, is_paid: bool) -> PaymentRecord:
    now = timezone.now()
    return PaymentRecord(
        id=int(order.payment_id), payment_type="PAYMENT", fiat_currency="USD", fiat_amount=order.total_usd_cost,
        crypto_currency=order.crypto_type, crypto_amount=order.crypto_amount, address=order.address,
        hash=order.payment_hash, is_paid=is_paid, is_withdrawn=False, created_at=now, expires_at=order.expires_at,
        paid_at=now if is_paid else None, callback_url=None, raw={},
    )


def test_recheck_payment_applies_the_gateways_answer(staff_client, staff_user):
    order = make_order(status=S.PENDING)
    gateway = mock.Mock()
    gateway.get_payment.return_value = _record(order, is_paid=True)
    with mock.patch("orders.services.payment_updates.get_kryptoexpress_client", return_value=gateway), \
            mock.patch("orders.tasks.order_fulfil.delay"):
        response = run_list_action(staff_client, "recheck_payment", order)
    gateway.get_payment.assert_called_once_with(order.payment_hash)
    order.refresh_from_db()
    assert order.status == S.PAID
    events = staff_events(order)
    assert [e.to_status for e in events] == [S.PAID, ""]  # the transition, then the staff note
    assert all(e.actor == staff_user for e in events)
    assert events[1].details == {"action": "recheck_payment", "changed": True, "from": "pending", "to": "paid"}
    assert any("now paid" in t for t in texts(response))


def test_recheck_payment_without_change_is_still_recorded(staff_client, staff_user):
    order = make_order(status=S.PENDING)
    gateway = mock.Mock()
    gateway.get_payment.return_value = _record(order, is_paid=False)
    with mock.patch("orders.services.payment_updates.get_kryptoexpress_client", return_value=gateway):
        response = run_list_action(staff_client, "recheck_payment", order)
    assert unchanged(order) and order.status == S.PENDING
    (event,) = staff_events(order)
    assert event.actor == staff_user and event.details["changed"] is False
    assert any("no change" in t for t in texts(response))


def test_recheck_payment_when_the_gateway_is_down(staff_client, staff_user):
    order = make_order(status=S.PENDING)
    gateway = mock.Mock()
    gateway.get_payment.side_effect = KryptoExpressNetworkError("timeout")
    with mock.patch("orders.services.payment_updates.get_kryptoexpress_client", return_value=gateway):
        response = run_list_action(staff_client, "recheck_payment", order)
    assert unchanged(order)
    assert any("could not be read" in t for t in texts(response))
    (event,) = staff_events(order)
    assert event.details["error"] == "KryptoExpressNetworkError"


@pytest.mark.parametrize("status", [S.PAID, S.FULFILLING, S.DELIVERED, S.FAILED, S.REFUNDED])
def test_recheck_payment_is_refused_after_payment(staff_client, status):
    order = make_order(status=status)
    with mock.patch("orders.services.payment_updates.get_kryptoexpress_client") as factory:
        response = run_list_action(staff_client, "recheck_payment", order)
    factory.assert_not_called()
    assert unchanged(order)
    assert any("cannot re-check" in t for t in texts(response))


def test_recheck_payment_refused_without_a_gateway_payment(staff_user):
    order = make_order(status=S.PENDING, payment_hash=None)
    with pytest.raises(StaffActionRefused, match="no gateway payment"):
        staff_actions.order_staff_recheck_payment(order=order, actor=staff_user)


def test_bulk_actions_are_capped(staff_client, monkeypatch):
    monkeypatch.setattr(orders_admin, "BULK_ACTION_MAX", 2)
    orders = [make_order(status=S.FAILED) for _ in range(3)]
    response = run_list_action(staff_client, "retry_fulfilment", *orders)
    assert any("at most 2" in t for t in texts(response))
    assert all(unchanged(o) for o in orders)


def test_bulk_retry_reports_each_order(staff_client):
    failed, delivered = make_order(status=S.FAILED), make_order(status=S.DELIVERED)
    with mock.patch("orders.tasks.order_fulfil.delay"):
        response = run_list_action(staff_client, "retry_fulfilment", failed, delivered)
    failed.refresh_from_db()
    assert failed.status == S.PAID
    assert unchanged(delivered)
    messages = texts(response)
    assert any(failed.order_id in t and "retried" in t for t in messages)
    assert any(delivered.order_id in t and "cannot" in t for t in messages)


# --- Who may act -----------------------------------------------------------------------------


def test_action_pages_need_staff(client, user_client):
    order = make_order(status=S.FAILED)
    for c in (client, user_client):
        response = c.post(action_url(order, "retry-fulfilment"))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert unchanged(order)


def test_view_only_staff_cannot_run_actions(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_aitokenorder"))
    client.force_login(viewer)
    order = make_order(status=S.FAILED)
    assert client.get(reverse("admin:orders_aitokenorder_change", args=[order.pk])).status_code == 200
    assert client.post(action_url(order, "retry-fulfilment")).status_code == 403
    response = client.post(reverse(CHANGELIST), {"action": "retry_fulfilment", "_selected_action": [order.pk]})
    assert response.status_code in (200, 302)
    assert unchanged(order)


def test_unknown_action_is_404(staff_client):
    order = make_order(status=S.FAILED)
    assert staff_client.get(action_url(order, "delete-everything")).status_code == 404


def test_available_actions_follow_the_status():
    def slugs(**fields):
        return [a.slug for a in staff_actions_available(AITokenOrder(payment_hash="h", **fields))]

    assert slugs(status=S.PENDING) == ["recheck-payment"]
    assert slugs(status=S.FAILED) == ["retry-fulfilment", "mark-refunded"]
    assert slugs(status=S.NEEDS_REVIEW) == ["recheck-payment", "approve-payment", "mark-refunded"]
    assert slugs(status=S.DELIVERED, key_hash="k") == ["disable-key", "mark-refundable"]
    assert slugs(status=S.DELIVERED, key_hash="k", key_disabled=True) == ["mark-refundable"]
    marked = timezone.now()
    assert slugs(status=S.DELIVERED, key_hash="k", refundable_marked_at=marked) == [
        "mark-refunded", "disable-key", "unmark-refundable"
    ]
    assert slugs(status=S.EXPIRED) == ["recheck-payment", "mark-refundable"]
    assert slugs(status=S.EXPIRED, refundable_marked_at=marked) == [
        "recheck-payment", "mark-refunded", "unmark-refundable"
    ]
    assert slugs(status=S.REFUNDED) == []
