"""Whatever happens to a key's top-ups — payments, retries, lost answers, 5xx, 402, crashes after
OpenRouter applied a raise, the reconciler, staff retries — the key's limit at OpenRouter is the sum
of the base costs of its delivered orders (plus, between a raise and its commit, that one top-up),
is never lowered, and ends exactly equal once the dust settles (a hypothesis state machine)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from hypothesis.strategies import integers, sampled_from

from openrouter.client import OpenRouterNetworkError, OpenRouterPaymentRequired, OpenRouterServerError
from orders.models import AITokenOrder, OrderStatus
from orders.services import fulfilment, top_up
from orders.services.fulfilment import order_fulfil
from orders.services.reconciler import fulfilment_reconcile
from orders.services.transitions import order_transition
from tests.factories import OrderFactory, UserFactory
from tests.orders.fulfilment_fakes import FakeOpenRouter
from tests.orders.state_machine_support import frozen_clock, run_machine, worker_killed_at
from tests.orders.top_up_support import delivered_key_order, delivered_sum

S = OrderStatus
CURRENT: dict = {}
SIZES = {  # token count: (base, markup, total) at Claude 3 Sonnet's blended price and a 20% markup
    200000: (Decimal("1.80"), Decimal("0.36"), Decimal("2.16")),
    400000: (Decimal("3.60"), Decimal("0.72"), Decimal("4.32")),
    1000000: (Decimal("9.00"), Decimal("1.80"), Decimal("10.80")),
}


class LossyOpenRouter(FakeOpenRouter):
    """The fake account, plus PATCHes whose answer is lost after OpenRouter applied them."""

    def __init__(self) -> None:
        super().__init__()
        self.lost_updates = 0
        self.limits_sent: list[Decimal] = []

    def update_key(self, key_hash, *, disabled=None, limit=None):
        if limit is not None:
            self.limits_sent.append(limit)
        info = super().update_key(key_hash, disabled=disabled, limit=limit)
        if self.lost_updates:
            self.lost_updates -= 1
            raise OpenRouterNetworkError("PATCH /keys/{hash}: timed out (ReadTimeout)")
        return info


class TopUpMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fake = LossyOpenRouter()
        CURRENT["fake"] = self.fake
        self.clock, self.traveller = frozen_clock()
        self.key_order = delivered_key_order(self.fake, user=CURRENT["user"])
        self.top_ups: list[AITokenOrder] = []
        self.highest = self.key_order.base_usd_cost

    def teardown(self) -> None:
        try:
            self._settle()
        finally:
            self.clock.stop()
            AITokenOrder.objects.filter(top_up_of=self.key_order).delete()
            AITokenOrder.objects.filter(pk=self.key_order.pk).delete()

    def _settle(self) -> None:
        """The dust settles: faults stop, the reconciler and staff retry; then the limit is exact."""
        self.fake.faults.clear()
        self.fake.lost_updates = 0
        for _ in range(12):
            self.traveller.shift(timedelta(minutes=6))
            fulfilment_reconcile()
            for order in self._orders():
                if order.status == S.FAILED:
                    self._move(order, S.FAILED, S.PAID, source="staff",
                               updates={"fulfil_attempts": 0, "fulfil_retry_at": None})
                if order.status in (S.PAID, S.FAILED):
                    AITokenOrder.objects.filter(pk=order.pk).update(fulfil_retry_at=None)
                    order_fulfil(order_pk=order.pk)
            if not any(o.status in (S.PAID, S.FULFILLING, S.FAILED) for o in self._orders()):
                break
        assert not any(o.status in (S.PAID, S.FULFILLING, S.FAILED) for o in self._orders())
        assert self._limit() == delivered_sum(self.key_order)
        assert AITokenOrder.objects.get(pk=self.key_order.pk).confirmed_key_limit == self._limit()

    # --- helpers -------------------------------------------------------------------------------
    def _orders(self) -> list[AITokenOrder]:
        return list(AITokenOrder.objects.filter(top_up_of=self.key_order).order_by("pk"))

    def _limit(self) -> Decimal:
        return self.fake.keys[self.key_order.key_hash]["limit"]

    def _pick(self, index: int) -> AITokenOrder | None:
        if not self.top_ups:
            return None
        return AITokenOrder.objects.get(pk=self.top_ups[index % len(self.top_ups)].pk)

    def _move(self, order, from_status, to_status, **kwargs) -> bool:
        return order_transition(order=order, from_status=from_status, to_status=to_status, **kwargs)

    # --- the customer and the gateway ------------------------------------------------------------
    @precondition(lambda self: len(self.top_ups) < 3)
    @rule(tokens=sampled_from(sorted(SIZES)))
    def checkout_top_up(self, tokens: int) -> None:
        base, markup, total = SIZES[tokens]
        self.top_ups.append(
            OrderFactory(user=CURRENT["user"], top_up_of=self.key_order, token_count=tokens, base_usd_cost=base,
                         markup_amount=markup, total_usd_cost=total)
        )

    @rule(index=integers(0, 2))
    def payment_verified(self, index: int) -> None:
        order = self._pick(index)
        if order is not None:
            self._move(order, S.PENDING, S.PAID, source="callback", updates={"paid_at": timezone.now()})

    @rule(index=integers(0, 2))
    def payment_expires(self, index: int) -> None:
        order = self._pick(index)
        if order is not None:
            self._move(order, S.PENDING, S.EXPIRED, source="poller")

    # --- OpenRouter's mood ---------------------------------------------------------------------
    @rule()
    def patch_answer_lost(self) -> None:
        self.fake.lost_updates += 1

    @rule(status=sampled_from([500, 402]))
    def patch_refused(self, status: int) -> None:
        error = OpenRouterServerError if status == 500 else OpenRouterPaymentRequired
        self.fake.fail_next("update_key", error(f"HTTP {status}", status_code=status))

    @rule()
    def read_times_out(self) -> None:
        self.fake.fail_next("get_key", OpenRouterNetworkError("timed out"))

    # --- workers, the reconciler, staff ----------------------------------------------------------
    @rule(index=integers(0, 2))
    def task_runs(self, index: int) -> None:
        order = self._pick(index)
        if order is not None:
            order_fulfil(order_pk=order.pk)

    @rule(index=integers(0, 2))
    def task_runs_when_due(self, index: int) -> None:
        order = self._pick(index)
        if order is not None:
            AITokenOrder.objects.filter(pk=order.pk, status=S.PAID).update(fulfil_retry_at=None)
            order_fulfil(order_pk=order.pk)

    @rule(index=integers(0, 2))
    def worker_killed_after_raise(self, index: int) -> None:
        order = self._pick(index)
        if order is None:
            return
        with worker_killed_at(top_up, "_deliver"):
            order_fulfil(order_pk=order.pk)

    @rule()
    def time_passes_and_reconciler_runs(self) -> None:
        self.traveller.shift(timedelta(minutes=6))
        fulfilment_reconcile()

    @rule(index=integers(0, 2))
    def staff_retries(self, index: int) -> None:
        order = self._pick(index)
        if order is not None:
            self._move(order, S.FAILED, S.PAID, source="staff", updates={"fulfil_attempts": 0, "fulfil_retry_at": None})

    # --- what must always hold -----------------------------------------------------------------
    @invariant()
    def limit_is_the_sum_of_delivered_orders(self) -> None:
        limit = self._limit()
        delivered = delivered_sum(self.key_order)
        if limit != delivered:
            # only between a raise and its commit: one unconfirmed top-up whose stored target it is
            unconfirmed = [o for o in self._orders() if o.status != S.DELIVERED and o.top_up_target_limit_usd == limit]
            assert len(unconfirmed) == 1, (limit, delivered)
            assert limit - delivered == unconfirmed[0].base_usd_cost
        assert AITokenOrder.objects.get(pk=self.key_order.pk).confirmed_key_limit == delivered

    @invariant()
    def never_lowered_and_never_a_new_key(self) -> None:
        limit = self._limit()
        assert limit >= self.highest
        self.highest = limit
        assert self.fake.calls.count("create_key") == 0
        assert all(sent > self.key_order.base_usd_cost for sent in self.fake.limits_sent)

    @invariant()
    def at_most_one_unconfirmed_target_per_key(self) -> None:
        holding = [o for o in self._orders() if o.top_up_target_limit_usd is not None
                   and o.status in (S.PAID, S.FULFILLING, S.FAILED)]
        assert len(holding) <= 1


@pytest.mark.django_db
def test_the_key_limit_is_always_the_sum_of_its_delivered_orders(monkeypatch, machine_settings):
    CURRENT["user"] = UserFactory()
    monkeypatch.setattr(fulfilment, "get_openrouter_client", lambda: CURRENT["fake"])
    run_machine(TopUpMachine, max_examples=80)

