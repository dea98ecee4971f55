"""Top-up fulfilment: the key's limit rises by the order's base cost exactly once, whatever fails."""

from __future__ import annotations

from decimal import Decimal

import pytest

from openrouter.client import (
    OpenRouterNetworkError,
    OpenRouterPaymentRequired,
    OpenRouterServerError,
)
from orders.models import AITokenOrder, OrderEvent, OrderReason, OrderStatus
from orders.services import top_up
from orders.services.fulfilment import FulfilResult, order_fulfil
from orders.services.transitions import order_transition
from tests.orders.fulfilment_fakes import fake_openrouter_account  # noqa: F401
from tests.orders.top_up_support import delivered_key_order, delivered_sum, limit_of, paid_top_up

pytestmark = pytest.mark.django_db
S = OrderStatus


class WorkerKilled(Exception):
    pass


def _patches(fake) -> list[Decimal]:
    return [c for c in fake.patched_limits]


@pytest.fixture
def fake(fake_openrouter, monkeypatch):
    """The fake account, recording every limit it is PATCHed to."""
    fake_openrouter.patched_limits = []
    original = fake_openrouter.update_key

    def update_key(key_hash, *, disabled=None, limit=None):
        if limit is not None:
            fake_openrouter.patched_limits.append(limit)
        return original(key_hash, disabled=disabled, limit=limit)

    fake_openrouter.update_key = update_key
    return fake_openrouter


def _reset_claim(order: AITokenOrder) -> None:
    """What the reconciler does to a claim whose worker died."""
    order = AITokenOrder.objects.get(pk=order.pk)
    order_transition(order=order, from_status=S.FULFILLING, to_status=S.PAID, source="reconciler",
                     updates={"fulfilling_since": None, "fulfil_retry_at": None})


def _due(order: AITokenOrder) -> None:
    AITokenOrder.objects.filter(pk=order.pk).update(fulfil_retry_at=None)


def test_a_paid_top_up_raises_the_key_limit_instead_of_buying_a_key(fake):
    # given a delivered $1.80 key and a paid $1.80 top-up of it
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    # when fulfilment runs
    outcome = order_fulfil(order_pk=order.pk)
    # then the key's limit is the absolute sum; no new key was bought
    assert outcome.result == FulfilResult.DELIVERED
    assert limit_of(fake, key_order) == Decimal("3.60")
    assert fake.calls.count("create_key") == 0
    assert _patches(fake) == [Decimal("3.60")]
    order.refresh_from_db()
    key_order.refresh_from_db()
    assert order.status == S.DELIVERED and order.key_hash is None
    assert order.top_up_target_limit_usd == Decimal("3.60")
    assert key_order.key_limit_usd == Decimal("3.60")
    assert key_order.key_limit_remaining_usd == Decimal("3.60")
    assert OrderEvent.objects.filter(order=order, message="Top-up target limit decided").count() == 1


def test_the_target_is_stored_before_openrouter_is_called(fake):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    seen = []
    original = fake.update_key

    def update_key(key_hash, **kwargs):
        seen.append(AITokenOrder.objects.get(pk=order.pk).top_up_target_limit_usd)
        return original(key_hash, **kwargs)

    fake.update_key = update_key
    order_fulfil(order_pk=order.pk)
    assert seen == [Decimal("3.60")]


def test_a_lost_patch_response_is_finished_on_retry_without_a_second_raise(fake, settings):
    # given OpenRouter applies the raise but the answer never arrives
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    original = fake.update_key

    def lost(key_hash, **kwargs):
        original(key_hash, **kwargs)
        raise OpenRouterNetworkError("PATCH /keys/{hash}: timed out (ReadTimeout)")

    fake.update_key = lost
    assert order_fulfil(order_pk=order.pk).result == FulfilResult.RETRY
    fake.update_key = original
    # when the retry runs
    _due(order)
    assert order_fulfil(order_pk=order.pk).result == FulfilResult.DELIVERED
    # then it saw the target already applied and did not PATCH again
    assert _patches(fake) == [Decimal("3.60")]
    assert limit_of(fake, key_order) == Decimal("3.60") == delivered_sum(key_order)


def test_a_crash_after_openrouter_applied_but_before_commit_is_finished_once(fake, monkeypatch):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)

    def killed(**kwargs):
        raise WorkerKilled

    with monkeypatch.context() as patched, pytest.raises(WorkerKilled):
        patched.setattr(top_up, "_deliver", killed)
        order_fulfil(order_pk=order.pk)
    # the raise is at OpenRouter, the order is stuck in fulfilling; the reconciler resets it
    assert limit_of(fake, key_order) == Decimal("3.60")
    _reset_claim(order)
    assert order_fulfil(order_pk=order.pk).result == FulfilResult.DELIVERED
    assert _patches(fake) == [Decimal("3.60")]
    key_order.refresh_from_db()
    assert key_order.key_limit_usd == Decimal("3.60") == delivered_sum(key_order)


