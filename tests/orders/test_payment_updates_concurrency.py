"""Real races on PostgreSQL: two paths learning of one payment at the same moment change it once."""

from __future__ import annotations

import contextlib
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.test import Client
from django.urls import reverse

from orders.models import AITokenOrder, OrderEvent, OrderStatus
from orders.services.polling import payments_poll
from storefront.encryption import encrypt
from tests.concurrency import run_together
from tests.conftest import needs_postgres
from tests.factories import OrderFactory
from tests.orders.checkout_support import CALLBACK_SECRET, GATEWAY_URL, paid_json, record_json, signed

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]
S = OrderStatus


@pytest.fixture
def paid_gateway(settings):
    """The gateway says paid; lookups wait for each other so both racers hold the record at once."""
    settings.KRYPTO_EXPRESS_API_URL = GATEWAY_URL
    records: dict[str, dict] = {}
    barrier = threading.Barrier(2, timeout=10)

    def reply(request):
        payment_hash = parse_qs(urlsplit(request.url).query)["hash"][0]
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return 200, {"Content-Type": "application/json"}, json.dumps(records[payment_hash], default=str)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.GET, GATEWAY_URL + "/payment", callback=reply)
        yield records


def test_the_same_paid_callback_twice_at_once_pays_once(paid_gateway, fulfil_delay):
    # given
    order = OrderFactory(callback_secret_encrypted=encrypt(CALLBACK_SECRET))
    paid_gateway[order.payment_hash] = paid_json(order)
    body, signature = signed(paid_json(order))
    answers: list[int] = []

    def deliver():
        response = Client().post(
            reverse("orders:kryptoexpress_callback"), data=body, content_type="application/json",
            HTTP_X_SIGNATURE=signature,
        )
        answers.append(response.status_code)

    # when
    assert run_together(deliver, deliver)[1] == []
    # then
    assert answers == [200, 200]
    order.refresh_from_db()
    assert order.status == S.PAID
    assert OrderEvent.objects.filter(order=order, to_status=S.PAID).count() == 1
    fulfil_delay.assert_called_once_with(order.pk)


def test_a_callback_racing_the_poller_pays_once(paid_gateway, fulfil_delay):
    order = OrderFactory(callback_secret_encrypted=encrypt(CALLBACK_SECRET))
    paid_gateway[order.payment_hash] = paid_json(order)
    body, signature = signed(paid_json(order))
    reports = []

    def callback():
        Client().post(
            reverse("orders:kryptoexpress_callback"), data=body, content_type="application/json",
            HTTP_X_SIGNATURE=signature,
        )

    def poller():
        reports.append(payments_poll(concurrency=2))

    assert run_together(callback, poller)[1] == []
    order.refresh_from_db()
    assert order.status == S.PAID
    assert OrderEvent.objects.filter(order=order, to_status=S.PAID).count() == 1
    assert OrderEvent.objects.filter(order=order).count() == 1
    fulfil_delay.assert_called_once_with(order.pk)
    assert reports[0].checked == 1


def test_parallel_pollers_split_the_work(settings, user):
    settings.KRYPTO_EXPRESS_API_URL = GATEWAY_URL
    orders = OrderFactory.create_batch(300, user=user)
    records = {o.payment_hash: record_json(o) for o in orders}
    requested: list[str] = []
    lock = threading.Lock()

    def reply(request):
        payment_hash = parse_qs(urlsplit(request.url).query)["hash"][0]
        with lock:
            requested.append(payment_hash)
        threading.Event().wait(0.005)
        return 200, {"Content-Type": "application/json"}, json.dumps(records[payment_hash], default=str)

    reports = []
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, GATEWAY_URL + "/payment", callback=reply)
        assert run_together(*[lambda: reports.append(payments_poll(concurrency=4))] * 2)[1] == []
    assert len(requested) == 300 == len(set(requested))  # every order once, none twice
    assert sorted(r.checked for r in reports)[0] > 0  # both did a share
    assert sum(r.checked for r in reports) == 300
    assert not AITokenOrder.objects.filter(poll_lease_until__isnull=False).exists()
