"""order_fulfil: the one purchase path (unit tests against an in-memory OpenRouter account)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import F
from django.utils import timezone

from openrouter.client import (
    OpenRouterAuthError,
    OpenRouterBadRequest,
    OpenRouterForbidden,
    OpenRouterNetworkError,
    OpenRouterPaymentRequired,
    OpenRouterRateLimited,
    OpenRouterServerError,
)
from orders.models import AITokenOrder, OrderEvent, OrderReason, OrderStatus
from orders.services.fulfilment import FulfilOutcome, FulfilResult, key_name, order_fulfil
from orders.services.transitions import order_transition
from orders.tasks import order_fulfil as fulfil_order
from storefront.encryption import decrypt
from tests.factories import OrderFactory
from tests.orders.fulfilment_fakes import fake_openrouter_account, paid_order  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.FULFIL_RETRY_BASE_SECONDS = 2.0
    settings.FULFIL_RETRY_MAX_SECONDS = 300.0
    settings.FULFIL_MAX_ATTEMPTS = 6
    settings.KEY_EXPIRES_DAYS = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_paid_order_gets_exactly_one_key_for_its_base_cost(
    fake_openrouter, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    order = paid_order()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        outcome = order_fulfil(order_pk=order.pk)
    # then
    order.refresh_from_db()
    assert outcome.result is FulfilResult.DELIVERED
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at is not None
    assert order.fulfil_attempts == 1
    keys = fake_openrouter.live_keys(order.order_id)
    assert len(keys) == 1
    assert keys[0]["name"] == key_name(order) == f"Token Store {order.order_id}"
    assert keys[0]["limit"] == order.base_usd_cost == Decimal("1.80")
    assert keys[0]["expires_at"] is None
    assert order.key_hash == keys[0]["hash"]
    plaintext = fake_openrouter.plaintexts[0]
    assert order.key_encrypted != plaintext and plaintext not in order.key_encrypted
    assert decrypt(order.key_encrypted) == plaintext
    assert order.key_limit_remaining_usd == Decimal("1.80")
    assert order.key_usage_usd == Decimal("0")
    assert order.fulfilling_since is None
    steps = list(OrderEvent.objects.filter(order=order).exclude(to_status="").values_list("from_status", "to_status"))
    assert steps[-2:] == [("paid", "fulfilling"), ("fulfilling", "delivered")]
    customer = [m for m in mailoutbox if order.user.email in m.to and "ready" in m.subject]
    assert len(customer) == 1 and order.order_id in customer[0].body
    assert f"/orders/{order.order_id}/" in customer[0].body


def test_key_expiry_follows_the_setting(fake_openrouter, settings):
    settings.KEY_EXPIRES_DAYS = 30
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    expires = fake_openrouter.live_keys(order.order_id)[0]["expires_at"]
    assert timedelta(days=29, hours=23) < expires - timezone.now() <= timedelta(days=30)
    # the order remembers what OpenRouter was told, whatever the setting says later
    order.refresh_from_db()
    assert order.key_expires_at == expires
    settings.KEY_EXPIRES_DAYS = 0
    from orders.views.delivery_context import delivery_context

    assert delivery_context(order)["delivery"].expires_at == expires


def test_calling_again_after_delivery_buys_nothing(fake_openrouter):
    order = paid_order()
    order_fulfil(order_pk=order.pk)
    again = order_fulfil(order_pk=order.pk)
    assert again.result is FulfilResult.SKIPPED
    assert fake_openrouter.calls.count("create_key") == 1
    assert len(fake_openrouter.keys) == 1


@pytest.mark.parametrize(
    "status",
    [
        OrderStatus.PENDING,
        OrderStatus.EXPIRED,
        OrderStatus.NEEDS_REVIEW,
        OrderStatus.FAILED,
        OrderStatus.REFUNDED,
        OrderStatus.FULFILLING,
        OrderStatus.DELIVERED,
    ],
)
def test_orders_not_in_paid_never_reach_openrouter(fake_openrouter, status):
    order = paid_order(status=status) if status != OrderStatus.PENDING else OrderFactory()
    before = AITokenOrder.objects.get(pk=order.pk)
    outcome = order_fulfil(order_pk=order.pk)
    after = AITokenOrder.objects.get(pk=order.pk)
    assert outcome.result is FulfilResult.SKIPPED
    assert fake_openrouter.calls == []
    assert after.status == before.status
    assert after.fulfil_attempts == before.fulfil_attempts


def test_unknown_order_is_skipped(fake_openrouter):
    assert order_fulfil(order_pk=987654).result is FulfilResult.SKIPPED
    assert fake_openrouter.calls == []


@pytest.mark.parametrize(
    ("overrides", "setting", "fragment"),
    [
        ({"paid_at": None}, None, "paid_at"),
        ({"markup_amount": Decimal("0.37"), "total_usd_cost": Decimal("2.17")}, None, "markup"),
        ({"total_usd_cost": Decimal("2.26")}, None, "total"),
        ({"token_count": 300000}, None, "re-quoted base"),
        ({"prompt_price": Decimal("0.000004")}, None, "re-quoted base"),
        ({"markup_rate": Decimal("0.25"), "markup_amount": Decimal("0.45"), "total_usd_cost": Decimal("2.25")}, None,
         "markup rate"),
        # a MARKUP_RATE raised past 20% (settings refuse it at start; the purchase check holds anyway)
        ({"markup_rate": Decimal("0.25"), "markup_amount": Decimal("0.45"), "total_usd_cost": Decimal("2.25")},
         ("MARKUP_RATE", Decimal("0.25")), "markup rate"),
        ({"key_hash": "already-has-one"}, None, "already holds a key"),
        ({}, ("MAX_ORDER_USD", Decimal("2.00")), "exceeds the cap"),
        ({}, ("MAX_ORDER_USD", Decimal("1.50")), "key limit"),
    ],
)
def test_rule_violation_at_the_point_of_purchase_buys_nothing(
    fake_openrouter, mailoutbox, settings, overrides, setting, fragment
):
    # given an order whose numbers break rule 1–3 (tampered row, or a cap lowered since)
    order = paid_order(**overrides)
    if setting:
        setattr(settings, *setting)
    # when
    outcome = order_fulfil(order_pk=order.pk)
    # then
    order.refresh_from_db()
    assert outcome.result is FulfilResult.FAILED
    assert order.status == OrderStatus.FAILED
    assert order.reason == OrderReason.RULE_VIOLATION
    assert "create_key" not in fake_openrouter.calls
    event = OrderEvent.objects.filter(order=order, to_status=OrderStatus.FAILED).get()
    assert any(fragment in v for v in event.details["violations"])
    assert any(m.subject.startswith("[Django] URGENT") or "URGENT" in m.subject for m in mailoutbox)


def test_paid_status_without_a_paid_event_is_a_violation(fake_openrouter):
    # A row flipped to `paid` by hand (not through a verified payment) is never bought for.
    order = OrderFactory(status=OrderStatus.PAID, paid_at=timezone.now())
    outcome = order_fulfil(order_pk=order.pk)
    assert outcome.result is FulfilResult.FAILED
    assert "create_key" not in fake_openrouter.calls


@pytest.mark.parametrize(
    "exc",
    [
        OpenRouterServerError("HTTP 500", status_code=500),
        OpenRouterServerError("HTTP 503", status_code=503),
        OpenRouterNetworkError("timed out"),
        OpenRouterRateLimited("HTTP 429"),
    ],
)
def test_transient_error_returns_order_to_paid_with_backoff(fake_openrouter, exc):
    # given
    order = paid_order()
    fake_openrouter.fail_next("create_key", exc)
    # when
    outcome = order_fulfil(order_pk=order.pk)
    # then
    order.refresh_from_db()
    assert outcome.result is FulfilResult.RETRY
    assert 1.0 <= outcome.retry_in <= 3.0  # 2 s ± 25 % jitter
    assert order.status == OrderStatus.PAID
    assert order.fulfil_attempts == 1
    assert order.fulfil_retry_at > timezone.now()
    assert fake_openrouter.live_keys() == []


def test_rate_limit_retry_after_is_honoured(fake_openrouter):
    order = paid_order()
    exc = OpenRouterRateLimited("HTTP 429", retry_after=42.0)
    fake_openrouter.fail_next("create_key", exc)
    outcome = order_fulfil(order_pk=order.pk)
    assert outcome.retry_in >= 42.0


def test_a_duplicate_message_during_backoff_does_not_claim(fake_openrouter):
    order = paid_order()
    fake_openrouter.fail_next("create_key", OpenRouterServerError("HTTP 500", status_code=500))
    order_fulfil(order_pk=order.pk)
    outcome = order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    assert outcome.result is FulfilResult.NOT_DUE
    assert outcome.retry_in > 0
    assert order.fulfil_attempts == 1
    assert fake_openrouter.calls.count("create_key") == 1


def fulfil_as_backoff_allows(order: AITokenOrder, *, attempts: int) -> list[FulfilOutcome]:
    """Run the fulfil task up to `attempts` times on a frozen clock, each run once the previous
    one's backoff has passed; stops after a delivery."""
    outcomes = []
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(attempts):
            outcome = order_fulfil(order_pk=order.pk)
            outcomes.append(outcome)
            if outcome.result is FulfilResult.DELIVERED:
                break
            clock.shift(timedelta(seconds=(outcome.retry_in or 0) + 0.01))
    return outcomes


