"""The whole payment path over real HTTP: checkout → gateway sandbox → control page → signed callback.

Nothing is stubbed between the store and the sandboxes: the store's client creates the payment
on the KryptoExpress sandbox, a "customer" clicks the sandbox control page, the sandbox sends
its signed callback to the store's callback URL (SITE_URL = the live server), and the store
re-reads the payment and moves the order. Only the fulfilment task is counted instead of run.
"""

from __future__ import annotations

import re
import time
from unittest import mock

import pytest
import requests
from django.conf import settings as django_settings

from orders.models import AITokenOrder, EventSource, OrderReason, OrderStatus
from orders.services.polling import payments_poll
from payments.sandbox.delivery import wait_for_deliveries
from payments.sandbox.models import SandboxCallbackAttempt
from tests.live_sandboxes import use_live_gateway, use_live_openrouter

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
S = OrderStatus
SONNET = "anthropic/claude-3-sonnet"


@pytest.fixture
def store(live_server, settings):
    settings.SITE_URL = live_server.url
    use_live_gateway(settings, live_server.url)
    use_live_openrouter(settings, live_server.url)
    settings.SANDBOX = True
    return live_server.url


@pytest.fixture
def browser(store, client, user):
    """A logged-in customer's browser: a requests.Session carrying a real session cookie."""
    client.force_login(user)
    session = requests.Session()
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    session.cookies.set(django_settings.SESSION_COOKIE_NAME, cookie.value)
    yield session
    session.close()
    assert wait_for_deliveries(timeout=15), "a sandbox callback is still being delivered"


def form_fields(html: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if token:
        fields["csrfmiddlewaretoken"] = token.group(1)
    return fields


def place_order(browser, store) -> AITokenOrder:
    review = browser.get(f"{store}/orders/new/", params={"model": SONNET, "tokens": "200000"}, timeout=10)
    assert review.status_code == 200, review.text[:500]
    fields = form_fields(review.text)
    assert fields["seen_total"] == "2.16"
    placed = browser.post(
        f"{store}/orders/", data={**fields, "crypto": "BTC"}, headers={"Referer": store + "/orders/new/"},
        allow_redirects=False, timeout=20,
    )
    assert placed.status_code == 302, placed.text[:1000]
    order = AITokenOrder.objects.get()
    assert placed.headers["Location"] == f"/orders/{order.order_id}/"
    return order


def click_control(browser, store, order_page_html: str, action: str) -> None:
    control_path = re.search(r'href="(/sandbox/kryptoexpress/control/[^"]+/)"', order_page_html).group(1)
    control = browser.get(store + control_path, timeout=10)
    assert control.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', control.text).group(1)
    done = browser.post(
        store + control_path, data={"csrfmiddlewaretoken": token, "action": action},
        headers={"Referer": store + control_path}, allow_redirects=False, timeout=10,
    )
    assert done.status_code == 302, done.text[:500]


def wait_for_status(order: AITokenOrder, *statuses: str, timeout: float = 15.0) -> AITokenOrder:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.status in statuses:
            return order
        time.sleep(0.05)
    raise AssertionError(f"order stayed {order.status}")


def test_order_pay_callback_paid(browser, store, sonnet, fulfil_delay):
    # given: a customer places an order; the gateway sandbox made the payment
    order = place_order(browser, store)
    assert order.status == S.PENDING and order.payment_hash and order.crypto_amount
    page = browser.get(f"{store}/orders/{order.order_id}/", timeout=10)
    assert page.status_code == 200
    assert f'data-value="{order.address}"' in page.text
    # when: they pay in full on the sandbox control page
    click_control(browser, store, page.text, "pay")
    # then: the signed callback reaches the store, which re-reads the payment and marks it paid
    order = wait_for_status(order, S.PAID)
    assert wait_for_deliveries(timeout=15)
    assert order.paid_at is not None
    event = order.events.get(to_status=S.PAID)
    assert event.source == EventSource.CALLBACK
    fulfil_delay.assert_called_once_with(order.pk)
    attempt = SandboxCallbackAttempt.objects.get()
    assert attempt.ok and attempt.status_code == 200
    # and the page says so
    status = browser.get(f"{store}/orders/{order.order_id}/status/", timeout=10)
    assert "Your payment has arrived" in status.text
    # and a poll afterwards changes nothing
    report = payments_poll()
    assert report.checked == 0 and report.changed == 0
    fulfil_delay.assert_called_once()


@pytest.mark.parametrize(
    ("action", "status", "reason"),
    [
        ("pay_wrong_amount", S.NEEDS_REVIEW, OrderReason.WRONG_AMOUNT),
        ("pay_late", S.NEEDS_REVIEW, OrderReason.PAID_LATE),
        ("expire", S.EXPIRED, ""),
    ],
)
def test_wrong_late_and_expired_payments_over_http(browser, store, sonnet, fulfil_delay, action, status, reason):
    order = place_order(browser, store)
    page = browser.get(f"{store}/orders/{order.order_id}/", timeout=10)
    with mock.patch("orders.alerts.alert_staff"):
        click_control(browser, store, page.text, action)
        order = wait_for_status(order, status)
        assert wait_for_deliveries(timeout=15)
    assert order.reason == reason
    fulfil_delay.assert_not_called()


def test_poller_finds_the_payment_when_the_callback_is_lost(browser, store, sonnet, fulfil_delay, settings):
    order = place_order(browser, store)
    page = browser.get(f"{store}/orders/{order.order_id}/", timeout=10)
    # The callback cannot arrive: the store's callback URL is refused.
    AITokenOrder.objects.filter(pk=order.pk).update(callback_secret_encrypted="")
    click_control(browser, store, page.text, "pay")
    time.sleep(0.3)
    order.refresh_from_db()
    assert order.status == S.PENDING
    report = payments_poll()
    assert (report.checked, report.changed, report.errors) == (1, 1, 0)
    order.refresh_from_db()
    assert order.status == S.PAID
    assert order.events.get(to_status=S.PAID).source == EventSource.POLLER
    fulfil_delay.assert_called_once_with(order.pk)
