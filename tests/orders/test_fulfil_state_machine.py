"""Whatever arrives in whatever order — callbacks, polls, expiry, staff, tasks, crashes, retries,
the reconciler — no key is ever bought for an order that was not paid, and no order ever holds
more than one live key (a hypothesis state machine over one order at a time)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from openrouter.client import OpenRouterNetworkError, OpenRouterPaymentRequired, OpenRouterServerError
from orders.models import AITokenOrder, OrderReason, OrderStatus
from orders.services import fulfilment, reconciler
from orders.services.fulfilment import order_fulfil
from orders.services.reconciler import fulfilment_reconcile
from orders.services.transitions import order_transition
from tests.factories import OrderFactory, UserFactory
from tests.orders.fulfilment_fakes import FakeOpenRouter
from tests.orders.state_machine_support import frozen_clock, run_machine, worker_killed_at

S = OrderStatus
CURRENT: dict = {}


class FulfilmentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeOpenRouter()
        self.fake.on_create = self._check_purchase
        CURRENT["fake"] = self.fake
        self.clock, self.traveller = frozen_clock()
        self.order = OrderFactory(user=CURRENT["user"])
        self.ever_paid = False
        self.bad_purchases: list[str] = []

    def teardown(self) -> None:
        self.clock.stop()
        # Examples share the test's database: leave nothing for the next example's reconciler.
        AITokenOrder.objects.filter(pk=self.order.pk).delete()

    # --- what the purchase spy checks at the moment of buying ----------------------------------
    def _check_purchase(self, name: str) -> None:
        order = AITokenOrder.objects.get(pk=self.order.pk)
        if self.order.order_id not in name:
            self.bad_purchases.append(f"bought for another order: {name}")
        elif order.status != S.FULFILLING or not self.ever_paid:
            self.bad_purchases.append(f"bought while {order.status}, ever paid: {self.ever_paid}")

    def _move(self, from_status, to_status, **kwargs) -> bool:
        order = AITokenOrder.objects.get(pk=self.order.pk)
        moved = order_transition(order=order, from_status=from_status, to_status=to_status, **kwargs)
        if moved and to_status == S.PAID:
            self.ever_paid = True
        return moved

    # --- the gateway ---------------------------------------------------------------------------
    @rule()
    def callback_says_paid(self) -> None:
        self._move(S.PENDING, S.PAID, source="callback", updates={"paid_at": timezone.now()})

    @rule()
    def poller_says_paid(self) -> None:
        self._move(S.PENDING, S.PAID, source="poller", updates={"paid_at": timezone.now()})

    @rule()
    def paid_wrong_amount(self) -> None:
        self._move(S.PENDING, S.NEEDS_REVIEW, source="callback", reason=OrderReason.WRONG_AMOUNT)

    @rule()
    def expires(self) -> None:
        self._move(S.PENDING, S.EXPIRED, source="poller")

    @rule()
    def paid_late(self) -> None:
        self._move(S.EXPIRED, S.NEEDS_REVIEW, source="poller", reason=OrderReason.PAID_LATE)

    # --- staff ---------------------------------------------------------------------------------
    @rule()
    def staff_approves(self) -> None:
        self._move(S.NEEDS_REVIEW, S.PAID, source="staff", updates={"paid_at": timezone.now()})

    @rule()
    def staff_retries(self) -> None:
        self._move(S.FAILED, S.PAID, source="staff", updates={"fulfil_attempts": 0, "fulfil_retry_at": None})

    @rule()
    def staff_refunds(self) -> None:
        self._move([S.FAILED, S.NEEDS_REVIEW], S.REFUNDED, source="staff")

    # --- OpenRouter's mood ---------------------------------------------------------------------
    @rule()
    def openrouter_500(self) -> None:
        self.fake.fail_next("create_key", OpenRouterServerError("HTTP 500", status_code=500))

    @rule()
    def openrouter_timeout_on_listing(self) -> None:
        self.fake.fail_next("list_keys", OpenRouterNetworkError("timed out"))

    @rule()
    def openrouter_out_of_credits(self) -> None:
        self.fake.fail_next("create_key", OpenRouterPaymentRequired("HTTP 402", status_code=402))

    @rule()
    def response_lost(self) -> None:
        self.fake.lose_next_create()

    # --- workers -------------------------------------------------------------------------------
    @rule()
    def task_runs(self) -> None:
        order_fulfil(order_pk=self.order.pk)

    @rule()
    def worker_killed_after_purchase(self) -> None:
        with worker_killed_at(fulfilment, "_store_key"):
            order_fulfil(order_pk=self.order.pk)

    @rule()
    def time_passes(self) -> None:
        self.traveller.shift(timedelta(minutes=6))

    @rule()
    def reconciler_runs(self) -> None:
        fulfilment_reconcile()

    # --- what must always hold -----------------------------------------------------------------
    @invariant()
    def never_bought_unpaid(self) -> None:
        assert self.bad_purchases == []
        if not self.ever_paid:
            assert self.fake.calls.count("create_key") == 0

    @invariant()
    def at_most_one_live_key(self) -> None:
        order = AITokenOrder.objects.get(pk=self.order.pk)
        live = [k["hash"] for k in self.fake.live_keys(order.order_id)]
        assert len(live) <= 1
        if order.status == S.DELIVERED:
            assert live == [order.key_hash]
        if order.status in (S.PENDING, S.EXPIRED, S.REFUNDED, S.NEEDS_REVIEW) and order.key_hash is None:
            assert not (live and not self.ever_paid)


@pytest.mark.django_db
def test_no_unpaid_purchase_and_one_key_whatever_happens(monkeypatch, machine_settings):
    CURRENT["user"] = UserFactory()
    monkeypatch.setattr(fulfilment, "get_openrouter_client", lambda: CURRENT["fake"])
    monkeypatch.setattr(reconciler, "get_openrouter_client", lambda: CURRENT["fake"])
    run_machine(FulfilmentMachine, max_examples=60)

