"""The customer's order pages and JSON API: what they show, to whom, and that they stay local."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.models import OrderEvent, OrderReason, OrderStatus
from orders.services.transitions import order_record_event
from orders.views.order_pages import FINAL_STATUSES, STATUS_EXPLANATIONS
from storefront.encryption import encrypt
from tests.factories import OrderFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
S = OrderStatus


def detail_url(order):
    return reverse("orders:detail", kwargs={"order_id": order.order_id})


def status_url(order):
    return reverse("orders:status_fragment", kwargs={"order_id": order.order_id})


def api_url(order):
    return reverse("orders:api_detail", kwargs={"order_id": order.order_id})


@pytest.fixture
def no_remote_calls():
    """Any outbound HTTP while rendering fails the test (nothing is registered)."""
    with responses.RequestsMock() as rsps:
        yield rsps
    assert len(rsps.calls) == 0


# --- the payment page ---------------------------------------------------------------------------


def test_payment_page_shows_exact_amount_address_network_qr_and_countdown(user_client, user, no_remote_calls):
    # given
    order = OrderFactory(user=user, crypto_amount=Decimal("0.00002227"), address="bc1qexampleaddress")
    # when
    response = user_client.get(detail_url(order))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="pay-amount"' in html and 'data-value="0.00002227"' in html
    assert 'id="pay-address"' in html and 'data-value="bc1qexampleaddress"' in html
    assert 'data-copy-target="pay-amount"' in html and 'data-copy-target="pay-address"' in html
    assert "Pay with <strong>Bitcoin</strong>" in html
    assert 'data-value="Bitcoin"' in html  # the network, spelled out
    assert "exchanges often deduct" in html
    uri = f"bitcoin:bc1qexampleaddress?amount=0.00002227&label=Token%20Store%20order%20{order.order_id}"
    assert response.context["payment_uri"] == uri
    assert f'href="{uri.replace("&", "&amp;")}"' in html and "Open in wallet" in html  # BIP21 hand-off to a wallet app
    assert "1 BTC = $96,991.47" in html  # the rate the gateway fixed: 2.16 USD / 0.00002227 BTC
    assert re.search(r"<svg[^>]*>", html)
    assert f'data-countdown="{order.expires_at.isoformat(timespec="seconds")}"' in html
    assert "<script>" not in html  # no inline scripts (CSP)


def test_stablecoin_payment_page_names_the_network_and_encodes_the_address(user_client, user):
    order = OrderFactory(user=user, crypto_type="USDT_TRC20", crypto_amount=Decimal("2.160000"), address="TXyz123")
    response = user_client.get(detail_url(order))
    html = response.content.decode()
    assert "USDT on TRON (TRC-20)" in html
    assert "USDT_TRC20" not in html  # never the gateway's code
    assert 'data-value="2.160000"' in html  # every decimal place, none dropped
    assert "Send exactly 2.160000 USDT" in html
    assert "TRON network (TRC-20) only" in html
    assert "Open in wallet" not in html
    assert response.context["payment_uri"] == "TXyz123"


def test_amount_is_never_rounded_or_shown_with_an_exponent(user_client, user):
    order = OrderFactory(user=user, crypto_amount=Decimal("0.00000012"))
    html = user_client.get(detail_url(order)).content.decode()
    assert 'data-value="0.00000012"' in html
    assert "E-" not in html.split('id="pay-amount"')[1][:80]


def test_pending_page_polls_its_status_fragment(user_client, user):
    order = OrderFactory(user=user)
    html = user_client.get(detail_url(order)).content.decode()
    assert f'hx-get="{status_url(order)}?shown=pending"' in html
    assert 'hx-trigger="load delay:3s"' in html  # a fresh order is polled quickly, then less often
    assert '<meta http-equiv="refresh"' in html  # inside <noscript>: without JS it still refreshes


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_final_states_stop_polling(user_client, user, status):
    order = OrderFactory(user=user, status=status)
    html = user_client.get(detail_url(order)).content.decode()
    assert "hx-get=" not in html.split('id="order-status"')[1].split(">")[0]
    assert 'id="pay-address"' not in html


@pytest.mark.parametrize("status", S.values)
def test_every_status_is_explained_to_the_customer(user_client, user, status):
    order = OrderFactory(user=user, status=status)
    html = user_client.get(detail_url(order)).content.decode()
    assert STATUS_EXPLANATIONS[status]
    assert STATUS_EXPLANATIONS[status].replace("'", "&#x27;") in html


def test_review_reason_is_explained(user_client, user):
    order = OrderFactory(user=user, status=S.NEEDS_REVIEW, reason=OrderReason.PAID_LATE)
    html = user_client.get(detail_url(order)).content.decode()
    assert "after the payment window had closed" in html


def test_expired_order_offers_a_new_quote(user_client, user):
    order = OrderFactory(user=user, status=S.EXPIRED, token_count=250000)
    html = user_client.get(detail_url(order)).content.decode()
    assert "Get a new quote" in html
    assert f'{reverse("orders:new")}?model=anthropic%2Fclaude-3-sonnet&amp;tokens=250000' in html


def test_sandbox_control_link_only_in_sandbox_mode(user_client, user, settings):
    order = OrderFactory(user=user)
    settings.SANDBOX = True
    html = user_client.get(detail_url(order)).content.decode()
    assert f"/sandbox/kryptoexpress/control/{order.payment_hash}/" in html
    settings.SANDBOX = False
    assert "/sandbox/kryptoexpress/control/" not in user_client.get(detail_url(order)).content.decode()


@pytest.mark.urls("tests.orders.urls_without_sandbox")
def test_no_sandbox_control_link_when_the_sandbox_routes_are_not_mounted(user_client, user, settings):
    # given SANDBOX on but no sandbox routes: a link would lead to a page that does not exist
    order = OrderFactory(user=user)
    settings.SANDBOX = True
    # when
    html = user_client.get(detail_url(order)).content.decode()
    # then
    assert "/sandbox/kryptoexpress/control/" not in html


def test_order_still_being_set_up_says_so(user_client, user):
    order = OrderFactory(user=user, payment_hash=None, address="", crypto_amount=None)
    html = user_client.get(detail_url(order)).content.decode()
    assert "setting up your payment" in html
    assert 'id="pay-address"' not in html


def test_delivered_order_shows_the_key_to_its_owner_only(client, user):
    key = "sk-or-v1-" + "a" * 40 + "wxyz"
    order = OrderFactory(
        user=user, status=S.DELIVERED, key_encrypted=encrypt(key), key_hash="k" * 20, delivered_at=timezone.now()
    )
    client.force_login(user)
    assert key in client.get(detail_url(order)).content.decode()
    client.force_login(StaffFactory())
    staff_html = client.get(detail_url(order)).content.decode()
    assert key not in staff_html
    assert "shown to the customer only" in staff_html


def test_page_renders_from_the_database_only(user_client, user, no_remote_calls, django_assert_max_num_queries):
    order = OrderFactory(user=user)
    with django_assert_max_num_queries(6):
        assert user_client.get(detail_url(order)).status_code == 200
    with django_assert_max_num_queries(5):
        assert user_client.get(status_url(order)).status_code == 200


# --- who may see an order -----------------------------------------------------------------------


@pytest.mark.parametrize("url_for", [detail_url, status_url, api_url])
def test_someone_elses_order_is_404(client, url_for):
    order = OrderFactory()
    client.force_login(UserFactory())
    assert client.get(url_for(order)).status_code == 404


@pytest.mark.parametrize("url_for", [detail_url, status_url, api_url])
def test_unknown_order_is_404(user_client, url_for):
    order = OrderFactory.build(order_id="TS-doesnotexist")
    assert user_client.get(url_for(order)).status_code == 404


def test_anonymous_status_fragment_is_404(client):
    assert client.get(status_url(OrderFactory())).status_code == 404


@pytest.mark.parametrize("url_for", [detail_url])
def test_anonymous_visitors_are_sent_to_log_in(client, url_for):
    order = OrderFactory()
    response = client.get(url_for(order))
    assert response.status_code == 302 and "login" in response["Location"]


def test_anonymous_api_is_404(client):
    assert client.get(api_url(OrderFactory())).status_code == 404


@pytest.mark.parametrize("url_for", [detail_url, api_url])
def test_staff_may_look(staff_client, url_for):
    assert staff_client.get(url_for(OrderFactory())).status_code == 200


def test_status_fragment_is_for_the_owner_only(staff_client):
    # staff see the page, but it does not poll for them: the fragment is the owner's
    assert staff_client.get(status_url(OrderFactory())).status_code == 404


def test_pages_are_get_only(user_client, user):
    order = OrderFactory(user=user)
    for url in (detail_url(order), status_url(order), api_url(order)):
        assert user_client.post(url).status_code == 405


# --- the status fragment ------------------------------------------------------------------------


def test_status_fragment_is_just_the_box(user_client, user):
    order = OrderFactory(user=user)
    response = user_client.get(status_url(order), {"shown": "pending"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="order-status"')
    assert "<html" not in html
    assert "HX-Refresh" not in response.headers and "HX-Retarget" not in response.headers


def test_status_fragment_swaps_the_main_column_in_place_when_the_status_moved_on(user_client, user):
    order = OrderFactory(user=user, status=S.PAID, paid_at=timezone.now())
    response = user_client.get(status_url(order), {"shown": "pending"}, HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in response.headers  # no whole-page reload
    assert response.headers["HX-Retarget"] == "#order-main"
    assert response.headers["HX-Reswap"] == "outerHTML"
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="order-main"') and "<html" not in html
    assert "Payment received" in html and 'id="pay-address"' not in html


def test_status_fragment_answers_304_while_nothing_changed(user_client, user, django_assert_max_num_queries):
    order = OrderFactory(user=user)
    first = user_client.get(status_url(order), {"shown": "pending"})
    etag = first.headers["ETag"]
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, no-cache"
    # one query for the order: the session is not read, the user not loaded
    with django_assert_max_num_queries(1):
        again = user_client.get(status_url(order), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag


def test_status_fragment_renders_the_box_with_one_order_query(user_client, user):
    # every field the box reads is in the one query: none is loaded afterwards, one by one
    order = OrderFactory(user=user, status=S.DELIVERED, paid_at=timezone.now(), delivered_at=timezone.now(),
                         refundable_marked_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        response = user_client.get(status_url(order), {"shown": "delivered"})
    assert response.status_code == 200 and 'id="order-status"' in response.content.decode()
    assert len([q for q in queries if "orders_aitokenorder" in q["sql"]]) == 1


def test_status_fragment_etag_is_the_owners_alone(user_client, user):
    # The 304 needs no session because its ETag is a MAC only the owner was sent: it says "not
    # modified" to whoever presents it, but for nothing else, on no other order, and no forgery.
    client = Client()  # signed out
    mine, other = OrderFactory(user=user), OrderFactory(user=user)
    etag = user_client.get(status_url(mine), {"shown": "pending"}).headers["ETag"]
    assert client.get(status_url(mine), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.get(status_url(mine), {"shown": "pending"}).status_code == 404
    assert client.get(status_url(other), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag).status_code == 404
    assert user_client.get(status_url(other), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag).status_code == 200
    forged = '"' + "0" * (len(etag) - 2) + '"'
    assert client.get(status_url(mine), {"shown": "pending"}, HTTP_IF_NONE_MATCH=forged).status_code == 404
    # someone else signed in holding the owner's tag: not modified, then nothing once it changes
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(status_url(mine), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag).status_code == 304
    OrderFactory._meta.model.objects.filter(pk=mine.pk).update(status=S.EXPIRED, updated_at=timezone.now())
    assert stranger.get(status_url(mine), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag).status_code == 404
    assert client.get(status_url(mine), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag).status_code == 404


def test_status_fragment_etag_depends_on_the_secret_key(user_client, user, settings):
    order = OrderFactory(user=user)
    etag = user_client.get(status_url(order), {"shown": "pending"}).headers["ETag"]
    settings.SECRET_KEY = "another-" + settings.SECRET_KEY
    assert user_client.get(status_url(order), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_status_fragment_etag_changes_with_the_status(user_client, user):
    order = OrderFactory(user=user)
    etag = user_client.get(status_url(order), {"shown": "pending"}).headers["ETag"]
    OrderFactory._meta.model.objects.filter(pk=order.pk).update(status=S.PAID, updated_at=timezone.now())
    response = user_client.get(status_url(order), {"shown": "pending"}, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response.headers["ETag"] != etag
    assert response.headers["HX-Retarget"] == "#order-main"


@pytest.mark.parametrize("etag", ['"nonsense"', "*", "*x", "W/" + "a" * 5000, "\x00", ",".join(["x"] * 10000)])
def test_status_fragment_ignores_hostile_if_none_match(user_client, user, etag):
    order = OrderFactory(user=user)
    assert user_client.get(status_url(order), HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_polling_backs_off_the_longer_nothing_happens():
    from orders.views.order_page_context import order_poll_seconds

    order = OrderFactory.build(updated_at=timezone.now())
    later = [order.updated_at + timedelta(seconds=s) for s in (0, 120, 600, 1800, 7200)]
    delays = [order_poll_seconds(order=order, now=now) for now in later]
    assert delays == sorted(delays) and delays[0] < delays[-1] == 30


# --- the JSON API -------------------------------------------------------------------------------


def test_api_returns_the_order_with_money_as_strings_and_no_secrets(user_client, user):
    order = OrderFactory(
        user=user,
        callback_secret_encrypted=encrypt("callback-secret-xyz"),
        key_encrypted=encrypt("sk-or-v1-secret"),
        key_hash="hash-of-key",
    )
    order_record_event(order=order, source="checkout", message="Gateway payment created", details={"x": 1})
    OrderEvent.objects.create(order=order, source="staff", message="Staff approved the payment: customer is my cousin",
                              from_status="needs_review", to_status="paid")
    response = user_client.get(api_url(order))
    assert response.status_code == 200
    data = response.json()
    assert {
        "order_id", "status", "reason", "model_id", "token_count", "base_usd_cost", "markup_amount",
        "total_usd_cost", "crypto_type", "crypto_amount", "payment_hash", "address", "expires_at", "events",
    } <= set(data)
    assert data["order_id"] == order.order_id and data["status"] == "pending" and data["reason"] == ""
    assert (data["base_usd_cost"], data["markup_amount"], data["total_usd_cost"]) == ("1.80", "0.36", "2.16")
    assert data["crypto_amount"] == "0.00002227"
    assert data["token_count"] == 200000 and data["model_id"] == "anthropic/claude-3-sonnet"
    assert data["payment_hash"] == order.payment_hash and data["address"] == order.address
    assert data["expires_at"] == order.expires_at.isoformat()
    # Status changes in the customer's words; internal messages and staff notes stay in the admin.
    assert data["events"] == [
        {"at": data["events"][0]["at"], "from_status": "needs_review", "to_status": "paid", "message": "Paid"}
    ]
    text = response.content.decode()
    for secret in ("callback-secret-xyz", "sk-or-v1-secret", order.callback_secret_encrypted, order.key_encrypted,
                   "hash-of-key", "callback_secret", "key_encrypted", "cousin", "Gateway payment created", "staff"):
        assert secret not in text


# --- the list -----------------------------------------------------------------------------------


def test_list_shows_my_orders_newest_first(user_client, user):
    now = timezone.now()
    old = OrderFactory(user=user)
    new = OrderFactory(user=user)
    from orders.models import AITokenOrder

    AITokenOrder.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=2))
    AITokenOrder.objects.filter(pk=new.pk).update(created_at=now - timedelta(days=1))
    someone_elses = OrderFactory()
    html = user_client.get(reverse("orders:list")).content.decode()
    assert html.index(new.order_id) < html.index(old.order_id)
    assert someone_elses.order_id not in html


def test_list_is_paginated_with_constant_queries(user_client, user, django_assert_max_num_queries):
    OrderFactory.create_batch(3, user=user)
    with django_assert_max_num_queries(5):
        user_client.get(reverse("orders:list"))
    OrderFactory.create_batch(40, user=user)
    with django_assert_max_num_queries(5):
        first = user_client.get(reverse("orders:list"))
    assert first.context["page"].paginator.num_pages == 3
    assert len(first.context["orders"]) == 20
    assert "Older" in first.content.decode()
    last = user_client.get(reverse("orders:list"), {"page": "3"})
    assert len(last.context["orders"]) == 3
    assert user_client.get(reverse("orders:list"), {"page": "junk"}).status_code == 200


def test_list_needs_login(client):
    response = client.get(reverse("orders:list"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_empty_list_invites_to_buy(user_client):
    assert "no orders yet" in user_client.get(reverse("orders:list")).content.decode()