def test_a_transient_error_before_the_raise_resends_the_same_absolute_value(fake):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    fake.fail_next("update_key", OpenRouterServerError("HTTP 500", status_code=500), times=2)
    assert order_fulfil(order_pk=order.pk).result == FulfilResult.RETRY
    _due(order)
    assert order_fulfil(order_pk=order.pk).result == FulfilResult.RETRY
    _due(order)
    assert order_fulfil(order_pk=order.pk).result == FulfilResult.DELIVERED
    assert _patches(fake) == [Decimal("3.60")] * 3  # two refused, the same value each time
    assert limit_of(fake, key_order) == Decimal("3.60")


def test_a_redelivered_task_after_delivery_does_nothing(fake):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    order_fulfil(order_pk=order.pk)
    for _ in range(3):
        assert order_fulfil(order_pk=order.pk).result == FulfilResult.SKIPPED
    assert _patches(fake) == [Decimal("3.60")]


def test_a_second_top_up_waits_for_an_unconfirmed_first_then_stacks_on_it(fake, monkeypatch):
    # given two paid top-ups; the first one's worker dies after OpenRouter applied its raise
    key_order = delivered_key_order(fake)
    first = paid_top_up(key_order)
    second = paid_top_up(key_order, token_count=400000, base_usd_cost=Decimal("3.60"),
                         markup_amount=Decimal("0.72"), total_usd_cost=Decimal("4.32"))
    with monkeypatch.context() as patched, pytest.raises(WorkerKilled):
        patched.setattr(top_up, "_deliver", lambda **kw: (_ for _ in ()).throw(WorkerKilled()))
        order_fulfil(order_pk=first.pk)
    # when the second runs meanwhile, it backs off instead of stacking on an unconfirmed limit
    assert order_fulfil(order_pk=second.pk).result == FulfilResult.RETRY
    assert AITokenOrder.objects.get(pk=second.pk).top_up_target_limit_usd is None
    # then once the first is finished, the second raises on top of it
    _reset_claim(first)
    assert order_fulfil(order_pk=first.pk).result == FulfilResult.DELIVERED
    _due(second)
    assert order_fulfil(order_pk=second.pk).result == FulfilResult.DELIVERED
    assert _patches(fake) == [Decimal("3.60"), Decimal("7.20")]
    assert limit_of(fake, key_order) == Decimal("7.20") == delivered_sum(key_order)


def test_a_key_disabled_after_checkout_fails_the_top_up_without_a_raise(fake):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    fake.keys[key_order.key_hash]["disabled"] = True
    outcome = order_fulfil(order_pk=order.pk)
    assert outcome.result == FulfilResult.FAILED
    assert _patches(fake) == []
    order.refresh_from_db()
    # certainly not applied: the target is forgotten, so it blocks no other top-up
    assert order.top_up_target_limit_usd is None


def test_a_key_disabled_in_the_store_is_refused_at_the_point_of_purchase(fake):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_disabled=True)
    assert order_fulfil(order_pk=order.pk).reason == OrderReason.RULE_VIOLATION
    assert fake.calls == []


def test_a_limit_changed_by_hand_is_never_lowered(fake):
    # given someone raised the key at OpenRouter to $50 by hand
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    fake.keys[key_order.key_hash]["limit"] = Decimal("50")
    # when the top-up runs
    outcome = order_fulfil(order_pk=order.pk)
    # then staff decide; the key keeps its $50
    assert outcome.result == FulfilResult.FAILED
    assert _patches(fake) == []
    assert limit_of(fake, key_order) == Decimal("50")


def test_out_of_credits_fails_to_staff(fake):
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order)
    fake.fail_next("update_key", OpenRouterPaymentRequired("HTTP 402", status_code=402))
    assert order_fulfil(order_pk=order.pk).reason == OrderReason.OUT_OF_CREDITS
    assert limit_of(fake, key_order) == Decimal("1.80")


def test_the_purchase_rules_apply_to_a_top_up(fake):
    # a top-up whose markup is above the store's rate is refused before OpenRouter is called
    key_order = delivered_key_order(fake)
    order = paid_top_up(key_order, markup_rate=Decimal("0.25"), markup_amount=Decimal("0.45"),
                        total_usd_cost=Decimal("2.25"))
    assert order_fulfil(order_pk=order.pk).reason == OrderReason.RULE_VIOLATION
    assert fake.calls == []
    # and an order that was never paid is not even claimed
    unpaid = paid_top_up(key_order, status=S.PENDING)
    assert order_fulfil(order_pk=unpaid.pk).result == FulfilResult.SKIPPED
    assert fake.calls == []


def test_a_top_up_of_another_customers_key_is_refused_at_the_point_of_purchase(fake):
    key_order = delivered_key_order(fake)
    from tests.factories import UserFactory

    order = paid_top_up(key_order, user=UserFactory())
    assert order_fulfil(order_pk=order.pk).reason == OrderReason.RULE_VIOLATION
    assert fake.calls == []