def test_500_storm_then_recovery_delivers_one_key(fake_openrouter):
    # given OpenRouter fails four times, then works
    order = paid_order()
    fake_openrouter.fail_next("create_key", OpenRouterServerError("HTTP 502", status_code=502), times=4)
    # when each retry runs once its backoff has passed
    results = [outcome.result for outcome in fulfil_as_backoff_allows(order, attempts=6)]
    # then
    order.refresh_from_db()
    assert results == [FulfilResult.RETRY] * 4 + [FulfilResult.DELIVERED]
    assert order.status == OrderStatus.DELIVERED
    assert order.fulfil_attempts == 5
    assert len(fake_openrouter.live_keys(order.order_id)) == 1
    assert len(fake_openrouter.keys) == 1


def test_backoff_grows_between_attempts(fake_openrouter):
    order = paid_order()
    fake_openrouter.fail_next("create_key", OpenRouterServerError("HTTP 500", status_code=500), times=4)
    delays = [outcome.retry_in for outcome in fulfil_as_backoff_allows(order, attempts=4)]
    assert delays == sorted(delays)
    assert delays[-1] > delays[0] * 3


def test_retries_exhausted_fails_the_order_and_alerts(fake_openrouter, settings, mailoutbox):
    settings.FULFIL_MAX_ATTEMPTS = 3
    order = paid_order()
    fake_openrouter.fail_next("create_key", OpenRouterNetworkError("timed out"), times=99)
    outcomes = [outcome.result for outcome in fulfil_as_backoff_allows(order, attempts=5)]
    order.refresh_from_db()
    assert outcomes[:3] == [FulfilResult.RETRY, FulfilResult.RETRY, FulfilResult.FAILED]
    assert outcomes[3:] == [FulfilResult.SKIPPED, FulfilResult.SKIPPED]
    assert order.status == OrderStatus.FAILED
    assert order.reason == OrderReason.RETRIES_EXHAUSTED
    assert fake_openrouter.calls.count("create_key") == 3
    assert any("kept failing" in m.subject.lower() or order.order_id in m.subject for m in mailoutbox)


