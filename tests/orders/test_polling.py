"""The payment poller: what it checks, isolation of failures, bounded concurrency, leases."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.utils import timezone

from orders.models import AITokenOrder, EventSource, OrderReason, OrderStatus
from orders.services.polling import PollReport, payments_poll
from orders.tasks import payments_poll as poll_payments
from storefront.heartbeats import LAST_POLL_OK_KEY, heartbeat_age
from tests.factories import OrderFactory
from tests.orders.checkout_support import GATEWAY_URL, mocked_gateway, paid_json, record_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fulfil_delay")]
S = OrderStatus


class FakeGateway:
    """`GET /payment?hash=` served from a dict of hash → record JSON (or an exception / status)."""

    def __init__(self, rsps, delay: float = 0.0):
        self.records: dict[str, object] = {}
        self.requested: list[str] = []
        self.threads: set[str] = set()
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        rsps.add_callback(responses.GET, GATEWAY_URL + "/payment", callback=self.reply)

    def reply(self, request):
        payment_hash = parse_qs(urlsplit(request.url).query)["hash"][0]
        with self._lock:
            self.requested.append(payment_hash)
            self.threads.add(threading.current_thread().name)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            answer = self.records.get(payment_hash, (404, {"message": "not found"}))
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, tuple):
                return answer[0], {"Content-Type": "application/json"}, json.dumps(answer[1])
            return 200, {"Content-Type": "application/json"}, json.dumps(answer, default=str)
        finally:
            with self._lock:
                self.in_flight -= 1

    def unpaid(self, order):
        self.records[order.payment_hash] = record_json(order)

    def paid(self, order, **overrides):
        self.records[order.payment_hash] = paid_json(order, **overrides)


@pytest.fixture
def gateway(settings):
    with mocked_gateway(settings) as rsps:
        yield FakeGateway(rsps)


def test_poller_checks_pending_and_recently_expired_orders_only(gateway, settings, django_capture_on_commit_callbacks):
    # given
    settings.PAYMENT_LATE_GRACE_HOURS = 24
    now = timezone.now()
    pending = OrderFactory()
    recently_expired = OrderFactory(status=S.EXPIRED, expires_at=now - timedelta(hours=23))
    long_expired = OrderFactory(status=S.EXPIRED, expires_at=now - timedelta(hours=25))
    others = [OrderFactory(status=status, paid_at=now) for status in (S.PAID, S.FULFILLING, S.DELIVERED, S.FAILED,
                                                                       S.NEEDS_REVIEW, S.REFUNDED)]
    being_set_up = OrderFactory(payment_hash=None)
    for order in (pending, recently_expired, long_expired, *others):
        gateway.unpaid(order)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        report = payments_poll()
    # then
    assert sorted(gateway.requested) == sorted([pending.payment_hash, recently_expired.payment_hash])
    assert report == PollReport(checked=2, changed=0, errors=0, seconds=report.seconds, discarded=0)
    assert AITokenOrder.objects.filter(pk=being_set_up.pk).exists()  # young: a checkout is still working on it


def test_poller_applies_what_it_finds(gateway, fulfil_delay, django_capture_on_commit_callbacks):
    now = timezone.now()
    to_pay = OrderFactory()
    to_expire = OrderFactory(expires_at=now - timedelta(seconds=1))
    underpaid = OrderFactory()
    late = OrderFactory(status=S.EXPIRED, expires_at=now - timedelta(hours=1))
    waiting = OrderFactory()
    gateway.paid(to_pay)
    gateway.unpaid(to_expire)
    gateway.paid(underpaid, fiatAmount="1.94")
    gateway.paid(late)
    gateway.unpaid(waiting)
    with mock.patch("orders.alerts.alert_staff"), django_capture_on_commit_callbacks(execute=True):
        report = payments_poll()
    assert (report.checked, report.changed, report.errors) == (5, 4, 0)
    states = {o.pk: (o.status, o.reason) for o in AITokenOrder.objects.all()}
    assert states[to_pay.pk] == (S.PAID, "")
    assert states[to_expire.pk] == (S.EXPIRED, "")
    assert states[underpaid.pk] == (S.NEEDS_REVIEW, OrderReason.WRONG_AMOUNT)
    assert states[late.pk] == (S.NEEDS_REVIEW, OrderReason.PAID_LATE)
    assert states[waiting.pk] == (S.PENDING, "")
    fulfil_delay.assert_called_once_with(to_pay.pk)
    assert AITokenOrder.objects.get(pk=to_pay.pk).events.get().source == EventSource.POLLER


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("slow"),
        requests.exceptions.ConnectionError("refused"),
        (500, {"message": "boom"}),
        (404, {"message": "unknown"}),
        (429, {"message": "slow down"}),
        (200, {"not": "a record"}),
    ],
    ids=["timeout", "connection", "500", "404", "429", "malformed"],
)
def test_one_failing_lookup_never_stops_the_rest(gateway, user, failure, django_capture_on_commit_callbacks):
    orders = OrderFactory.create_batch(6, user=user)
    broken = orders[2]
    for order in orders:
        gateway.paid(order)
    gateway.records[broken.payment_hash] = failure
    with django_capture_on_commit_callbacks(execute=True):
        report = payments_poll(concurrency=2)
    assert (report.checked, report.changed, report.errors) == (6, 5, 1)
    assert AITokenOrder.objects.filter(status=S.PAID).count() == 5
    assert AITokenOrder.objects.get(pk=broken.pk).status == S.PENDING


def test_a_bug_applying_one_record_is_isolated_too(gateway, django_capture_on_commit_callbacks):
    orders = OrderFactory.create_batch(3)
    for order in orders:
        gateway.paid(order)
    from orders.services import payment_updates

    real = payment_updates.order_apply_payment

    def flaky(*, order, record, source):
        if order.pk == orders[0].pk:
            raise RuntimeError("bug")
        return real(order=order, record=record, source=source)

    with mock.patch("orders.services.polling.order_apply_payment", side_effect=flaky), \
            django_capture_on_commit_callbacks(execute=True):
        report = payments_poll()
    assert (report.checked, report.changed, report.errors) == (3, 2, 1)


def test_lookups_run_concurrently_but_bounded_and_db_work_stays_in_the_calling_thread(gateway, user):
    gateway.delay = 0.05
    orders = OrderFactory.create_batch(24, user=user)
    for order in orders:
        gateway.unpaid(order)
    applied_in: set[str] = set()
    from orders.services import payment_updates

    real = payment_updates.order_apply_payment

    def spy(**kwargs):
        applied_in.add(threading.current_thread().name)
        return real(**kwargs)

    started = time.monotonic()
    with mock.patch("orders.services.polling.order_apply_payment", side_effect=spy):
        report = payments_poll(concurrency=4)
    elapsed = time.monotonic() - started
    assert report.checked == 24
    assert 1 < gateway.max_in_flight <= 4
    assert all(name.startswith("payment-poll") for name in gateway.threads)
    assert applied_in == {threading.current_thread().name}
    assert elapsed < 24 * 0.05 * 0.75  # clearly parallel (serial would be 1.2 s)


def test_one_session_is_shared_by_all_lookups(gateway, user):
    for order in OrderFactory.create_batch(10, user=user):
        gateway.unpaid(order)
    with mock.patch("orders.services.polling.requests.Session", wraps=requests.Session) as session_class:
        payments_poll(concurrency=4)
    assert session_class.call_count == 1


def test_each_order_is_checked_once_per_cycle_and_released(gateway, user):
    orders = OrderFactory.create_batch(130, user=user)  # more than one claim batch
    for order in orders:
        gateway.unpaid(order)
    before = timezone.now()
    report = payments_poll(concurrency=2)
    assert report.checked == 130
    assert sorted(gateway.requested) == sorted(o.payment_hash for o in orders)
    assert not AITokenOrder.objects.filter(poll_lease_until__isnull=False).exists()
    assert not AITokenOrder.objects.filter(payment_checked_at__lt=before).exists()
    assert not AITokenOrder.objects.filter(payment_checked_at__isnull=True).exists()


def test_orders_leased_by_another_poller_are_skipped_until_the_lease_runs_out(gateway):
    leased = OrderFactory(poll_lease_until=timezone.now() + timedelta(minutes=2))
    stale_lease = OrderFactory(poll_lease_until=timezone.now() - timedelta(seconds=1))  # a crashed poller's
    gateway.unpaid(leased)
    gateway.unpaid(stale_lease)
    report = payments_poll()
    assert gateway.requested == [stale_lease.payment_hash]
    assert report.checked == 1


def test_budget_stops_claiming_new_work(gateway):
    for order in OrderFactory.create_batch(3):
        gateway.unpaid(order)
    report = payments_poll(budget_seconds=0)
    assert report.checked == 0 and gateway.requested == []
    assert not AITokenOrder.objects.filter(poll_lease_until__isnull=False).exists()


def test_orders_left_without_a_payment_by_a_crash_are_discarded(gateway):
    orphan = OrderFactory(payment_hash=None)
    AITokenOrder.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    young = OrderFactory(payment_hash=None)
    report = payments_poll()
    assert report.discarded == 1
    assert not AITokenOrder.objects.filter(pk=orphan.pk).exists()
    assert AITokenOrder.objects.filter(pk=young.pk).exists()


def test_task_runs_a_cycle_and_records_the_heartbeat(gateway, django_capture_on_commit_callbacks):
    order = OrderFactory()
    gateway.paid(order)
    with django_capture_on_commit_callbacks(execute=True):
        result = poll_payments.delay().get()
    assert result["checked"] == 1 and result["changed"] == 1
    assert poll_payments.name == "orders.tasks.payments_poll"
    assert heartbeat_age(LAST_POLL_OK_KEY) is not None


def test_a_cycle_where_every_lookup_failed_records_no_heartbeat(gateway):
    order = OrderFactory()
    gateway.records[order.payment_hash] = requests.exceptions.ConnectionError("down")
    report = payments_poll()
    assert report.errors == 1
    assert heartbeat_age(LAST_POLL_OK_KEY) is None
