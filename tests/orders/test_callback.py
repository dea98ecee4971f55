"""The gateway callback: signed by the order's own secret, a hint only, idempotent, hostile-proof."""

from __future__ import annotations

import json
import logging

import pytest
import responses
from django.urls import reverse

from orders.models import OrderEvent, OrderStatus
from orders.services.payment_updates import callback_signature_failures
from storefront.encryption import encrypt
from tests.factories import OrderFactory
from tests.orders.checkout_support import CALLBACK_SECRET, GATEWAY_URL, body_of, paid_json, record_json, signed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fulfil_delay")]
S = OrderStatus
URL = reverse("orders:kryptoexpress_callback")


@pytest.fixture
def order():
    return OrderFactory(callback_secret_encrypted=encrypt(CALLBACK_SECRET))


def serve_payment(gateway, data):
    gateway.get(
        GATEWAY_URL + "/payment",
        match=[responses.matchers.query_param_matcher({"hash": data["hash"]})],
        body=json.dumps(data, default=str),
        content_type="application/json",
    )


def paid_callback(gateway, order, *, gateway_record: dict) -> tuple[bytes, str]:
    """A callback claiming "paid", signed with the order's secret; the re-read finds `gateway_record`."""
    serve_payment(gateway, gateway_record)
    return signed(paid_json(order))


def post(client, body: bytes, signature: str | None = None):
    headers = {"HTTP_X_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, data=body, content_type="application/json", **headers)


def test_signed_callback_rereads_the_payment_and_marks_paid(
    client, gateway, order, fulfil_delay, django_capture_on_commit_callbacks
):
    # given: the gateway says paid, and the callback is signed with this order's secret
    body, signature = paid_callback(gateway, order, gateway_record=paid_json(order))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, signature)
    # then
    assert response.status_code == 200
    assert response.json() == {"ok": True, "changed": True}
    order.refresh_from_db()
    assert order.status == S.PAID
    assert order.events.get().source == "callback"
    assert len(gateway.calls) == 1  # the re-read
    fulfil_delay.assert_called_once_with(order.pk)


def test_callback_is_only_a_hint_the_gateway_record_decides(client, gateway, order):
    # The callback body claims "paid", but the gateway's own record says unpaid.
    body, signature = paid_callback(gateway, order, gateway_record=record_json(order))
    response = post(client, body, signature)
    assert response.status_code == 200
    assert response.json()["changed"] is False
    order.refresh_from_db()
    assert order.status == S.PENDING


def test_duplicate_and_replayed_callbacks_answer_200_and_change_nothing(
    client, gateway, order, fulfil_delay, django_capture_on_commit_callbacks
):
    body, signature = paid_callback(gateway, order, gateway_record=paid_json(order))
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, body, signature)
        replays = [post(client, body, signature) for _ in range(3)]
    assert first.json()["changed"] is True
    assert all(r.status_code == 200 and r.json()["changed"] is False for r in replays)
    assert OrderEvent.objects.filter(order=order).count() == 1
    fulfil_delay.assert_called_once_with(order.pk)


def test_signature_over_raw_bytes_is_accepted_even_when_reserialization_differs(client, gateway, order):
    # A signer that keeps "0.000012" as written (Python would re-serialize it as 1.2e-05).
    serve_payment(gateway, paid_json(order))
    raw = body_of(paid_json(order)).replace(b'"isWithdrawn":false', b'"isWithdrawn":false,"fee":0.000012')
    assert b"0.000012" in raw
    from payments.signatures import hmac_sha512_hex

    response = post(client, raw, hmac_sha512_hex(raw, CALLBACK_SECRET))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "signature",
    [None, "", "00" * 64, "not-hex", "a" * 10_000],
    ids=["missing", "empty", "zeros", "garbage", "huge"],
)
def test_unsigned_or_wrongly_signed_callbacks_are_refused_without_a_gateway_call(client, gateway, order, signature):
    body = body_of(paid_json(order))
    response = post(client, body, signature)
    assert response.status_code == 403
    assert len(gateway.calls) == 0
    order.refresh_from_db()
    assert order.status == S.PENDING
    assert not OrderEvent.objects.exists()


def test_signature_made_with_another_orders_secret_is_refused(client, gateway, order):
    other = OrderFactory(callback_secret_encrypted=encrypt("someone-elses-secret"))
    # Signed correctly for `other`, but naming `order`'s payment.
    body, signature = signed(paid_json(order), secret="someone-elses-secret")
    assert post(client, body, signature).status_code == 403
    assert len(gateway.calls) == 0
    assert other.events.count() == 0 and order.events.count() == 0


def test_changed_byte_breaks_the_signature(client, gateway, order):
    body, signature = signed(paid_json(order))
    tampered = body.replace(b'"fiatAmount":2.16', b'"fiatAmount":2.17')
    assert tampered != body
    assert post(client, tampered, signature).status_code == 403
    assert len(gateway.calls) == 0


def test_signature_failures_are_counted_for_staff_alerting(client, gateway, order, caplog):
    body = body_of(paid_json(order))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            post(client, body, "00" * 64)
    assert callback_signature_failures() == 3
    assert CALLBACK_SECRET not in caplog.text


def test_unknown_payment_is_404(client, gateway, order):
    data = paid_json(order, hash="e" * 64)
    body, signature = signed(data)
    assert post(client, body, signature).status_code == 404
    assert len(gateway.calls) == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"id": 1}', b'{"hash": 42}', b'{"hash": "../../etc"}', b"\xff\xfe", b'{"hash": NaN}'],
)
def test_malformed_callbacks_are_400(client, gateway, order, body):
    response = post(client, body, "00" * 64)
    assert response.status_code == 400
    assert len(gateway.calls) == 0
    assert not OrderEvent.objects.exists()


def test_oversized_body_is_refused(client, gateway, order):
    data = paid_json(order, padding="x" * 20_000)
    body, signature = signed(data)
    assert post(client, body, signature).status_code == 413
    assert len(gateway.calls) == 0


def test_only_post_is_allowed(client, order):
    assert client.get(URL).status_code == 405
    assert client.put(URL, data=b"{}").status_code == 405


def test_callback_needs_no_csrf_token(gateway, order, django_capture_on_commit_callbacks):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    body, signature = paid_callback(gateway, order, gateway_record=paid_json(order))
    with django_capture_on_commit_callbacks(execute=True):
        response = strict.post(URL, data=body, content_type="application/json", HTTP_X_SIGNATURE=signature)
    assert response.status_code == 200


def test_gateway_unreadable_answers_503_so_the_gateway_retries(client, gateway, order):
    import requests

    gateway.get(GATEWAY_URL + "/payment", body=requests.exceptions.ConnectTimeout("down"))
    body, signature = signed(paid_json(order))
    response = post(client, body, signature)
    assert response.status_code == 503
    order.refresh_from_db()
    assert order.status == S.PENDING
    assert not OrderEvent.objects.exists()


def test_order_whose_secret_cannot_be_decrypted_is_refused(client, gateway):
    order = OrderFactory(callback_secret_encrypted="not-a-fernet-token")
    body, signature = signed(paid_json(order))
    assert post(client, body, signature).status_code == 403
    assert len(gateway.calls) == 0
