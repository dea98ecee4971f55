"""Staff alerts: throttled per kind, never carrying a secret; the watchdog's checks."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core import mail
from django.core.cache import cache

from orders import alerts
from orders.alerts import AlertKind, alert_staff
from orders.services import capacity, watchdog
from orders.services.watchdog import alerts_watchdog
from storefront.heartbeats import LAST_POLL_OK_KEY, LAST_SYNC_OK_KEY, record_poll_ok, record_sync_ok
from tests.conftest import needs_redis

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    settings.ADMINS = [("Staff", "staff@example.com")]
    settings.ALERT_THROTTLE_SECONDS = 900
    settings.CALLBACK_SIGNATURE_ALERT_THRESHOLD = 20


def test_an_alert_emails_the_admins():
    sent = alert_staff(kind="fulfilment_failed", subject="Order TS-1 failed", body="Out of credits.")
    assert sent is True
    (email,) = mail.outbox
    assert email.to == ["staff@example.com"]
    assert "Order TS-1 failed" in email.subject and "Out of credits." in email.body


def test_an_alert_still_goes_out_when_the_cache_is_down(monkeypatch):
    # given: the cache (and so the throttle) raises
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(alerts.cache, "add", broken)
    # when: a caller whose work is already committed raises an alert
    sent = alert_staff(kind="needs_review", subject="Order TS-2 needs review", body="Wrong amount.")
    # then: no exception reaches the caller and staff still hear about it
    assert sent is True
    (email,) = mail.outbox
    assert "Order TS-2 needs review" in email.subject


def test_urgent_alerts_say_so():
    alert_staff(kind="x", subject="OpenRouter 402", body="...", urgent=True)
    assert "URGENT: OpenRouter 402" in mail.outbox[0].subject


def test_a_storm_of_one_kind_sends_one_email_per_window():
    # when: a thousand failures in a burst
    results = [alert_staff(kind="fulfilment_failed", subject=f"Order {i} failed", body="") for i in range(1000)]
    # then
    assert results.count(True) == 1
    assert len(mail.outbox) == 1
    # other kinds are not held back by it
    alert_staff(kind="needs_review", subject="Order 7 needs review", body="")
    assert len(mail.outbox) == 2


def test_the_next_window_reports_how_many_were_held_back():
    for i in range(5):
        alert_staff(kind="poller", subject=f"failure {i}", body="details")
    # the window elapses (the gate key expires)
    cache.delete(alerts._throttle_key("poller"))
    assert alert_staff(kind="poller", subject="failure 5", body="details") is True
    assert len(mail.outbox) == 2
    assert "4 more alert(s) of this kind were held back" in mail.outbox[1].body
    # and the counter starts again
    cache.delete(alerts._throttle_key("poller"))
    alert_staff(kind="poller", subject="failure 6", body="details")
    assert "held back" not in mail.outbox[2].body


def test_throttle_window_really_expires(settings):
    settings.ALERT_THROTTLE_SECONDS = 1
    assert alert_staff(kind="short", subject="a", body="") is True
    assert alert_staff(kind="short", subject="b", body="") is False
    time.sleep(1.2)
    assert alert_staff(kind="short", subject="c", body="") is True


def test_hostile_kind_names_are_safe_cache_keys():
    kind = "needs_review:wrong amount\n\x00" + "x" * 500
    assert alert_staff(kind=kind, subject="a", body="") is True
    assert alert_staff(kind=kind, subject="b", body="") is False
    assert len(alerts._throttle_key(kind)) < 130


def test_alerts_never_carry_a_secret(settings):
    settings.OPENROUTER_API_KEY = "live-management-key-0123456789"
    settings.KRYPTO_EXPRESS_API_KEY = "gateway-api-key-abcdefghijkl"
    body = (
        "Request failed: Authorization: Bearer live-management-key-0123456789; "
        "X-Api-Key: gateway-api-key-abcdefghijkl; the customer's key sk-or-v1-0123456789abcdef0123"
    )
    alert_staff(kind="leaky", subject="key sk-or-v1-deadbeefdeadbeef in subject", body=body)
    email = mail.outbox[0]
    text = email.subject + email.body
    for secret in ("live-management-key-0123456789", "gateway-api-key-abcdefghijkl", "sk-or-v1-0123456789abcdef0123",
                   "deadbeefdeadbeef", settings.SECRET_KEY):
        assert secret not in text
    assert "[redacted]" in email.body


@needs_redis
def test_concurrent_storm_still_sends_one_email():
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: alert_staff(kind="storm", subject=f"{i}", body=""), range(200)))
    assert results.count(True) == 1


# --- The watchdog ------------------------------------------------------------------------------


def _snapshot(balance: str | None, promised: str = "10.00"):
    bal = None if balance is None else Decimal(balance)
    return capacity.CapacitySnapshot(
        balance=bal, promised=Decimal(promised), headroom=None if bal is None else bal - Decimal(promised)
    )


@pytest.fixture
def healthy(monkeypatch, settings):
    """Everything fine: fresh heartbeats, plenty of headroom, no signature failures."""
    settings.CAPACITY_WARNING_USD = Decimal("50.00")
    record_poll_ok()
    record_sync_ok()
    monkeypatch.setattr(capacity, "capacity_snapshot", lambda: _snapshot("500.00"))
    monkeypatch.setattr(watchdog, "_signature_failures", lambda: 0)


def test_watchdog_is_quiet_when_all_is_well(healthy):
    report = alerts_watchdog()
    assert report.alerts == []
    assert report.capacity_headroom == Decimal("490.00")
    assert mail.outbox == []


def test_watchdog_alerts_when_capacity_is_low(healthy, monkeypatch):
    monkeypatch.setattr(capacity, "capacity_snapshot", lambda: _snapshot("55.00", promised="20.00"))
    report = alerts_watchdog()
    assert report.alerts == [AlertKind.CAPACITY_LOW]
    assert "$35.00" in mail.outbox[0].subject
    # one email however often the watchdog runs
    alerts_watchdog()
    alerts_watchdog()
    assert len(mail.outbox) == 1


def test_watchdog_alerts_urgently_when_balance_unknown(healthy, monkeypatch):
    monkeypatch.setattr(capacity, "capacity_snapshot", lambda: _snapshot(None))
    report = alerts_watchdog()
    assert report.alerts == [AlertKind.CAPACITY_UNKNOWN]
    assert "URGENT: OpenRouter balance unknown" in mail.outbox[0].subject


def test_watchdog_alerts_when_the_poller_stops_succeeding(healthy, settings):
    settings.HEALTH_POLL_MAX_AGE_SECONDS = 300
    record_poll_ok(at=time.time() - 301)
    report = alerts_watchdog()
    assert report.alerts == [AlertKind.POLLER_FAILING]
    assert "301 s ago" in mail.outbox[0].body or "302 s ago" in mail.outbox[0].body


def test_watchdog_alerts_when_the_sync_never_succeeded(healthy):
    cache.delete(LAST_SYNC_OK_KEY)
    report = alerts_watchdog()
    assert report.alerts == [AlertKind.SYNC_FAILING]
    assert "No successful catalogue sync" in mail.outbox[0].body


def test_watchdog_alerts_on_signature_failures_above_the_threshold(healthy, monkeypatch, settings):
    monkeypatch.setattr(watchdog, "_signature_failures", lambda: 19)
    assert alerts_watchdog().alerts == []
    monkeypatch.setattr(watchdog, "_signature_failures", lambda: 20)
    assert alerts_watchdog().alerts == [AlertKind.CALLBACK_SIGNATURES]
    assert "20 payment callbacks" in mail.outbox[0].subject


def test_watchdog_reads_the_callback_failure_counter(healthy, monkeypatch):
    from orders.services import payment_updates

    monkeypatch.undo()  # use the real counter ...
    record_poll_ok()
    record_sync_ok()
    monkeypatch.setattr(capacity, "capacity_snapshot", lambda: _snapshot("500.00"))
    for _ in range(21):  # ... fed the way the callback view feeds it
        payment_updates._count_signature_failure()
    assert AlertKind.CALLBACK_SIGNATURES in alerts_watchdog().alerts


def test_watchdog_refreshes_the_dashboard_capacity(healthy):
    from orders.services.capacity_cache import capacity_cached

    assert capacity_cached() is None
    alerts_watchdog()
    cached = capacity_cached()
    assert cached is not None and cached.balance == Decimal("500.00")


def test_watchdog_task_is_scheduled(settings):
    from orders.tasks import alerts_watchdog as staff_watchdog

    assert staff_watchdog.name == "orders.tasks.alerts_watchdog"
    assert any(spec["task"] == staff_watchdog.name for spec in settings.PERIODIC_TASKS.values())


def test_heartbeat_keys_are_the_documented_ones():
    assert (LAST_POLL_OK_KEY, LAST_SYNC_OK_KEY) == ("health:last_poll_ok", "health:last_sync_ok")
