"""Top-ups with a REAL Celery worker on Redis and both sandboxes over HTTP (live_server).

Checkout → gateway sandbox → signed callback → `paid` → task on Redis → worker PATCHes the key's
limit on the OpenRouter sandbox. With the PATCH's answer lost (applied, then 504), the task's Celery
retry goes through the broker, re-reads the key and finishes without raising it a second time.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from openrouter.sandbox.faults import clear_faults, inject_lost_response
from openrouter.sandbox.models import SandboxFault, SandboxKey
from orders.models import AITokenOrder, OrderStatus
from orders.services.placing import order_place
from payments.sandbox.delivery import wait_for_deliveries
from payments.sandbox.gateway import sandbox_payment_act
from tests.factories import UserFactory
from tests.worker_support import LIVE_WORKER_MARKS, SONNET, place_order, real_worker, use_live_sandboxes, wait_delivered

pytestmark = LIVE_WORKER_MARKS
S = OrderStatus


@pytest.fixture
def worker(live_server, settings):
    use_live_sandboxes(settings=settings, url=live_server.url)
    settings.FULFIL_RETRY_BASE_SECONDS = 0.2
    with real_worker() as running:
        yield running
    assert wait_for_deliveries(timeout=15)
    clear_faults()


def _top_up(user, key_order: AITokenOrder, tokens: int = 200000, total: str = "2.16") -> AITokenOrder:
    return order_place(user=user, model_id=SONNET, token_count=tokens, crypto_type="BTC",
                       seen_total=Decimal(total), idempotency_key=uuid.uuid4(), top_up_of=key_order.order_id)


def _delivered_key(user) -> AITokenOrder:
    order = place_order(user)
    sandbox_payment_act(payment_hash=order.payment_hash, action="pay")
    wait_delivered(order.pk)
    return AITokenOrder.objects.get(pk=order.pk)


def test_a_paid_top_up_raises_the_sandbox_key_through_the_worker(worker):
    user = UserFactory()
    key_order = _delivered_key(user)
    top_up = _top_up(user, key_order)
    sandbox_payment_act(payment_hash=top_up.payment_hash, action="pay")
    wait_delivered(top_up.pk)
    key = SandboxKey.objects.get(hash=key_order.key_hash)
    assert key.limit == Decimal("3.60")
    assert SandboxKey.objects.filter(name__contains=top_up.order_id).count() == 0  # no key bought for it
    key_order.refresh_from_db()
    assert key_order.key_limit_usd == Decimal("3.60")


def test_a_lost_patch_answer_is_retried_through_the_broker_and_raises_once(worker):
    user = UserFactory()
    key_order = _delivered_key(user)
    fault = inject_lost_response(method="PATCH", path_prefix="/keys", status_code=504)
    top_up = _top_up(user, key_order)
    sandbox_payment_act(payment_hash=top_up.payment_hash, action="pay")
    wait_delivered(top_up.pk)
    fault.refresh_from_db()
    assert fault.hits == 1 and SandboxFault.objects.active().count() == 0
    assert SandboxKey.objects.get(hash=key_order.key_hash).limit == Decimal("3.60")
    top_up.refresh_from_db()
    assert top_up.fulfil_attempts == 2
    assert top_up.events.filter(message__startswith="Key limit already at the target").count() == 1


def test_two_top_ups_paid_at_the_same_moment_both_land_once(worker):
    user = UserFactory()
    key_order = _delivered_key(user)
    first = _top_up(user, key_order)
    second = _top_up(user, key_order, tokens=400000, total="4.32")
    for order in (first, second):
        sandbox_payment_act(payment_hash=order.payment_hash, action="pay")
    wait_delivered(first.pk, timeout=30)
    wait_delivered(second.pk, timeout=30)
    assert SandboxKey.objects.get(hash=key_order.key_hash).limit == Decimal("7.20")
    key_order.refresh_from_db()
    assert key_order.key_limit_usd == Decimal("7.20")