def test_402_fails_at_once_with_an_urgent_alert(fake_openrouter, mailoutbox):
    order = paid_order()
    fake_openrouter.fail_next("create_key", OpenRouterPaymentRequired("HTTP 402", status_code=402))
    outcome = order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    assert outcome.result is FulfilResult.FAILED
    assert order.status == OrderStatus.FAILED
    assert order.reason == OrderReason.OUT_OF_CREDITS
    assert order.fulfil_attempts == 1
    assert fake_openrouter.live_keys() == []
    urgent = [m for m in mailoutbox if "URGENT" in m.subject]
    assert urgent and order.order_id in urgent[0].subject


@pytest.mark.parametrize(
    "exc",
    [
        OpenRouterAuthError("HTTP 401", status_code=401),
        OpenRouterForbidden("HTTP 403", status_code=403),
        OpenRouterBadRequest("HTTP 400", status_code=400),
    ],
)
def test_auth_errors_fail_as_configuration(fake_openrouter, mailoutbox, exc):
    order = paid_order()
    fake_openrouter.fail_next("create_key", exc)
    outcome = order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    assert outcome.result is FulfilResult.FAILED
    assert order.reason == OrderReason.CONFIGURATION
    assert mailoutbox and any(order.order_id in m.subject for m in mailoutbox)


