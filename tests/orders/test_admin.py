"""The order admin: list, filters, search, read-only detail, constant query counts, access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import admin as orders_admin
from orders.admin import EstimatedCountPaginator
from orders.models import (
    AITokenOrder,
    EventSource,
    OrderEvent,
    OrderReason,
    OrderStatus,
    Refund,
    RefundStatus,
    TokenPackage,
)
from orders.services.transitions import order_record_event
from storefront.encryption import encrypt
from tests.conftest import needs_postgres
from tests.factories import AIModelFactory, TokenPackageFactory, UserFactory
from tests.orders.staff_fixtures import make_order

pytestmark = pytest.mark.django_db
S = OrderStatus
CHANGELIST = "admin:orders_aitokenorder_changelist"


def change_url(order) -> str:
    return reverse("admin:orders_aitokenorder_change", args=[order.pk])


def listed(response) -> set[str]:
    return {o.order_id for o in response.context["cl"].result_list}


# --- List -------------------------------------------------------------------------------------


def test_changelist_shows_the_columns_staff_need(staff_client):
    order = make_order(status=S.NEEDS_REVIEW, reason=OrderReason.WRONG_AMOUNT, token_count=123456, crypto_type="BTC")
    html = staff_client.get(reverse(CHANGELIST)).content.decode()
    for text in (order.order_id, order.user.email, order.model_id, "123,456", "$2.16", "BTC", "Under review",
                 "Wrong amount paid"):
        assert text in html


def test_filters_by_status_reason_crypto_model_and_date(staff_client):
    AIModelFactory(id="openai/gpt-4o", offered=True)
    old = make_order(status=S.EXPIRED, created_at=datetime.now(UTC) - timedelta(days=40))
    failed = make_order(status=S.FAILED, reason=OrderReason.OUT_OF_CREDITS)
    usdt = make_order(status=S.PENDING, crypto_type="USDT_TRC20", model_id="openai/gpt-4o")
    url = reverse(CHANGELIST)
    assert listed(staff_client.get(url, {"status__exact": "failed"})) == {failed.order_id}
    assert listed(staff_client.get(url, {"reason__exact": "out_of_credits"})) == {failed.order_id}
    assert listed(staff_client.get(url, {"crypto": "USDT_TRC20"})) == {usdt.order_id}
    assert listed(staff_client.get(url, {"model": "openai/gpt-4o"})) == {usdt.order_id}
    since = str(datetime.combine((datetime.now(UTC) - timedelta(days=7)).date(), datetime.min.time(), tzinfo=UTC))
    recent = listed(staff_client.get(url, {"created_at__gte": since}))
    assert old.order_id not in recent and failed.order_id in recent


def test_model_filter_lists_offered_models_not_distinct_over_orders(staff_client):
    AIModelFactory(id="openai/gpt-4o", offered=True)
    AIModelFactory(id="hidden/model", offered=False)
    make_order(model_id="retired/model")
    response = staff_client.get(reverse(CHANGELIST))
    model_filter = next(f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "model")
    values = [value for value, _ in model_filter.lookup_choices]
    assert "openai/gpt-4o" in values
    assert "hidden/model" not in values and "retired/model" not in values


def _refund(order, status: str) -> Refund:
    now = datetime.now(UTC)
    return Refund.objects.create(
        order=order, address="bc1-address", network="bitcoin", status=status,
        sending_since=None if status == RefundStatus.REQUESTED else now,
        refunded_at=now if status == RefundStatus.SENT else None,
    )


def test_refund_filter_finds_offered_orders_and_each_refund_stage(staff_client, django_assert_max_num_queries):
    make_order(status=S.DELIVERED)  # noise: no mark, no refund
    offered = make_order(status=S.DELIVERED, refundable_marked_at=datetime.now(UTC), refundable_reason="complaint")
    requested = make_order(status=S.FAILED)
    _refund(requested, RefundStatus.REQUESTED)
    unknown, refused = make_order(status=S.NEEDS_REVIEW), make_order(status=S.FAILED)
    _refund(unknown, RefundStatus.UNKNOWN)
    _refund(refused, RefundStatus.REFUSED)
    sent = make_order(status=S.REFUNDED)
    _refund(sent, RefundStatus.SENT)
    url = reverse(CHANGELIST)
    expected = {
        "offered": {offered.order_id},
        "requested": {requested.order_id},
        "attention": {unknown.order_id, refused.order_id},
        "sending": set(),
        "sent": {sent.order_id},
    }
    for value, order_ids in expected.items():
        with django_assert_max_num_queries(8):
            response = staff_client.get(url, {"refund": value})
        assert listed(response) == order_ids, value
    # the refund's own words are offered as choices; a value that is none of them filters nothing
    refund_filter = next(f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "refund")
    assert [value for value, _ in refund_filter.lookup_choices] == list(expected)
    assert len(listed(staff_client.get(url, {"refund": "' OR 1=1 --"}))) == 6


@pytest.mark.parametrize(
    "field", ["order_id", "email", "email_upper", "payment_hash", "address", "key_hash", "bare_id"]
)
def test_search_finds_an_order_by_each_identifier(staff_client, field):
    target = make_order(status=S.DELIVERED, key_hash="k" * 64)
    make_order(status=S.DELIVERED)  # noise
    term = {
        "order_id": target.order_id,
        "bare_id": target.order_id.removeprefix("TS-"),
        "email": target.user.email,
        "email_upper": target.user.email.upper(),
        "payment_hash": target.payment_hash,
        "address": target.address,
        "key_hash": target.key_hash,
    }[field]
    response = staff_client.get(reverse(CHANGELIST), {"q": f"  {term} "})
    assert listed(response) == {target.order_id}


@pytest.mark.parametrize("term", ["TS-", "%", "' OR 1=1 --", "example.com", "_", "a" * 500])
def test_search_with_partial_or_hostile_terms_finds_nothing(staff_client, term):
    make_order()
    response = staff_client.get(reverse(CHANGELIST), {"q": term})
    assert response.status_code == 200
    assert listed(response) == set()


def test_search_with_a_nul_character_does_not_crash(staff_client):
    # PostgreSQL refuses NUL in string literals; the term is cleaned before it reaches the query.
    make_order()
    assert staff_client.get(reverse(CHANGELIST), {"q": "TS-\x00abc"}).status_code == 200


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_changelist_query_count_is_the_same_for_10_and_100_orders(staff_client):
    AIModelFactory(id="openai/gpt-4o", offered=True)
    for _ in range(10):
        make_order(status=S.DELIVERED)
    ten = _changelist_queries(staff_client)
    for i in range(90):
        make_order(status=[S.PENDING, S.FAILED, S.DELIVERED][i % 3], reason="" if i % 3 != 1 else "out_of_credits")
    hundred = _changelist_queries(staff_client)
    assert ten == hundred
    assert hundred <= 8


def test_changelist_does_not_run_a_full_count(staff_client):
    for _ in range(3):
        make_order()
    with CaptureQueriesContext(connection) as ctx:
        staff_client.get(reverse(CHANGELIST), {"status__exact": "pending"})
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    # Only the paginator's (filtered) count; no second unfiltered "of N total" count.
    assert len(counts) == 1 and "WHERE" in counts[0].upper()
    # Facet counts (a COUNT per filter option) are switched off even when asked for.
    with CaptureQueriesContext(connection) as ctx:
        staff_client.get(reverse(CHANGELIST), {"status__exact": "pending", "_facets": "True"})
    assert len([q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]) == 1


def test_paginator_uses_the_estimate_only_for_a_large_unfiltered_table(db):
    for _ in range(3):
        make_order()
    with mock.patch.object(orders_admin, "_estimated_rows", return_value=250_000):
        assert EstimatedCountPaginator(AITokenOrder.objects.all(), 50).count == 250_000
        assert EstimatedCountPaginator(AITokenOrder.objects.filter(status="pending"), 50).count == 3
    with mock.patch.object(orders_admin, "_estimated_rows", return_value=500):  # small: exact
        assert EstimatedCountPaginator(AITokenOrder.objects.all(), 50).count == 3
    with mock.patch.object(orders_admin, "_estimated_rows", return_value=None):  # never analysed
        assert EstimatedCountPaginator(AITokenOrder.objects.all(), 50).count == 3


@needs_postgres
def test_estimated_rows_reads_pg_class_after_analyze(db):
    for _ in range(5):
        make_order()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_aitokenorder")
    assert orders_admin._estimated_rows(AITokenOrder.objects.all()) == 5


@needs_postgres
def test_the_offered_filter_reads_its_partial_index(db):
    make_order(status=S.DELIVERED, refundable_marked_at=datetime.now(UTC))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned whatever the index
    newest_marked = AITokenOrder.objects.filter(refundable_marked_at__isnull=False).order_by("-created_at")[:50]
    assert "order_refund_offered_idx" in newest_marked.explain()


# --- Detail -----------------------------------------------------------------------------------


def test_detail_shows_hash_and_usage_but_never_the_key_or_callback_secret(staff_client):
    plaintext_key = "sk-or-v1-" + "f" * 64
    callback_secret = "cb-secret-" + "9" * 30
    order = make_order(
        status=S.DELIVERED, key_hash="abc123" * 8, key_usage_usd=Decimal("0.420000"),
        key_limit_remaining_usd=Decimal("1.380000"),
        key_encrypted=encrypt(plaintext_key), callback_secret_encrypted=encrypt(callback_secret),
    )
    stored = AITokenOrder.objects.get(pk=order.pk)
    html = staff_client.get(change_url(order)).content.decode()
    assert "abc123" * 8 in html and "0.42" in html and "1.38" in html
    for forbidden in (plaintext_key, callback_secret, stored.key_encrypted, stored.callback_secret_encrypted,
                      "key_encrypted", "callback_secret"):
        assert forbidden not in html


def test_detail_is_read_only_with_the_event_timeline(staff_client, staff_user):
    order = make_order(status=S.FAILED, reason=OrderReason.RETRIES_EXHAUSTED)
    order_record_event(order=order, source=EventSource.WORKER, message="OpenRouter 503, retrying",
                       details={"attempt": 2})
    response = staff_client.get(change_url(order))
    html = response.content.decode()
    assert "OpenRouter 503, retrying" in html and "&quot;attempt&quot;: 2" in html
    adminform = response.context["adminform"]
    assert not [name for name in adminform.form.fields]  # every field is read-only
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert "events-__prefix__" not in html and "-DELETE" not in html  # no add row, no delete box
    # the action buttons for a failed order
    assert "Retry fulfilment" in html and "Mark refunded" in html and "Approve payment" not in html


def test_posting_the_change_form_changes_nothing(staff_client):
    order = make_order(status=S.FAILED)
    response = staff_client.post(change_url(order), {"status": "delivered", "total_usd_cost": "0.01"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == S.FAILED and order.total_usd_cost == Decimal("2.16")
    assert not OrderEvent.objects.filter(order=order).exists()


def test_detail_query_count_is_constant_in_the_number_of_events(staff_client):
    order = make_order(status=S.DELIVERED)
    order_record_event(order=order, source=EventSource.WORKER, message="one")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert staff_client.get(change_url(order)).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    staff = UserFactory(is_staff=True)
    for i in range(20):
        order_record_event(order=order, source=EventSource.STAFF, message=f"note {i}", actor=staff)
    assert queries() == few


def test_orders_cannot_be_added_or_deleted_in_the_admin(staff_client):
    order = make_order()
    assert staff_client.get(reverse("admin:orders_aitokenorder_add")).status_code == 403
    assert staff_client.get(reverse("admin:orders_aitokenorder_delete", args=[order.pk])).status_code == 403
    response = staff_client.post(
        reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [order.pk], "post": "yes"}
    )
    assert AITokenOrder.objects.filter(pk=order.pk).exists()
    assert response.status_code in (200, 302)


# --- Access -----------------------------------------------------------------------------------


def test_admin_anonymous_is_sent_to_login(client):
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_customer_is_sent_to_login(user_client):
    for name in (CHANGELIST, "admin:index"):
        response = user_client.get(reverse(name))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- Catalogue admin --------------------------------------------------------------------------


def test_packages_can_be_reordered_and_hidden_from_the_list(staff_client):
    first = TokenPackageFactory(name="Starter", share=Decimal("0.05"), position=1)
    second = TokenPackageFactory(name="Standard", share=Decimal("0.25"), position=2)
    url = reverse("admin:orders_tokenpackage_changelist")
    data = {
        "form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "2",
        "form-0-id": first.pk, "form-0-share": "0.05", "form-0-position": "5", "form-0-active": "on",
        "form-1-id": second.pk, "form-1-share": "0.25", "form-1-position": "1",  # unchecked → hidden
        "_save": "Save",
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.position, first.active) == (5, True)
    assert (second.position, second.active) == (1, False)
    ours = TokenPackage.objects.filter(pk__in=[first.pk, second.pk])
    assert list(ours.values_list("name", flat=True)) == ["Standard", "Starter"]


def test_package_hide_action(staff_client):
    package = TokenPackageFactory()
    staff_client.post(
        reverse("admin:orders_tokenpackage_changelist"),
        {"action": "hide_packages", "_selected_action": [package.pk]},
    )
    package.refresh_from_db()
    assert package.active is False


@pytest.mark.parametrize("share", ["0", "-0.5", "1.5", "0.00001", "abc", ""])
def test_package_edit_rejects_a_share_outside_zero_to_one(staff_client, share):
    package = TokenPackageFactory(share=Decimal("0.5"))
    response = staff_client.post(
        reverse("admin:orders_tokenpackage_change", args=[package.pk]),
        {"name": "Tiny", "share": share, "position": "0", "active": "on"},
    )
    assert response.status_code == 200  # form redisplayed with an error
    package.refresh_from_db()
    assert package.share == Decimal("0.5")


def test_package_edit_saves_a_valid_share(staff_client):
    package = TokenPackageFactory(share=Decimal("0.5"))
    response = staff_client.post(
        reverse("admin:orders_tokenpackage_change", args=[package.pk]),
        {"name": "Half", "share": "0.4", "position": "0", "active": "on"},
    )
    assert response.status_code == 302
    package.refresh_from_db()
    assert package.share == Decimal("0.4")


def test_periodic_tasks_admin_is_available(staff_client):
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:django_celery_beat_periodictask_changelist") in html
    assert staff_client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:django_celery_beat_periodictask_add")).status_code == 200
