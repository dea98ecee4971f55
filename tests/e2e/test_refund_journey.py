"""A refund in a real browser: pay late → give an address → staff refund → the customer sees the transaction.

The customer checks out through the real pages, "pays" after expiry on the gateway sandbox's
control page (its signed callback puts the order under review), enters a refund address on the
order page (a typo first, which is refused next to the field), then a staff member runs the admin
action "Refund to customer…", reads the dry run and confirms; the gateway sandbox withdraws the
payment once, and the customer's order page shows the sent refund with its transaction. Every
customer page is checked with axe-core and for sideways scrolling at 1280 and 390 px.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import AITokenOrder, OrderStatus, Refund, RefundStatus
from payments.sandbox.delivery import wait_for_deliveries
from payments.sandbox.models import SandboxPayment, SandboxWithdrawal
from tests.e2e.page_checks import assert_accessible, assert_no_horizontal_overflow
from tests.e2e.test_journey import MODEL_ID, PACKAGE, expected_total, offered_catalogue  # noqa: F401 - fixture
from tests.factories import StaffFactory, UserFactory
from tests.orders.refund_support import BTC_REFUND_ADDRESS, paid_sandbox_order

pytestmark = [pytest.mark.e2e, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)
STATUS_TIMEOUT_MS = 30_000


def log_in(page, store: str, user) -> None:
    """Give the browser a real session cookie for `user` (logging in is covered by its own tests)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": store}])