def test_response_lost_after_creation_leaves_exactly_one_live_key(fake_openrouter):
    # given OpenRouter creates the key but the response never arrives
    order = paid_order()
    fake_openrouter.lose_next_create()
    first = order_fulfil(order_pk=order.pk)
    assert first.result is FulfilResult.RETRY
    assert len(fake_openrouter.live_keys(order.order_id)) == 1  # the orphan
    orphan = next(iter(fake_openrouter.keys))
    # when the retry runs
    with time_machine.travel(timezone.now() + timedelta(seconds=first.retry_in + 1)):
        second = order_fulfil(order_pk=order.pk)
    # then the orphan was deleted and one new key delivered
    order.refresh_from_db()
    assert second.result is FulfilResult.DELIVERED
    keys = fake_openrouter.live_keys(order.order_id)
    assert len(keys) == 1
    assert keys[0]["hash"] == order.key_hash != orphan
    assert orphan not in fake_openrouter.keys
    assert OrderEvent.objects.filter(order=order, details__key_hash=orphan).exists()


def test_worker_killed_after_creation_before_commit(fake_openrouter, monkeypatch, settings):
    # given a worker that dies between OpenRouter's 201 and our commit
    settings.FULFIL_STUCK_AFTER_SECONDS = 300
    order = paid_order()

    def killed(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr("orders.services.fulfilment._store_key", killed)
    with pytest.raises(SystemExit):
        order_fulfil(order_pk=order.pk)
    monkeypatch.undo()
    import orders.services.fulfilment as fulfilment
    import orders.services.reconciler as reconciler

    monkeypatch.setattr(fulfilment, "get_openrouter_client", lambda: fake_openrouter)
    monkeypatch.setattr(reconciler, "get_openrouter_client", lambda: fake_openrouter)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLING
    orphan = next(iter(fake_openrouter.keys))
    # when the reconciler finds it stuck and the next attempt runs
    from orders.services.reconciler import fulfilment_reconcile

    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        report = fulfilment_reconcile()
        assert order.order_id in report.reset
        outcome = order_fulfil(order_pk=order.pk)
    # then: one live key, the one the order holds
    order.refresh_from_db()
    assert outcome.result is FulfilResult.DELIVERED
    assert order.fulfil_attempts == 2
    keys = fake_openrouter.live_keys(order.order_id)
    assert [k["hash"] for k in keys] == [order.key_hash]
    assert orphan not in fake_openrouter.keys


def test_order_moved_on_while_buying_discards_the_key(fake_openrouter):
    # given staff (or the reconciler) move the order while OpenRouter is creating the key
    order = paid_order()

    def reset(name):
        order_transition(order=AITokenOrder.objects.get(pk=order.pk), from_status="fulfilling", to_status="failed",
                         source="staff", reason=OrderReason.STAFF)

    fake_openrouter.on_create = reset
    outcome = order_fulfil(order_pk=order.pk)
    order.refresh_from_db()
    assert outcome.result is FulfilResult.SKIPPED
    assert order.status == OrderStatus.FAILED
    assert order.key_hash is None and order.key_encrypted == ""
    assert fake_openrouter.live_keys() == []


def _reclaimed_by_a_newer_attempt(order_pk: int) -> None:
    """The reconciler resets the claim (fulfilling → paid) and another worker claims it again."""
    stale = AITokenOrder.objects.get(pk=order_pk)
    assert order_transition(order=stale, from_status="fulfilling", to_status="paid", source="reconciler")
    assert order_transition(
        order=stale, from_status="paid", to_status="fulfilling", source="worker",
        updates={"fulfil_attempts": F("fulfil_attempts") + 1, "fulfilling_since": timezone.now()},
    )


def test_a_stale_attempt_never_delivers_on_a_newer_attempts_claim(fake_openrouter):
    # given attempt 1 is slow at OpenRouter; meanwhile its claim is reset and attempt 2 claims the
    # order (attempt 2 may delete attempt 1's key as an orphan at any moment)
    order = paid_order()
    fake_openrouter.on_create = lambda name: _reclaimed_by_a_newer_attempt(order.pk)
    # when attempt 1's key arrives
    outcome = order_fulfil(order_pk=order.pk)
    # then attempt 1 does not deliver (its key could be dead); it discards its key and leaves the
    # order to attempt 2
    order.refresh_from_db()
    assert outcome.result is FulfilResult.SKIPPED
    assert order.status == OrderStatus.FULFILLING
    assert order.fulfil_attempts == 2
    assert order.key_hash is None and order.key_encrypted == ""
    assert fake_openrouter.live_keys() == []


def test_a_stale_attempts_error_never_unclaims_a_newer_attempt(fake_openrouter):
    # given attempt 1 fails at OpenRouter after attempt 2 has claimed the order
    order = paid_order()

    def reclaimed_then_timeout(name):
        _reclaimed_by_a_newer_attempt(order.pk)
        raise OpenRouterNetworkError("POST /keys: timed out (ReadTimeout)")

    fake_openrouter.on_create = reclaimed_then_timeout
    # when attempt 1 handles its transient error
    outcome = order_fulfil(order_pk=order.pk)
    # then attempt 2 keeps its claim: the order is not put back to `paid` for a third worker
    order.refresh_from_db()
    assert outcome.result is FulfilResult.SKIPPED
    assert order.status == OrderStatus.FULFILLING
    assert order.fulfil_attempts == 2


def test_email_failure_does_not_undo_the_delivery(fake_openrouter, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    # the customer's mail cannot even be queued: the delivery still stands
    monkeypatch.setattr("orders.tasks.mail.send_customer_mail.delay", broken)
    order = paid_order()
    assert order_fulfil(order_pk=order.pk).result is FulfilResult.DELIVERED


# --- the Celery task -------------------------------------------------------------------------------


def test_task_retries_through_a_429_storm_then_delivers(fake_openrouter, settings):
    # Eager mode runs each retry at once; zero backoff lets it proceed.
    settings.FULFIL_RETRY_BASE_SECONDS = 0
    order = paid_order()
    fake_openrouter.fail_next("create_key", OpenRouterRateLimited("HTTP 429"), times=3)
    result = fulfil_order.delay(order.pk)
    order.refresh_from_db()
    assert result.get() == "delivered"
    assert order.status == OrderStatus.DELIVERED
    assert order.fulfil_attempts == 4
    assert len(fake_openrouter.keys) == 1


def test_task_delivered_twice_buys_once(fake_openrouter):
    order = paid_order()
    fulfil_order.delay(order.pk)
    fulfil_order.delay(order.pk)
    assert fake_openrouter.calls.count("create_key") == 1
    assert len(fake_openrouter.live_keys(order.order_id)) == 1


def test_task_gives_up_after_max_attempts(fake_openrouter, settings):
    settings.FULFIL_RETRY_BASE_SECONDS = 0
    settings.FULFIL_MAX_ATTEMPTS = 4
    order = paid_order()
    fake_openrouter.fail_next("create_key", OpenRouterServerError("HTTP 500", status_code=500), times=99)
    fulfil_order.delay(order.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert order.reason == OrderReason.RETRIES_EXHAUSTED
    assert fake_openrouter.calls.count("create_key") == 4


def test_task_options_make_redelivery_safe():
    assert fulfil_order.name == "orders.tasks.order_fulfil"
    assert fulfil_order.acks_late is True
    assert fulfil_order.reject_on_worker_lost is True
    assert fulfil_order.time_limit and fulfil_order.soft_time_limit < fulfil_order.time_limit
    from django.conf import settings

    assert fulfil_order.time_limit < settings.FULFIL_STUCK_AFTER_SECONDS
    assert fulfil_order.time_limit < settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
