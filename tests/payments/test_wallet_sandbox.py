"""The gateway sandbox's wallet (`GET /wallet`, `POST /wallet/withdrawal`) and the client's parsing of it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses

from payments.client import KryptoExpressClient, KryptoExpressGatewayError, KryptoExpressValidationError
from payments.sandbox import wallet
from payments.sandbox.models import SandboxPayment, SandboxWithdrawal
from tests.orders.refund_support import BTC_REFUND_ADDRESS, paid_sandbox_order

URL = "/sandbox/kryptoexpress/api/wallet/withdrawal"


def post(client, settings, payload, *, key=None):
    return client.post(URL, data=json.dumps(payload) if not isinstance(payload, str) else payload,
                       content_type="application/json",
                       headers={"X-Api-Key": settings.KRYPTO_EXPRESS_API_KEY if key is None else key})


def single(order, **overrides):
    return {"withdrawType": "SINGLE", "paymentId": int(order.payment_id), "cryptoCurrency": order.crypto_type,
            "toAddress": BTC_REFUND_ADDRESS, "onlyCalculate": False, **overrides}


@pytest.fixture(autouse=True)
def _no_faults():
    yield
    wallet.fault_set(mode=None)


@pytest.mark.django_db
def test_wallet_requires_the_api_key_and_lists_unwithdrawn_paid_funds(client, settings):
    order = paid_sandbox_order()
    SandboxPayment.objects.filter(pk=int(paid_sandbox_order().payment_id)).update(is_withdrawn=True)
    assert client.get("/sandbox/kryptoexpress/api/wallet").status_code == 401
    body = client.get("/sandbox/kryptoexpress/api/wallet", headers={"X-Api-Key": settings.KRYPTO_EXPRESS_API_KEY})
    assert json.loads(body.content, parse_float=Decimal)["BTC"] == order.crypto_amount


@pytest.mark.django_db
def test_a_dry_run_changes_nothing_and_a_real_one_flips_is_withdrawn(client, settings):
    order = paid_sandbox_order()
    dry = post(client, settings, single(order, onlyCalculate=True))
    assert dry.status_code == 200 and dry.json()["txIdList"] == [] and dry.json()["id"] is None
    assert not SandboxPayment.objects.get(pk=int(order.payment_id)).is_withdrawn
    real = post(client, settings, single(order))
    assert real.status_code == 200 and len(real.json()["txIdList"]) == 1
    assert SandboxPayment.objects.get(pk=int(order.payment_id)).is_withdrawn
    again = post(client, settings, single(order))
    assert again.status_code == 400 and "already withdrawn" in again.json()["message"]
    assert SandboxWithdrawal.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"withdrawType": "SOME"}, "withdrawType"),
        ({"cryptoCurrency": "XRP"}, "cryptoCurrency"),
        ({"paymentId": "1"}, "paymentId"),
        ({"paymentId": True}, "paymentId"),
        ({"onlyCalculate": "yes"}, "onlyCalculate"),
        ({"toAddress": ""}, "toAddress"),
        ({"toAddress": "x" * 10_000}, "toAddress"),
        ({"toAddress": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"}, "toAddress"),
    ],
)
def test_bad_requests_name_the_field_and_send_nothing(client, settings, overrides, field):
    order = paid_sandbox_order()
    response = post(client, settings, single(order, **overrides))
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field
    assert SandboxWithdrawal.objects.count() == 0


@pytest.mark.django_db
def test_refusals_unknown_unpaid_wrong_currency_too_small_and_auth(client, settings):
    order = paid_sandbox_order()
    assert post(client, settings, single(order, paymentId=999_999)).status_code == 400
    assert "does not match" in post(client, settings, single(
        order, cryptoCurrency="USDT_TRC20", toAddress="TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")).json()["message"]
    SandboxPayment.objects.filter(pk=int(order.payment_id)).update(crypto_amount=Decimal("0.000001"))
    assert "too small" in post(client, settings, single(order)).json()["message"]
    SandboxPayment.objects.filter(pk=int(order.payment_id)).update(is_paid=False)
    assert "not paid" in post(client, settings, single(order)).json()["message"]
    assert post(client, settings, single(order), key="wrong").status_code == 401
    assert post(client, settings, "{not json").status_code == 400
    assert client.get(URL, headers={"X-Api-Key": settings.KRYPTO_EXPRESS_API_KEY}).status_code == 405
    assert SandboxWithdrawal.objects.count() == 0


@pytest.mark.django_db
def test_injected_500_sends_nothing_and_is_used_up(client, settings):
    order = paid_sandbox_order()
    wallet.fault_set(mode="error_500")
    assert post(client, settings, single(order, onlyCalculate=True)).status_code == 200  # dry runs are never faulted
    assert post(client, settings, single(order)).status_code == 500
    assert SandboxWithdrawal.objects.count() == 0
    assert post(client, settings, single(order)).status_code == 200


@pytest.mark.django_db
def test_control_page_offers_valid_sample_refund_addresses(client):
    from payments.addresses import address_validate

    order = paid_sandbox_order()
    html = client.get(f"/sandbox/kryptoexpress/control/{order.payment_hash}/").content.decode()
    assert "Sample refund addresses" in html
    for sample in wallet.SAMPLE_REFUND_ADDRESSES["bitcoin"]:
        assert sample in html
        address_validate(crypto_type="BTC", address=sample)
    for sample in wallet.SAMPLE_REFUND_ADDRESSES["tron"]:
        address_validate(crypto_type="USDT_TRC20", address=sample)


# --- The client's parsing (recorded answers) -------------------------------------------------------

BASE = "https://gateway.test/api"


def ke():
    return KryptoExpressClient(base_url=BASE, api_key="k-test-123", timeout=(1, 2))


GOOD = {"id": 91, "withdrawType": "SINGLE", "paymentId": 634, "cryptoCurrency": "BTC", "toAddress": BTC_REFUND_ADDRESS,
        "txIdList": ["5e2a" * 16], "receivingAmount": 0.00014, "blockchainFeeAmount": 0.000008,
        "serviceFeeAmount": 0.000004, "onlyCalculate": False, "totalWithdrawalAmount": 0.000152,
        "createDatetime": 1745245647543}


@responses.activate
def test_client_parses_the_contract_example_exactly():
    responses.post(BASE + "/wallet/withdrawal", body=json.dumps(GOOD))
    withdrawal = ke().withdraw_payment(payment_id=634, crypto_currency="BTC", to_address=BTC_REFUND_ADDRESS,
                                       only_calculate=False)
    assert withdrawal.receiving_amount == Decimal("0.00014") and withdrawal.blockchain_fee_amount == Decimal("0.000008")
    assert withdrawal.total_withdrawal_amount == Decimal("0.000152") and withdrawal.tx_ids == ("5e2a" * 16,)
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {"withdrawType": "SINGLE", "paymentId": 634, "cryptoCurrency": "BTC",
                    "toAddress": BTC_REFUND_ADDRESS, "onlyCalculate": False}
    assert responses.calls[0].request.headers["X-Api-Key"] == "k-test-123"


@responses.activate
@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "receivingAmount": "lots"},
        {**GOOD, "txIdList": "abc"},
        {**GOOD, "onlyCalculate": None},
        {**GOOD, "paymentId": 999},  # an answer about another payment
        {**GOOD, "onlyCalculate": True},  # a dry run where a withdrawal was asked for
        [],
    ],
)
def test_client_treats_a_malformed_answer_as_a_gateway_error(body):
    responses.post(BASE + "/wallet/withdrawal", body=json.dumps(body))
    with pytest.raises(KryptoExpressGatewayError):
        ke().withdraw_payment(payment_id=634, crypto_currency="BTC", to_address=BTC_REFUND_ADDRESS,
                              only_calculate=False)


@responses.activate
def test_client_maps_400_to_validation_error_and_checks_arguments():
    responses.post(BASE + "/wallet/withdrawal", status=400, json={"message": "Payment is already withdrawn"})
    with pytest.raises(KryptoExpressValidationError, match="already withdrawn"):
        ke().withdraw_payment(payment_id=634, crypto_currency="BTC", to_address=BTC_REFUND_ADDRESS,
                              only_calculate=False)
    for bad in (0, -1, True, "634"):
        with pytest.raises(ValueError):
            ke().withdraw_payment(payment_id=bad, crypto_currency="BTC", to_address="x", only_calculate=True)