def check_customer_page(page, shoot, name: str) -> None:
    """The page at both widths: a screenshot each, axe-core clean, no sideways scroll."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_no_horizontal_overflow(page)
        assert_accessible(page)
        shoot(page, f"refund-{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_paid_late_order_is_refunded_to_the_customers_address(store, offered_catalogue, page, shoot):  # noqa: F811
    model = offered_catalogue
    package_name, package_tokens = PACKAGE
    _, total = expected_total(model, package_tokens)
    customer = UserFactory()
    log_in(page, store, customer)

    # 1. Check out through the real pages, in Bitcoin.
    page.goto(f"{store}/?model={MODEL_ID}")
    card = page.locator(".package-card").filter(has=page.get_by_role("heading", name=package_name, exact=True))
    card.get_by_role("link", name=re.compile(r"^Order")).click()
    page.get_by_role("radio", name=re.compile(r"Bitcoin")).check()
    page.get_by_role("button", name=f"Place order and pay ${total}").click()
    expect(page).to_have_url(re.compile(r"/orders/[^/]+/$"))
    order = AITokenOrder.objects.get(user=customer)

    # 2. Pay after expiry on the gateway sandbox: the signed callback puts the order under review.
    control_path = page.get_by_role("link", name="Open the sandbox payment simulator").get_attribute("href")
    wallet = page.context.new_page()
    wallet.goto(store + control_path)
    wallet.get_by_role("button", name="Pay after expiry").click()
    expect(wallet.get_by_text(re.compile(r"Done: Pay after expiry\."))).to_be_visible()
    expect(wallet.get_by_role("heading", name="Sample refund addresses")).to_be_visible()
    wallet.close(run_before_unload=True)  # no waiting on Chromium to finish closing it (once hung 300 s)
    page.bring_to_front()
    expect(page.locator("#order-status .badge")).to_have_text("Under review", timeout=STATUS_TIMEOUT_MS)
    assert wait_for_deliveries(timeout=15)
    order.refresh_from_db()
    assert order.status == OrderStatus.NEEDS_REVIEW

    # 3. The order page asks for a refund address on the order's network.
    page.reload()
    refund_box = page.locator("#refund")
    expect(refund_box.get_by_role("heading", name="Refund")).to_be_visible()
    address_field = refund_box.get_by_label("Your Bitcoin address")
    check_customer_page(page, shoot, "01-asks-for-address")

    # A typo (checksum flipped) is refused next to the field, and nothing is recorded.
    address_field.fill(BTC_REFUND_ADDRESS[:-1] + ("q" if BTC_REFUND_ADDRESS[-1] != "q" else "p"))
    refund_box.get_by_role("button", name="Send my refund here").click()
    expect(page.locator("#refund-address-error")).to_contain_text("checksum does not match")
    assert not Refund.objects.filter(order=order).exists()
    check_customer_page(page, shoot, "02-typo-refused")

    page.locator("#refund").get_by_label("Your Bitcoin address").fill(BTC_REFUND_ADDRESS)
    page.locator("#refund").get_by_role("button", name="Send my refund here").click()
    expect(page.get_by_text("Thank you — we have your refund address.")).to_be_visible()
    expect(page.locator("#refund")).to_contain_text(BTC_REFUND_ADDRESS)
    assert Refund.objects.get(order=order).status == RefundStatus.REQUESTED
    check_customer_page(page, shoot, "03-address-recorded")

    # 4. Staff: the admin action shows the dry run; confirming sends the refund once.
    staff_page = page.context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(staff_page, store, StaffFactory())
    staff_page.goto(f"{store}/admin/orders/aitokenorder/?q={order.order_id}")
    staff_page.locator(f'input[name="_selected_action"][value="{order.pk}"]').check()
    staff_page.locator('select[name="action"]').select_option("refund_to_customer")
    staff_page.locator(".actions").get_by_role("button", name="Go").click()
    expect(staff_page.get_by_role("heading", name="Dry run — nothing has been sent")).to_be_visible()
    expect(staff_page.locator(".refund-address")).to_have_text(BTC_REFUND_ADDRESS)
    expect(staff_page.get_by_text("The customer receives")).to_be_visible()
    shoot(staff_page, "refund-04-staff-dry-run")
    assert SandboxWithdrawal.objects.count() == 0
    staff_page.get_by_role("button", name="Confirm: send the refund").click()
    expect(staff_page.get_by_text(re.compile(r"refund sent"))).to_be_visible()
    shoot(staff_page, "refund-05-staff-sent")
    staff_page.context.close()

    withdrawal = SandboxWithdrawal.objects.get()
    assert withdrawal.to_address == BTC_REFUND_ADDRESS and withdrawal.payment.hash == order.payment_hash
    assert SandboxPayment.objects.get(hash=order.payment_hash).is_withdrawn
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED

    # 5. The customer sees the sent refund with its transaction and a block-explorer link.
    page.reload()
    expect(page.locator("#order-status .badge")).to_have_text("Refunded")
    expect(page.locator("#refund")).to_contain_text("Refund sent")
    tx_id = withdrawal.tx_ids[0]
    expect(page.locator("#refund")).to_contain_text(tx_id)
    link = page.locator("#refund").get_by_role("link", name="view on a block explorer")
    assert link.get_attribute("href") == f"https://mempool.space/tx/{tx_id}"
    check_customer_page(page, shoot, "06-refund-sent")
    assert page.js_errors == [], page.js_errors


def test_staff_mark_a_delivered_order_refundable_and_the_customer_is_asked_for_an_address(store, page, shoot):
    """A customer complaint: staff mark a delivered order refundable in the admin (a reason is required),
    the customer's order page then offers the refund and takes the address; staff refund it."""
    customer = UserFactory()
    order = paid_sandbox_order(user=customer, status=OrderStatus.DELIVERED, key_hash="e" * 64, key_disabled=True,
                               key_usage_usd=0, delivered_at=timezone.now())
    reason = "Complaint 77: the model was not what they expected"

    staff_page = page.context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(staff_page, store, StaffFactory())
    staff_page.goto(f"{store}/admin/orders/aitokenorder/{order.pk}/change/")
    staff_page.get_by_role("link", name="Mark refundable…").click()
    expect(staff_page.get_by_label("Reason (staff only)")).to_be_visible()
    staff_page.get_by_role("button", name="Mark refundable").click()  # no reason: refused, nothing marked
    expect(staff_page.locator(".errorlist")).to_contain_text("This field is required")
    order.refresh_from_db()
    assert order.refundable_marked_at is None
    staff_page.get_by_label("Reason (staff only)").fill(reason)
    shoot(staff_page, "refund-marked-01-staff-mark")
    staff_page.get_by_role("button", name="Mark refundable").click()
    expect(staff_page.get_by_text(re.compile(r"marked refundable"))).to_be_visible()
    staff_page.context.close()

    log_in(page, store, customer)
    page.goto(f"{store}/orders/{order.order_id}/")
    expect(page.locator("#order-status")).to_contain_text("We are offering you a refund")
    refund_box = page.locator("#refund")
    expect(refund_box.get_by_role("heading", name="Refund")).to_be_visible()
    expect(refund_box).to_contain_text("network fee")
    assert reason not in page.content()
    check_customer_page(page, shoot, "marked-02-asks-for-address")
    refund_box.get_by_label("Your Bitcoin address").fill(BTC_REFUND_ADDRESS)
    refund_box.get_by_role("button", name="Send my refund here").click()
    expect(page.get_by_text("Thank you — we have your refund address.")).to_be_visible()
    check_customer_page(page, shoot, "marked-03-address-recorded")
    assert page.js_errors == [], page.js_errors
