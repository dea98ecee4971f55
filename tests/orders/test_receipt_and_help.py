"""The receipt, the help pages, and what problem states tell the customer (and only staff)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import OrderReason, OrderStatus
from storefront.encryption import encrypt
from tests.factories import OrderFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
S = OrderStatus
KEY = "sk-or-v1-" + "cd" * 32


def receipt_url(order):
    return reverse("orders:receipt", kwargs={"order_id": order.order_id})


def detail_url(order):
    return reverse("orders:detail", kwargs={"order_id": order.order_id})


def delivered_order(user, **kwargs):
    now = timezone.now()
    kwargs.setdefault("crypto_type", "USDT_TRC20")
    kwargs.setdefault("crypto_amount", Decimal("2.16"))
    return OrderFactory(
        user=user, status=S.DELIVERED, paid_at=now, delivered_at=now, key_hash="k" * 64,
        key_encrypted=encrypt(KEY), payment_hash="f" * 64, address="TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE", **kwargs,
    )


def test_receipt_shows_everything_a_bookkeeper_needs_and_never_the_key(user_client, user):
    order = delivered_order(user)
    response = user_client.get(receipt_url(order))
    assert response.status_code == 200
    html = response.content.decode()
    for text in (order.order_id, "200,000", "$1.80", "$0.36", "$2.16 USD", "2.160000 USDT on TRON (TRC-20)",
                 order.address, order.payment_hash, order.model_id, "1 USDT = $1.00"):
        assert text in html, text
    assert 'media="print"' in html and "css/print.css" in html
    assert KEY not in html and "sk-or-v1" not in html


def test_order_page_links_the_receipt_once_paid(user_client, user):
    order = delivered_order(user)
    assert receipt_url(order) in user_client.get(detail_url(order)).content.decode()
    unpaid = OrderFactory(user=user)
    assert receipt_url(unpaid) not in user_client.get(detail_url(unpaid)).content.decode()


@pytest.mark.parametrize("who", ["stranger", "staff", "anonymous"])
def test_receipt_is_for_the_owner_only(client, user, who):
    order = delivered_order(user)
    if who == "stranger":
        client.force_login(UserFactory())
    elif who == "staff":
        client.force_login(StaffFactory())
    response = client.get(receipt_url(order))
    assert response.status_code in ((302,) if who == "anonymous" else (404,))


def test_an_unpaid_order_has_no_receipt(user_client, user):
    assert user_client.get(receipt_url(OrderFactory(user=user))).status_code == 404


@pytest.mark.parametrize("order_id", ["TS-nope", "../../admin", "%00", "x" * 300])
def test_hostile_receipt_ids_are_404(user_client, order_id):
    assert user_client.get(f"/orders/{order_id}/receipt/").status_code == 404


@pytest.mark.parametrize(("name", "heading"), [("help", "Help"), ("terms", "Terms of sale"),
                                               ("refund_policy", "Refund policy")])
def test_help_pages_render_for_everyone_with_the_support_address(client, settings, name, heading):
    settings.SUPPORT_EMAIL = "help@shop.example"
    html = client.get(reverse(f"pages:{name}")).content.decode()
    assert f"<h1>{heading}</h1>" in html
    assert "help@shop.example" in html  # in the footer at least


def test_help_explains_tokens_blending_keys_and_late_payments(client):
    html = client.get(reverse("pages:help")).content.decode()
    for text in ("What is a token?", "blended", "max_tokens", "pay late", "wrong amount"):
        assert text in html


def test_a_shop_can_override_a_page_with_its_own_template(client, settings, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "terms.html").write_text("<p>Our own terms</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    assert client.get(reverse("pages:terms")).content.decode() == "<p>Our own terms</p>"


def test_help_pages_are_get_only(client):
    assert client.post(reverse("pages:help")).status_code == 405


@pytest.mark.parametrize("reason", [OrderReason.OUT_OF_CREDITS, OrderReason.CONFIGURATION,
                                    OrderReason.RETRIES_EXHAUSTED, OrderReason.RULE_VIOLATION])
def test_a_failed_order_explains_next_steps_without_the_internal_reason(user_client, user, settings, reason):
    settings.SUPPORT_EMAIL = "help@shop.example"
    order = OrderFactory(user=user, status=S.FAILED, reason=reason, paid_at=timezone.now())
    html = user_client.get(detail_url(order)).content.decode()
    assert OrderReason(reason).label not in html
    assert "Failed" not in html and "Delayed" in html
    assert "will either complete your order or refund you" in html
    assert "mailto:help@shop.example" in html


def test_staff_see_the_internal_reason(staff_client):
    order = OrderFactory(status=S.FAILED, reason=OrderReason.OUT_OF_CREDITS, paid_at=timezone.now())
    html = staff_client.get(detail_url(order)).content.decode()
    assert "Staff only" in html and "OpenRouter out of credits" in html


@pytest.mark.parametrize("status", [S.EXPIRED, S.NEEDS_REVIEW, S.FAILED, S.REFUNDED])
def test_every_problem_state_shows_how_to_reach_support(user_client, user, settings, status):
    settings.SUPPORT_EMAIL = "help@shop.example"
    order = OrderFactory(user=user, status=status)
    section = user_client.get(detail_url(order)).content.decode().split('id="order-status"')[1].split("</section>")[0]
    assert "mailto:help@shop.example" in section


def test_the_timeline_shows_placed_paid_and_delivered_with_times(user_client, user):
    order = delivered_order(user, crypto_type="BTC", crypto_amount=Decimal("0.00002227"))
    html = user_client.get(detail_url(order)).content.decode()
    timeline = html.split('class="timeline"')[1].split("</ol>")[0]
    assert [label in timeline for label in ("Order placed", "Payment received", "Tokens delivered")] == [True] * 3
    assert timeline.count("<time") == 3


def test_an_unpaid_order_says_pay_with_a_paid_one_paid_with(user_client, user):
    unpaid = OrderFactory(user=user)
    assert "Pay with</dt>" in user_client.get(detail_url(unpaid)).content.decode()
    paid = delivered_order(user)
    html = user_client.get(detail_url(paid)).content.decode()
    assert "Paid with</dt><dd>USDT on TRON (TRC-20)</dd>" in html


def test_without_js_the_copy_and_reveal_buttons_are_marked_js_only(user_client, user):
    html = user_client.get(detail_url(delivered_order(user))).content.decode()
    for attribute in ('data-copy-target="delivered-key"', 'data-reveal-target="delivered-key"'):
        button = html.split(attribute)[0].rsplit("<button", 1)[1]
        assert "js-only" in button
    assert "<noscript>" in html  # the key itself is readable without JS
