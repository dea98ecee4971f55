"""Capacity guard: balance − promised must cover a new order's base cost; unreadable balance = closed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from openrouter.client import OpenRouterNetworkError
from orders.models import OrderStatus
from orders.services.capacity import CapacityUnavailable, capacity_snapshot, ensure_capacity, promised_usd
from orders.services.fulfilment import order_fulfil
from orders.services.key_usage import key_usage_refresh
from orders.tasks import key_usage_refresh as refresh_key_usage
from tests.factories import OrderFactory
from tests.orders.fulfilment_fakes import fake_openrouter_account, paid_order  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _delivered(base: str, remaining: str | None, disabled: bool = False):
    base_d = Decimal(base)
    return OrderFactory(
        status=OrderStatus.DELIVERED,
        base_usd_cost=base_d,
        markup_amount=Decimal("0.00"),
        total_usd_cost=base_d,
        key_limit_remaining_usd=None if remaining is None else Decimal(remaining),
        key_disabled=disabled,
        key_hash=f"hash-{base}-{remaining}-{disabled}",
        delivered_at=timezone.now(),
    )


def _open(status: str, base: str):
    base_d = Decimal(base)
    return OrderFactory(status=status, base_usd_cost=base_d, markup_amount=Decimal("0.00"), total_usd_cost=base_d)


def _ledger():
    _delivered("10.00", "4.25")  # partly spent: 4.25 still promised
    _delivered("3.00", None)  # usage not refreshed yet: the whole limit
    _delivered("7.00", "7.00", disabled=True)  # disabled: promises nothing
    _open(OrderStatus.PENDING, "1.10")
    _open(OrderStatus.PAID, "2.20")
    _open(OrderStatus.FULFILLING, "3.30")
    _open(OrderStatus.FAILED, "0.40")  # paid; staff may retry it
    _open(OrderStatus.NEEDS_REVIEW, "0.50")  # paid; staff may approve it
    for status in (OrderStatus.EXPIRED, OrderStatus.REFUNDED):
        _open(status, "9.99")


def test_promised_sums_live_limits_and_open_orders_in_one_query(django_assert_num_queries):
    _ledger()
    with django_assert_num_queries(1):
        promised = promised_usd()
    assert promised.delivered_unused == Decimal("7.25")
    assert promised.open_orders == Decimal("7.50")
    assert promised.total == Decimal("14.75")


def test_promised_is_zero_with_no_orders():
    assert promised_usd().total == Decimal("0")


@pytest.mark.parametrize(
    ("balance", "base", "allowed"),
    [
        ("20.00", "5.25", True),  # headroom 5.25 exactly covers it
        ("20.00", "5.26", False),
        ("14.75", "0.01", False),  # everything already promised
        ("100.00", "19.99", True),
    ],
)
def test_ensure_capacity_compares_headroom_with_base(monkeypatch, balance, base, allowed, mailoutbox):
    _ledger()
    monkeypatch.setattr("openrouter.credits.cached_balance", lambda: Decimal(balance))
    if allowed:
        ensure_capacity(base_usd_cost=Decimal(base))
        assert not [m for m in mailoutbox if "Checkout paused" in m.subject]
    else:
        with pytest.raises(CapacityUnavailable):
            ensure_capacity(base_usd_cost=Decimal(base))
        assert any("Checkout paused" in m.subject for m in mailoutbox)


def test_unreadable_balance_is_unavailable_and_alerts(fake_openrouter, mailoutbox):
    fake_openrouter.fail_next("get_credits", OpenRouterNetworkError("timed out"))
    with pytest.raises(CapacityUnavailable):
        ensure_capacity(base_usd_cost=Decimal("1.00"))
    assert any("cannot be read" in m.subject for m in mailoutbox)


def test_balance_comes_from_openrouter_credits_and_is_cached(fake_openrouter):
    fake_openrouter.total_credits = Decimal("50.5")
    fake_openrouter.total_usage = Decimal("40.25")
    ensure_capacity(base_usd_cost=Decimal("10.25"))
    with pytest.raises(CapacityUnavailable):
        ensure_capacity(base_usd_cost=Decimal("10.26"))
    assert fake_openrouter.calls.count("get_credits") == 1  # the second check used the cached balance


def test_a_paid_order_counts_until_delivered_then_its_key_limit_counts(fake_openrouter, settings):
    order = paid_order()
    assert promised_usd().total == Decimal("1.80")
    order_fulfil(order_pk=order.pk)
    assert promised_usd().total == Decimal("1.80")
    fake_openrouter.spend(fake_openrouter.live_keys()[0]["hash"], Decimal("0.55"))
    key_usage_refresh()
    assert promised_usd().total == Decimal("1.25")


def test_snapshot_for_staff(monkeypatch):
    _ledger()
    monkeypatch.setattr("openrouter.credits.cached_balance", lambda: Decimal("60.00"))
    snap = capacity_snapshot()
    assert (snap.balance, snap.promised, snap.headroom) == (Decimal("60.00"), Decimal("14.75"), Decimal("45.25"))
    assert snap.known and snap.low  # below CAPACITY_WARNING_USD (50)


def test_snapshot_with_unknown_balance(fake_openrouter):
    fake_openrouter.fail_next("get_credits", OpenRouterNetworkError("timed out"))
    snap = capacity_snapshot()
    assert snap.balance is None and snap.headroom is None and not snap.known
    assert snap.error


# --- key usage refresh (feeds the promised amount) ------------------------------------------------


def test_usage_refresh_uses_one_listing_for_every_key(fake_openrouter, django_assert_max_num_queries):
    orders = [paid_order() for _ in range(5)]
    for order in orders:
        order_fulfil(order_pk=order.pk)
    for i, key in enumerate(fake_openrouter.live_keys()):
        fake_openrouter.spend(key["hash"], Decimal("0.10") * i)
    fake_openrouter.calls.clear()
    with django_assert_max_num_queries(4):
        report = key_usage_refresh()
    assert report.updated == 5
    assert fake_openrouter.calls == ["list_keys"]
    for order in orders:
        order.refresh_from_db()
        key = fake_openrouter.keys[order.key_hash]
        assert order.key_usage_usd == key["usage"]
        assert order.key_limit_remaining_usd == Decimal("1.80") - key["usage"]
        assert order.key_usage_checked_at is not None


def test_usage_refresh_reports_keys_gone_at_openrouter(fake_openrouter):
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    fake_openrouter.delete_key(order.key_hash)
    assert key_usage_refresh().missing == [order.order_id]


def test_usage_refresh_marks_keys_disabled_at_openrouter(fake_openrouter):
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    fake_openrouter.update_key(order.key_hash, disabled=True)
    key_usage_refresh()
    order.refresh_from_db()
    assert order.key_disabled is True


def test_single_order_refresh_reads_only_its_key(fake_openrouter):
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    fake_openrouter.spend(order.key_hash, Decimal("1.0"))
    fake_openrouter.calls.clear()
    refresh_key_usage.delay(order_pk=order.pk)
    order.refresh_from_db()
    assert fake_openrouter.calls == ["get_key"]
    assert order.key_usage_usd == Decimal("1.0")
    assert order.key_limit_remaining_usd == Decimal("0.8")


def test_usage_refresh_survives_openrouter_errors(fake_openrouter):
    fake_openrouter.fail_next("list_keys", OpenRouterNetworkError("timed out"))
    assert key_usage_refresh().error == "OpenRouterNetworkError"
